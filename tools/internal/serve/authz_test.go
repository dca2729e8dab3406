package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// The keys of the authorization tests: an admin of every namespace, and a
// reader, a writer and an admin of namespace alpha only.
const (
	keyRoot        = "kg_test_root_admin"
	keyAlphaRead   = "kg_test_alpha_read"
	keyAlphaWrite  = "kg_test_alpha_write"
	keyAlphaAdmin  = "kg_test_alpha_admin"
	nsAlpha        = "alpha"
	nsBeta         = "beta"
	fixtureContent = "Ada Lovelace wrote the first program for the Analytical Engine. Charles Babbage designed the Analytical Engine in London."
)

func testKeys() []ingestapi.APIKey {
	key := func(id, secret string, role ingestapi.Role, ns ...string) ingestapi.APIKey {
		return ingestapi.APIKey{ID: id, SHA256: ingestapi.HashAPIKey(secret), ClientID: id, Namespaces: ns, Role: role, RateLimit: -1}
	}
	return []ingestapi.APIKey{
		key("root", keyRoot, ingestapi.RoleAdmin, "*"),
		key("alpha-read", keyAlphaRead, ingestapi.RoleRead, nsAlpha),
		key("alpha-write", keyAlphaWrite, ingestapi.RoleWrite, nsAlpha),
		key("alpha-admin", keyAlphaAdmin, ingestapi.RoleAdmin, nsAlpha),
	}
}

// withKeys turns authentication on with testKeys.
func withKeys(cfg *serve.Config) {
	cfg.Edge.Auth = ingestapi.AuthConfig{Keys: testKeys()}
}

// nsFixtures are objects of one namespace the requests point at.
type nsFixtures struct {
	jobID, awaitingJobID, docID string
}

// seed creates, in namespace ns, a completed document and a job awaiting
// approval.
func seed(t *testing.T, c e2e.Client, ns string) nsFixtures {
	t.Helper()
	ctx := context.Background()
	done := submit(t, c, map[string]any{"content": fixtureContent + " (" + ns + ")", "doc_id": "doc-" + ns, "namespace": ns})
	job, err := c.WaitJob(ctx, done["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	waiting := submit(t, c, map[string]any{"content": "Grace Hopper wrote the first compiler. " + ns, "namespace": ns, "auto_approve": false})
	require.Equal(t, "awaiting_approval", waiting["status"], waiting)
	require.Eventually(t, func() bool {
		r, err := c.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+waiting["job_id"].(string), nil)
		return err == nil && r.Body["status"] == "awaiting_approval"
	}, 30*time.Second, 20*time.Millisecond)
	return nsFixtures{jobID: done["job_id"].(string), awaitingJobID: waiting["job_id"].(string), docID: "doc-" + ns}
}

// apiRequest is one request of the matrix.
type apiRequest struct {
	method, path, contentType string
	body                      []byte
}

func jsonReq(method, path string, body any) apiRequest {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return apiRequest{method: method, path: path, contentType: "application/json", body: raw}
}

func uploadReq(ns string) apiRequest {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, _ := w.CreateFormFile("file", "notes.md")
	_, _ = fw.Write([]byte("# Notes\n\nKatherine Johnson computed trajectories at NASA. " + ns))
	_ = w.WriteField("namespace", ns)
	_ = w.Close()
	return apiRequest{method: http.MethodPost, path: "/api/v1/documents/upload", contentType: w.FormDataContentType(), body: b.Bytes()}
}

// matrixRequests builds, per operation id, the request that touches
// namespace ns. A new endpoint without an entry fails
// TestAuthorizationMatrix.
func matrixRequests() map[string]func(ns string, fx nsFixtures) apiRequest {
	q := url.QueryEscape
	return map[string]func(ns string, fx nsFixtures) apiRequest{
		"submit-document": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/documents", map[string]any{"content": "Alan Turing. " + ns, "namespace": ns})
		},
		"submit-documents-batch": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/documents/batch", map[string]any{"documents": []any{map[string]any{"content": "Edsger Dijkstra. " + ns, "namespace": ns}}})
		},
		"upload-document": func(ns string, _ nsFixtures) apiRequest { return uploadReq(ns) },
		"list-documents": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/documents?namespace="+ns, nil)
		},
		"get-document": func(ns string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/documents/"+fx.docID+"?namespace="+ns, nil)
		},
		"delete-document": func(ns string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodDelete, "/api/v1/documents/"+fx.docID+"?namespace="+ns, nil)
		},
		"list-jobs": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/jobs?namespace="+ns, nil)
		},
		"get-job": func(_ string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/jobs/"+fx.jobID, nil)
		},
		"job-events": func(_ string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/jobs/"+fx.jobID+"/events", nil)
		},
		"cancel-job": func(_ string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/jobs/"+fx.awaitingJobID+"/cancel", map[string]any{"reason": "matrix"})
		},
		"approve-job": func(_ string, fx nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/jobs/"+fx.jobID+"/approve", nil)
		},
		"query": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/query", map[string]any{"question": "Who designed the Analytical Engine?", "namespace": ns, "mode": "naive"})
		},
		"query-stream": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/query/stream", map[string]any{"question": "Who designed the Analytical Engine?", "namespace": ns, "mode": "naive"})
		},
		"search-entities": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/graph/entities?q=ada&namespace="+ns, nil)
		},
		"get-entity": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/graph/entities/"+url.PathEscape("Ada Lovelace")+"?namespace="+ns, nil)
		},
		"get-subgraph": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/graph/subgraph?entity="+q("Ada Lovelace")+"&namespace="+ns, nil)
		},
		"find-paths": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/graph/paths?from="+q("Ada Lovelace")+"&to="+q("Charles Babbage")+"&namespace="+ns, nil)
		},
		"get-stats": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/stats?namespace="+ns, nil)
		},
		"clear-query-cache": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodPost, "/api/v1/cache/clear", map[string]any{"namespace": ns})
		},
		"list-dead-letters": func(ns string, _ nsFixtures) apiRequest {
			return jsonReq(http.MethodGet, "/api/v1/admin/dead-letters?namespace="+ns, nil)
		},
	}
}

type reply struct {
	status      int
	contentType string
	body        string
}

// call sends r with key (none when ""); a stream is cut after its headers.
func call(t *testing.T, base, key string, r apiRequest) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
	require.NoError(t, err)
	if r.contentType != "" && r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, r.method+" "+r.path)
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	var body []byte
	if !strings.HasPrefix(ct, "text/event-stream") {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	return reply{status: resp.StatusCode, contentType: ct, body: string(body)}
}

func requireDenied(t *testing.T, what string, got reply, allowed ...int) {
	t.Helper()
	require.Contains(t, allowed, got.status, "%s: %d %s", what, got.status, got.body)
	require.Equal(t, "application/problem+json", got.contentType, "%s: %s", what, got.body)
}

func TestAuthorizationMatrix(t *testing.T) {
	s := startTB(t, t.TempDir(), withKeys)
	base := s.client.Base
	root := s.client
	root.APIKey = keyRoot
	fx := map[string]nsFixtures{nsAlpha: seed(t, root, nsAlpha), nsBeta: seed(t, root, nsBeta)}

	spec := openAPIOperations(t, root)
	requests := matrixRequests()
	// Routes served outside the OpenAPI document.
	spec = append(spec, operation{id: "metrics", method: http.MethodGet, path: "/api/v1/metrics", role: "read"})
	// Operations that touch no namespace: only the role and the key count.
	unscopedReq := map[string]apiRequest{
		"query-modes":        jsonReq(http.MethodGet, "/api/v1/query/modes", nil),
		"health":             jsonReq(http.MethodGet, "/api/v1/health", nil),
		"info":               jsonReq(http.MethodGet, "/api/v1/info", nil),
		"scheduler-status":   jsonReq(http.MethodGet, "/api/v1/admin/scheduler/status", nil),
		"scheduler-cleanup":  jsonReq(http.MethodPost, "/api/v1/admin/scheduler/cleanup", map[string]any{"dry_run": true}),
		"get-dead-letter":    jsonReq(http.MethodGet, "/api/v1/admin/dead-letters/999999", nil),
		"replay-dead-letter": jsonReq(http.MethodPost, "/api/v1/admin/dead-letters/999999/replay", nil),
		"metrics":            jsonReq(http.MethodGet, "/api/v1/metrics", nil),
	}
	roleKey := map[string]string{"read": keyAlphaRead, "write": keyAlphaWrite, "admin": keyAlphaAdmin}
	below := map[string]string{"write": keyAlphaRead, "admin": keyAlphaWrite}
	var destructive []func()
	checked := 0
	for _, op := range spec {
		t.Run(op.id, func(t *testing.T) {
			if op.role == "public" {
				got := call(t, base, "", apiRequest{method: op.method, path: op.path})
				require.NotEqual(t, http.StatusUnauthorized, got.status, "a public probe needs no key")
				return
			}
			require.Contains(t, []string{"read", "write", "admin"}, op.role, "operation %s declares no role (x-kgraph-role)", op.id)
			build, scoped := requests[op.id]
			unscoped, isUnscoped := unscopedReq[op.id]
			require.True(t, scoped || isUnscoped, "operation %s (%s %s) has no case in the authorization matrix: add one", op.id, op.method, op.path)
			reqFor := func(ns string) apiRequest {
				if scoped {
					return build(ns, fx[ns])
				}
				return unscoped
			}
			// No key, and a key that is not one.
			requireDenied(t, "no key", call(t, base, "", reqFor(nsAlpha)), http.StatusUnauthorized)
			requireDenied(t, "unknown key", call(t, base, "kg_not_a_key", reqFor(nsAlpha)), http.StatusUnauthorized)
			// A role below the operation's.
			if k, ok := below[op.role]; ok {
				requireDenied(t, "role below "+op.role, call(t, base, k, reqFor(nsAlpha)), http.StatusForbidden)
			}
			if scoped {
				// The right role, in the wrong namespace.
				requireDenied(t, "other namespace", call(t, base, roleKey[op.role], reqFor(nsBeta)), http.StatusForbidden, http.StatusNotFound)
			}
			// Controls: the checks deny for a reason, not always. Writes
			// that change the fixtures run last.
			controlKey := roleKey[op.role]
			if op.id == "scheduler-cleanup" {
				// It acts on every namespace: an admin of one is refused.
				requireDenied(t, "admin of one namespace", call(t, base, keyAlphaAdmin, reqFor(nsAlpha)), http.StatusForbidden)
				controlKey = keyRoot
			}
			control := func() {
				got := call(t, base, controlKey, reqFor(nsAlpha))
				require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, got.status, "%s with the right key and namespace: %s", op.id, got.body)
				require.Less(t, got.status, 500, got.body)
				if scoped {
					got = call(t, base, keyRoot, reqFor(nsBeta))
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, got.status, "%s as admin of every namespace: %s", op.id, got.body)
				}
			}
			if op.method == http.MethodDelete || op.id == "cancel-job" {
				destructive = append(destructive, control)
			} else {
				control()
			}
			checked++
		})
	}
	for _, c := range destructive {
		c()
	}
	require.GreaterOrEqual(t, checked, 20, "the matrix should cover every endpoint")
}

type operation struct {
	id, method, path, role string
}

// openAPIOperations lists the operations of the served OpenAPI document
// with concrete paths (path parameters become placeholders the matrix
// replaces) and the role each declares.
func openAPIOperations(t *testing.T, c e2e.Client) []operation {
	t.Helper()
	r, err := c.JSON(context.Background(), http.MethodGet, "/openapi.json", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Role        string `json:"x-kgraph-role"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Raw, &doc))
	var ops []operation
	for path, methods := range doc.Paths {
		for method, op := range methods {
			role := op.Role
			if role == "" && slices.Contains([]string{"/api/v1/health/live", "/api/v1/health/ready"}, path) {
				role = "public"
			}
			ops = append(ops, operation{id: op.OperationID, method: strings.ToUpper(method), path: path, role: role})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	require.NotEmpty(t, ops)
	return ops
}
