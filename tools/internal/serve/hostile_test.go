package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

const hostileBodyLimit = 256 << 10

// hostileBodies are request bodies no JSON endpoint may answer with a 5xx;
// each must be refused with a 4xx problem.
func hostileBodies() map[string][]byte {
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	return map[string][]byte{
		"malformed":          []byte(`{"content": "x",,}`),
		"truncated":          []byte(`{"content": "Ada Lovelace wrote`),
		"wrong types":        []byte(`{"content": 12, "namespace": ["a"], "question": {"x": 1}, "documents": "many", "dry_run": "yes", "reason": 5}`),
		"unknown fields":     []byte(`{"bogus": true, "content": "x", "question": "q", "documents": [{"content": "x"}], "$where": "1"}`),
		"huge numbers":       []byte(`{"question": "q", "content": "x", "top_k": 1e400, "level": 123456789012345678901234567890, "limit": -9223372036854775809}`),
		"empty":              nil,
		"null":               []byte(`null`),
		"array":              []byte(`[1, 2, 3]`),
		"string":             []byte(`"content"`),
		"invalid utf-8":      []byte("{\"content\": \"caf\xe9 \xff\xfe\", \"question\": \"\xc3\x28\"}"),
		"deep nesting":       []byte(deep),
		"oversize":           []byte(`{"content": "` + strings.Repeat("a", hostileBodyLimit+10) + `"}`),
		"nul bytes":          []byte("{\"content\": \"\\u0000\", \"question\": \"\\u0000\", \"namespace\": \"a\\u0000b\", \"documents\": [{\"content\": \"\\u0000\"}]}"),
		"hostile namespace":  []byte(`{"content": "x", "question": "q", "namespace": "../../etc", "documents": [{"content": "x", "namespace": "a.>"}]}`),
		"empty document set": []byte(`{"documents": []}`),
	}
}

// oddIDs replace path parameters.
var oddIDs = map[string]string{
	"dot-dot":   "..%2F..%2Fetc%2Fpasswd",
	"nul":       "job%00x",
	"very long": strings.Repeat("j", 10_000),
	"wildcard":  "%3E",
	"star":      "%2A",
	"kv dots":   "job.x.y",
	"unicode":   "%E2%98%83",
	"spaces":    "%20%20",
}

func requireClientError(t *testing.T, what string, got reply) {
	t.Helper()
	require.GreaterOrEqual(t, got.status, 400, "%s: %s", what, got.body)
	require.Less(t, got.status, 500, "%s: %s", what, got.body)
	require.Equal(t, "application/problem+json", got.contentType, "%s: %s", what, got.body)
}

func TestHostileInputOnEveryEndpoint(t *testing.T) {
	s := startTB(t, t.TempDir(), withKeys, func(cfg *serve.Config) {
		cfg.Edge.MaxBodyBytes, cfg.Edge.MaxUploadBytes = hostileBodyLimit, hostileBodyLimit
	})
	root := s.client
	root.APIKey = keyRoot
	base := s.client.Base
	ops := openAPIOperations(t, root)
	require.NotEmpty(t, ops)
	for _, op := range ops {
		t.Run(op.id, func(t *testing.T) {
			path := strings.NewReplacer("{id}", "job_0000", "{name}", "Ada", "{seq}", "1").Replace(op.path)
			if op.method != http.MethodGet {
				for name, body := range hostileBodies() {
					got := call(t, base, keyRoot, apiRequest{method: op.method, path: path, contentType: "application/json", body: body})
					if op.id == "cancel-job" || op.id == "approve-job" || op.id == "replay-dead-letter" || op.id == "scheduler-cleanup" || op.id == "clear-query-cache" || op.method == http.MethodDelete {
						// Endpoints with an optional body may accept some of
						// these as "no body"; they must still never fail.
						require.Less(t, got.status, 500, "%s: %s", name, got.body)
						if got.status >= 400 {
							require.Equal(t, "application/problem+json", got.contentType, name)
						}
						continue
					}
					requireClientError(t, name, got)
				}
				// A JSON body under a content type that is not JSON.
				got := call(t, base, keyRoot, apiRequest{method: op.method, path: path, contentType: "text/xml", body: []byte("<a/>")})
				require.Less(t, got.status, 500, got.body)
			}
			if strings.Contains(op.path, "{") {
				for name, id := range oddIDs {
					odd := strings.NewReplacer("{id}", id, "{name}", id, "{seq}", id).Replace(op.path)
					got := call(t, base, keyRoot, apiRequest{method: op.method, path: odd, contentType: "application/json", body: []byte(`{}`)})
					if op.id == "get-entity" && got.status == http.StatusOK {
						continue // any name may be an entity's
					}
					requireClientError(t, "id "+name, got)
				}
			}
			for name, query := range map[string]string{
				"negative limit": "limit=-1", "text limit": "limit=abc", "huge limit": "limit=1e400", "garbage cursor": "cursor=%FF%FE",
				"bad namespace": "namespace=..%2F..", "bad status": "status=%00", "bad depth": "depth=99&max_nodes=-5",
			} {
				got := call(t, base, keyRoot, apiRequest{method: op.method, path: path + "?" + query, contentType: "application/json", body: []byte(`{}`)})
				require.Less(t, got.status, 500, "%s: %s", name, got.body)
				if got.status >= 400 && !strings.HasPrefix(got.contentType, "text/plain") {
					require.Equal(t, "application/problem+json", got.contentType, "%s: %s", name, got.body)
				}
			}
		})
	}

	t.Run("broken multipart", func(t *testing.T) {
		for name, r := range map[string]apiRequest{
			"no boundary":     {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "multipart/form-data", body: []byte("--x\r\n")},
			"wrong boundary":  {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "multipart/form-data; boundary=nope", body: []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nabc\r\n--x--\r\n")},
			"truncated":       {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "multipart/form-data; boundary=x", body: []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nab")},
			"no file":         {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "multipart/form-data; boundary=x", body: []byte("--x\r\nContent-Disposition: form-data; name=\"namespace\"\r\n\r\nabc\r\n--x--\r\n")},
			"binary file":     {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "multipart/form-data; boundary=x", body: []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n\xff\xd8\xff\xe0\x00\r\n--x--\r\n")},
			"json not a form": {method: http.MethodPost, path: "/api/v1/documents/upload", contentType: "application/json", body: []byte(`{"file":"x"}`)},
		} {
			requireClientError(t, name, call(t, base, keyRoot, r))
		}
	})

	t.Run("streams nobody reads", func(t *testing.T) {
		// A job that never ends on its own keeps its event stream open.
		waiting := submit(t, root, map[string]any{"content": "Mary Jackson became NASA's first black female engineer.", "auto_approve": false})
		id := waiting["job_id"].(string)
		waitStatus(t, root, id, "awaiting_approval", 30*time.Second)
		before := runtime.NumGoroutine()
		u, err := url.Parse(base)
		require.NoError(t, err)
		var conns []net.Conn
		for range 50 {
			c, err := net.Dial("tcp", u.Host)
			require.NoError(t, err)
			fmt.Fprintf(c, "GET /api/v1/jobs/%s/events HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nAccept: text/event-stream\r\n\r\n", id, u.Host, keyRoot)
			conns = append(conns, c)
		}
		// One of them reads its headers, so the streams are open.
		status, err := bufio.NewReader(conns[0]).ReadString('\n')
		require.NoError(t, err)
		require.Contains(t, status, "200")
		// The server still answers others promptly.
		start := time.Now()
		r, err := root.JSON(context.Background(), http.MethodGet, "/api/v1/health/live", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status)
		require.Less(t, time.Since(start), 2*time.Second)
		for _, c := range conns {
			require.NoError(t, c.Close())
		}
		// Closed streams release their goroutines (the poll notices the
		// closed request context within a poll interval).
		require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+10 }, 20*time.Second, 100*time.Millisecond,
			"goroutines before: %d, now: %d", before, runtime.NumGoroutine())
	})

	// The server is still up and its memory stayed bounded.
	r, err := root.JSON(context.Background(), http.MethodGet, "/api/v1/health", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	require.Less(t, ms.HeapInuse, uint64(512<<20), "heap after the hostile requests")
}
