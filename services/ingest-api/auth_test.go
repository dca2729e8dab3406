package ingestapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/ratelimit"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

const (
	secretWriter = "writer-secret"
	secretReader = "reader-secret"
	secretSlow   = "slow-secret"
)

func keyedConfig() ingestapi.Config {
	return ingestapi.Config{Auth: ingestapi.AuthConfig{Keys: []ingestapi.APIKey{
		{ID: "writer", SHA256: ingestapi.HashAPIKey(secretWriter), ClientID: "crm", Namespaces: []string{"a"}, Role: ingestapi.RoleWrite, RateLimit: -1},
		{ID: "reader", SHA256: ingestapi.HashAPIKey(secretReader), Namespaces: []string{"a", "b"}, Role: ingestapi.RoleRead, RateLimit: -1},
		{ID: "slow", SHA256: ingestapi.HashAPIKey(secretSlow), Namespaces: []string{"*"}, Role: ingestapi.RoleAdmin, RateLimit: 3},
	}}}
}

func newKeyedEdge(t *testing.T, cfg ingestapi.Config) *edge {
	t.Helper()
	e := newEdge(t, cfg)
	return e
}

func (e *edge) as(t *testing.T, key, method, path, body string, header ...string) response {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, nil)
	if rd != nil {
		req = httptest.NewRequest(method, path, rd)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.serve(t, req)
}

func TestAPIKeyConfigValidation(t *testing.T) {
	good := ingestapi.APIKey{ID: "k", SHA256: ingestapi.HashAPIKey("s"), Namespaces: []string{"a"}, Role: ingestapi.RoleRead}
	cases := []struct {
		name string
		mod  func(*ingestapi.AuthConfig)
		err  string
	}{
		{"no keys", func(c *ingestapi.AuthConfig) { c.Keys = nil }, "no API key is configured"},
		{"plain secret instead of hash", func(c *ingestapi.AuthConfig) { c.Keys[0].SHA256 = "my-secret" }, "64 hex"},
		{"bad role", func(c *ingestapi.AuthConfig) { c.Keys[0].Role = "owner" }, "role"},
		{"no namespaces", func(c *ingestapi.AuthConfig) { c.Keys[0].Namespaces = nil }, "namespaces"},
		{"bad namespace", func(c *ingestapi.AuthConfig) { c.Keys[0].Namespaces = []string{"a.b"} }, "invalid"},
		{"duplicate id", func(c *ingestapi.AuthConfig) { c.Keys = append(c.Keys, c.Keys[0]) }, "duplicate"},
		{"disabled needs nothing", func(c *ingestapi.AuthConfig) { c.Keys, c.Disabled = nil, true }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ingestapi.AuthConfig{Keys: []ingestapi.APIKey{good}}
			tc.mod(&c)
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
	keys, err := ingestapi.ParseAPIKeys([]byte(`[{"id":"ci","sha256":"` + ingestapi.HashAPIKey("x") + `","namespaces":["*"],"role":"admin"}]`))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	_, err = ingestapi.ParseAPIKeys([]byte(`[{"id":"ci","secret":"x"}]`))
	require.Error(t, err, "unknown fields are refused, so a misspelt field is not silently ignored")
}

func TestAuthentication(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong key", []string{"X-API-Key", "nope"}, http.StatusUnauthorized},
		{"X-API-Key", []string{"X-API-Key", secretReader}, http.StatusOK},
		{"bearer", []string{"Authorization", "Bearer " + secretReader}, http.StatusOK},
		{"bearer lower case", []string{"Authorization", "bearer " + secretReader}, http.StatusOK},
		{"basic is not a key", []string{"Authorization", "Basic " + secretReader}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.as(t, "", "GET", "/api/v1/query/modes", "", tc.header...)
			require.Equal(t, tc.want, r.status, string(r.raw))
			if tc.want == http.StatusUnauthorized {
				r.requireProblem(t, http.StatusUnauthorized)
				require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// Probes need no key.
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/api/v1/health/live", "").status)
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/openapi.json", "").status)
}

func TestRolesAndNamespaces(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	body := `{"content":"Ada Lovelace","namespace":"%s"}`
	require.Equal(t, http.StatusAccepted, e.as(t, secretWriter, "POST", "/api/v1/documents", fmt.Sprintf(body, "a")).status)
	e.as(t, secretWriter, "POST", "/api/v1/documents", fmt.Sprintf(body, "b")).requireProblem(t, http.StatusForbidden)
	e.as(t, secretReader, "POST", "/api/v1/documents", fmt.Sprintf(body, "a")).requireProblem(t, http.StatusForbidden)
	// The default namespace is a namespace like any other.
	e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"Ada"}`).requireProblem(t, http.StatusForbidden)

	// A job of namespace b is invisible to a key of namespace a.
	e.jobs.putJob(t, jobstate.Job{JobID: "job_b", Namespace: "b", Status: jobstate.StatusCompleted})
	e.as(t, secretWriter, "GET", "/api/v1/jobs/job_b", "").requireProblem(t, http.StatusNotFound)
	require.Equal(t, http.StatusOK, e.as(t, secretReader, "GET", "/api/v1/jobs/job_b", "").status)
	e.as(t, secretReader, "POST", "/api/v1/jobs/job_b/cancel", "").requireProblem(t, http.StatusForbidden)
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestClientIDIsRecorded(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	require.Equal(t, http.StatusAccepted, e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"x","namespace":"a"}`).status)
	require.Equal(t, http.StatusAccepted, e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"y","namespace":"a"}`, "X-Client-ID", "nightly-sync").status)
	msgs := e.pub.published()
	require.Len(t, msgs, 2)
	require.Equal(t, "crm", decodeSubmitted(t, msgs[0]).Data.ClientID, "the key's client id by default")
	require.Equal(t, "nightly-sync", decodeSubmitted(t, msgs[1]).Data.ClientID, "X-Client-ID when sent")
}

func TestRateLimit(t *testing.T) {
	cfg := keyedConfig()
	now := time.Unix(1_700_000_000, 0)
	e := newEdgeWith(t, cfg, func(d *ingestapi.Deps) { d.Limiter = ratelimit.NewMemory(func() time.Time { return now }) })
	for i := range 3 {
		r := e.as(t, secretSlow, "GET", "/api/v1/query/modes", "")
		require.Equal(t, http.StatusOK, r.status, "request %d", i)
		require.Equal(t, strconv.Itoa(2-i), r.header.Get("RateLimit-Remaining"))
	}
	r := e.as(t, secretSlow, "GET", "/api/v1/query/modes", "")
	r.requireProblem(t, http.StatusTooManyRequests)
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.Equal(t, 20, retry, "3 per minute: one more every 20 s")
	// Other keys have their own budget.
	require.Equal(t, http.StatusOK, e.as(t, secretReader, "GET", "/api/v1/query/modes", "").status)
	now = now.Add(20 * time.Second)
	require.Equal(t, http.StatusOK, e.as(t, secretSlow, "GET", "/api/v1/query/modes", "").status)
}

func TestCORS(t *testing.T) {
	cfg := keyedConfig()
	cfg.CORSOrigins = []string{"https://app.example"}
	e := newKeyedEdge(t, cfg)
	r := e.as(t, "", "OPTIONS", "/api/v1/documents", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "X-API-Key, Content-Type")
	require.Less(t, r.status, 300)
	require.Equal(t, "https://app.example", r.header.Get("Access-Control-Allow-Origin"))
	r = e.as(t, secretReader, "GET", "/api/v1/query/modes", "", "Origin", "https://evil.example")
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
}

func TestApprovalEstimate(t *testing.T) {
	cfg := keyedConfig()
	cfg.ApprovalNamespaces = []string{"a"}
	cfg.Estimate = ingestapi.EstimateConfig{Model: "gpt-4o", Gleanings: 1,
		ChunkTokens: func(text string) []int { return []int{1000, 1000, 500} }}
	e := newKeyedEdge(t, cfg)
	r := e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"some text","namespace":"a"}`)
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	reply := r.json(t)
	require.Equal(t, "awaiting_approval", reply["status"])
	est := reply["estimate"].(map[string]any)
	require.EqualValues(t, 3, est["chunks"])
	// 2 calls per chunk, each with the 1,800-token prompt and the chunk.
	require.GreaterOrEqual(t, est["tokens_in"].(float64), float64(2*(3*1800+2500)))
	require.Less(t, est["cost_low_usd"].(float64), est["cost_high_usd"].(float64))
	require.Greater(t, est["cost_low_usd"].(float64), 0.0)
	ev := decodeSubmitted(t, e.pub.published()[0])
	require.True(t, ev.Data.RequireApproval)
	require.Equal(t, 3, ev.Data.Estimate.Chunks)
}

func TestBatchIsAllOrNothing(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	r := e.as(t, secretWriter, "POST", "/api/v1/documents/batch", `{"documents":[{"content":"one","namespace":"a"},{"content":"two","namespace":"b"}]}`)
	r.requireProblem(t, http.StatusForbidden)
	require.Empty(t, e.pub.published(), "nothing of a refused batch is submitted")
	r = e.as(t, secretWriter, "POST", "/api/v1/documents/batch", `{"documents":[{"content":"one","namespace":"a"},{"content":"two","namespace":"a","doc_id":"d2"}]}`)
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	jobs := r.json(t)["jobs"].([]any)
	require.Len(t, jobs, 2)
	require.Equal(t, "d2", jobs[1].(map[string]any)["doc_id"])
	e.as(t, secretWriter, "POST", "/api/v1/documents/batch", `{"documents":[]}`).requireProblem(t, http.StatusUnprocessableEntity)
	many := strings.Repeat(`{"content":"x","namespace":"a"},`, 101)
	e.as(t, secretWriter, "POST", "/api/v1/documents/batch", `{"documents":[`+strings.TrimSuffix(many, ",")+`]}`).requireProblem(t, http.StatusUnprocessableEntity)
}

func multipartBody(t *testing.T, filename, content string, fields map[string]string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if filename != "" {
		fw, err := w.CreateFormFile("file", filename)
		require.NoError(t, err)
		_, _ = fw.Write([]byte(content))
	}
	for k, v := range fields {
		require.NoError(t, w.WriteField(k, v))
	}
	require.NoError(t, w.Close())
	return w.FormDataContentType(), b.Bytes()
}

func TestUpload(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	upload := func(filename, content string, fields map[string]string) response {
		ct, body := multipartBody(t, filename, content, fields)
		req := httptest.NewRequest("POST", "/api/v1/documents/upload", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("X-API-Key", secretWriter)
		return e.serve(t, req)
	}
	r := upload("page.html", `<html><head><title>Engines</title><style>p{}</style><script>var x="secret";</script></head><body><p>Babbage built engines.</p><p>Lovelace wrote programs.</p></body></html>`,
		map[string]string{"namespace": "a", "metadata": `{"source":"wiki"}`})
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	ev := decodeSubmitted(t, e.pub.published()[0])
	text, ok := e.docs.get(ev.Data.ContentRef)
	require.True(t, ok)
	require.Contains(t, text, "Babbage built engines.")
	require.Contains(t, text, "Lovelace wrote programs.")
	require.NotContains(t, text, "secret")
	require.NotContains(t, text, "<p>")
	require.Equal(t, "wiki", ev.Data.Metadata["source"])
	require.Equal(t, "page.html", ev.Data.Metadata["filename"])

	r = upload("notes.md", "# Title\n\nText.", map[string]string{"namespace": "a", "auto_approve": "false"})
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	require.Equal(t, "awaiting_approval", r.json(t)["status"])

	upload("", "", map[string]string{"namespace": "a"}).requireProblem(t, http.StatusUnprocessableEntity)
	upload("bad.txt", "\xff\xfe", map[string]string{"namespace": "a"}).requireProblem(t, http.StatusBadRequest)
	upload("empty.txt", "   ", map[string]string{"namespace": "a"}).requireProblem(t, http.StatusUnprocessableEntity)
	upload("x.txt", "x", map[string]string{"namespace": "a", "metadata": "[1,2]"}).requireProblem(t, http.StatusUnprocessableEntity)
	upload("x.txt", "x", map[string]string{"namespace": "b"}).requireProblem(t, http.StatusForbidden)
	req := httptest.NewRequest("POST", "/api/v1/documents/upload", strings.NewReader("--broken\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=broken")
	req.Header.Set("X-API-Key", secretWriter)
	r = e.serve(t, req)
	require.GreaterOrEqual(t, r.status, 400)
	require.Less(t, r.status, 500, string(r.raw))
}

// pageThrough follows next_cursor from GET path with key and returns idOf
// of every item of the list field, in order, and the number of pages.
func (e *edge) pageThrough(t *testing.T, key, path, field string, idOf func(map[string]any) string) (ids []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := e.as(t, key, "GET", path+sep+"cursor="+cursor, "")
		require.Equal(t, http.StatusOK, r.status, string(r.raw))
		page := r.json(t)
		pages++
		for _, item := range page[field].([]any) {
			ids = append(ids, idOf(item.(map[string]any)))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return ids, pages
		}
		require.Less(t, pages, 1000, "the cursor does not move on")
		cursor = next
	}
}

// listAll pages through a job listing: the job ids and the number of pages.
func (e *edge) listAll(t *testing.T, key, path string) ([]string, int) {
	t.Helper()
	return e.pageThrough(t, key, path, "jobs", func(j map[string]any) string { return j["job_id"].(string) })
}

func TestJobListing(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 9 {
		ns := []string{"a", "b", "c"}[i%3]
		st := jobstate.StatusCompleted
		if i%2 == 0 {
			st = jobstate.StatusFailed
		}
		id := fmt.Sprintf("job_%d", i)
		e.jobs.putJob(t, jobstate.Job{JobID: id, Namespace: ns, Status: st, ClientID: "crm", CreatedAt: base.Add(time.Duration(i) * time.Minute)})
	}
	// Two at the same time: ordered by id.
	e.jobs.putJob(t, jobstate.Job{JobID: "job_9a", Namespace: "a", Status: jobstate.StatusCompleted, CreatedAt: base.Add(9 * time.Minute)})
	e.jobs.putJob(t, jobstate.Job{JobID: "job_9b", Namespace: "a", Status: jobstate.StatusCompleted, CreatedAt: base.Add(9 * time.Minute)})
	// Index entries on their way in or out: one whose record is not
	// written yet, one of a job's earlier creation time.
	e.jobs.values[jobstate.JobIndexPrefix("a")+jobstate.JobPosition(base.Add(time.Hour), "job_unwritten")] = []byte("1")
	e.jobs.values[jobstate.JobIndexPrefixAll+jobstate.JobPosition(base.Add(time.Hour), "job_unwritten")] = []byte("1")
	e.jobs.values[jobstate.JobIndexPrefix("a")+jobstate.JobPosition(base.Add(2*time.Hour), "job_3")] = []byte("1")
	e.jobs.values[jobstate.DocKey("a", "d.1")] = mustJSONBytes(t, jobstate.Document{DocID: "d.1", Namespace: "a", Status: jobstate.DocReady})

	ids, pages := e.listAll(t, secretWriter, "/api/v1/jobs?limit=2")
	require.Equal(t, []string{"job_9a", "job_9b", "job_6", "job_3", "job_0"}, ids, "newest first, only namespace a, every job once")
	require.Equal(t, 3, pages)
	ids, _ = e.listAll(t, secretReader, "/api/v1/jobs?limit=3")
	require.Equal(t, []string{"job_9a", "job_9b", "job_7", "job_6", "job_4", "job_3", "job_1", "job_0"}, ids,
		"the namespaces of the key, merged")
	ids, _ = e.listAll(t, secretReader, "/api/v1/jobs?limit=3&namespace=b")
	require.Equal(t, []string{"job_7", "job_4", "job_1"}, ids)
	ids, _ = e.listAll(t, secretReader, "/api/v1/jobs?status=failed&limit=1")
	require.Equal(t, []string{"job_6", "job_4", "job_0"}, ids)
	ids, _ = e.listAll(t, secretReader, "/api/v1/jobs?status=failed&client_id=someone-else")
	require.Empty(t, ids)

	r := e.as(t, secretWriter, "GET", "/api/v1/jobs?status=failed", "")
	require.Len(t, r.json(t)["jobs"], 2)
	e.as(t, secretWriter, "GET", "/api/v1/jobs?namespace=c", "").requireProblem(t, http.StatusForbidden)
	e.as(t, secretWriter, "GET", "/api/v1/jobs?cursor=garbage", "").requireProblem(t, http.StatusUnprocessableEntity)
	e.as(t, secretWriter, "GET", "/api/v1/jobs?limit=501", "").requireProblem(t, http.StatusUnprocessableEntity)
	e.as(t, secretWriter, "GET", "/api/v1/jobs?status=bogus", "").requireProblem(t, http.StatusUnprocessableEntity)
}

// A filter that few jobs match does not make one request read every job:
// a page stops after a bounded number of index entries and says where to
// go on.
func TestJobListingScansABoundedNumberOfJobsPerPage(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.jobs.putJob(t, jobstate.Job{JobID: "job_failed", Namespace: "a", Status: jobstate.StatusFailed, CreatedAt: base})
	for i := range 6000 {
		e.jobs.putJob(t, jobstate.Job{JobID: fmt.Sprintf("job_%d", i), Namespace: "a", Status: jobstate.StatusCompleted,
			CreatedAt: base.Add(time.Duration(i+1) * time.Second)})
	}
	r := e.as(t, secretWriter, "GET", "/api/v1/jobs?status=failed", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	page := r.json(t)
	require.Empty(t, page["jobs"], "the first 5,000 jobs are all completed")
	require.NotEmpty(t, page["next_cursor"])

	ids, pages := e.listAll(t, secretWriter, "/api/v1/jobs?status=failed")
	require.Equal(t, []string{"job_failed"}, ids)
	require.Equal(t, 2, pages)
}

func TestDocumentEndpoints(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(d jobstate.Document) { e.jobs.putDoc(t, d) }
	put(jobstate.Document{DocID: "book:1.2", Namespace: "a", Status: jobstate.DocReady, JobID: "job_1", ContentRef: "job/job_1", ContentSHA256: strings.Repeat("a", 64), CreatedAt: created})
	put(jobstate.Document{DocID: "busy", Namespace: "a", Status: jobstate.DocIngesting, JobID: "job_2", CreatedAt: created.Add(time.Minute)})
	put(jobstate.Document{DocID: "other", Namespace: "c", Status: jobstate.DocReady, JobID: "job_3", CreatedAt: created})
	require.NoError(t, e.docs.Put(context.Background(), "job/job_1", "The text."))

	r := e.as(t, secretWriter, "GET", "/api/v1/documents/book:1.2?namespace=a", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	require.Equal(t, "The text.", r.json(t)["content"])
	r = e.as(t, secretWriter, "GET", "/api/v1/documents?namespace=a", "")
	require.Len(t, r.json(t)["documents"], 2)
	r = e.as(t, secretReader, "GET", "/api/v1/documents", "")
	require.Len(t, r.json(t)["documents"], 2, "namespace c is not the reader's")
	e.as(t, secretWriter, "GET", "/api/v1/documents/other?namespace=c", "").requireProblem(t, http.StatusForbidden)
	e.as(t, secretWriter, "GET", "/api/v1/documents?namespace=c", "").requireProblem(t, http.StatusForbidden)
	e.as(t, secretWriter, "GET", "/api/v1/documents/..%2f..%2fetc?namespace=a", "").requireProblem(t, http.StatusNotFound)

	e.as(t, secretWriter, "DELETE", "/api/v1/documents/busy?namespace=a", "").requireProblem(t, http.StatusConflict)
	e.as(t, secretReader, "DELETE", "/api/v1/documents/book:1.2?namespace=a", "").requireProblem(t, http.StatusForbidden)
	r = e.as(t, secretWriter, "DELETE", "/api/v1/documents/book:1.2?namespace=a", "")
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	msgs := e.pub.published()
	require.Len(t, msgs, 1)
	require.Equal(t, "kgraph.events.document.deleted", msgs[0].Subject)
	env, err := events.DecodeEnvelope(msgs[0].Header, msgs[0].Data)
	require.NoError(t, err)
	v, err := events.NewValidator()
	require.NoError(t, err)
	del, err := events.Decode[events.DocumentDeleted](env, v)
	require.NoError(t, err)
	require.Equal(t, "job_1", del.Data.IngestJobID)
	require.Equal(t, r.json(t)["job_id"], del.Data.JobID)
}

// listDocs pages through a document listing: "namespace/id" of each.
func (e *edge) listDocs(t *testing.T, key, path string) []string {
	t.Helper()
	ids, _ := e.pageThrough(t, key, path, "documents", func(d map[string]any) string {
		return d["namespace"].(string) + "/" + d["doc_id"].(string)
	})
	return ids
}

func TestDocumentListing(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 9 {
		status := jobstate.DocReady
		if i%4 == 0 {
			status = jobstate.DocFailed
		}
		e.jobs.putDoc(t, jobstate.Document{DocID: fmt.Sprintf("doc:%d.txt", i), Namespace: []string{"a", "b", "c"}[i%3], Status: status,
			JobID: fmt.Sprintf("job_%d", i), CreatedAt: base.Add(time.Duration(i) * time.Minute)})
	}
	// An entry whose record is gone (a deletion that stopped between the
	// two), and one of an earlier creation time.
	e.jobs.values[jobstate.DocIndexPrefix("a")+jobstate.DocPosition(base.Add(time.Hour), "a", "deleted")] = []byte("1")
	e.jobs.values[jobstate.DocIndexPrefix("a")+jobstate.DocPosition(base.Add(time.Hour), "a", "doc:3.txt")] = []byte("1")

	require.Equal(t, []string{"a/doc:6.txt", "a/doc:3.txt", "a/doc:0.txt"}, e.listDocs(t, secretWriter, "/api/v1/documents?limit=1"))
	require.Equal(t, []string{"b/doc:7.txt", "a/doc:6.txt", "b/doc:4.txt", "a/doc:3.txt", "b/doc:1.txt", "a/doc:0.txt"},
		e.listDocs(t, secretReader, "/api/v1/documents?limit=4"), "the key's namespaces, merged, newest first")
	require.Equal(t, []string{"b/doc:4.txt", "a/doc:0.txt"}, e.listDocs(t, secretReader, "/api/v1/documents?status=failed"))
	require.Equal(t, []string{"b/doc:7.txt", "b/doc:4.txt", "b/doc:1.txt"}, e.listDocs(t, secretReader, "/api/v1/documents?namespace=b&limit=2"))

	// A cursor of the job listing is not one of the document listing.
	e.jobs.putJob(t, jobstate.Job{JobID: "job_x", Namespace: "a", CreatedAt: base})
	e.jobs.putJob(t, jobstate.Job{JobID: "job_y", Namespace: "a", CreatedAt: base.Add(time.Minute)})
	jobCursor, _ := e.as(t, secretWriter, "GET", "/api/v1/jobs?limit=1", "").json(t)["next_cursor"].(string)
	require.NotEmpty(t, jobCursor)
	e.as(t, secretWriter, "GET", "/api/v1/documents?cursor="+jobCursor, "").requireProblem(t, http.StatusUnprocessableEntity)
	e.as(t, secretWriter, "GET", "/api/v1/documents?cursor=garbage", "").requireProblem(t, http.StatusUnprocessableEntity)
}

// Every log line of a request carries its id; no line carries the document
// text or the API key.
func TestLogsCarryRequestIDsAndNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	e := newEdgeWith(t, keyedConfig(), func(d *ingestapi.Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const text = "The launch codes are 0000."
	r := e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"`+text+`","namespace":"a"}`, "X-Request-Id", "req-abc")
	require.Equal(t, http.StatusAccepted, r.status)
	e.as(t, "wrong-secret", "GET", "/api/v1/jobs", "", "X-Request-Id", "req-def").requireProblem(t, http.StatusUnauthorized)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	ids := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		id, _ := rec["request_id"].(string)
		require.NotEmpty(t, id, "a log line without request id: %s", l)
		ids[id] = true
		require.NotContains(t, l, "launch codes")
		require.NotContains(t, l, secretWriter)
		require.NotContains(t, l, "wrong-secret")
	}
	require.Equal(t, map[string]bool{"req-abc": true, "req-def": true}, ids)
}

// Problems carry stable types, and a validation error does not echo a
// large or structured value back.
func TestProblemTypesAndBoundedEchoes(t *testing.T) {
	e := newKeyedEdge(t, keyedConfig())
	cases := []struct {
		status int
		r      response
	}{
		{http.StatusUnauthorized, e.as(t, "", "GET", "/api/v1/jobs", "")},
		{http.StatusForbidden, e.as(t, secretReader, "POST", "/api/v1/documents", `{"content":"x","namespace":"a"}`)},
		{http.StatusNotFound, e.as(t, secretReader, "GET", "/api/v1/jobs/job_none", "")},
		{http.StatusUnprocessableEntity, e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":""}`)},
		{http.StatusBadRequest, e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":`)},
	}
	for _, c := range cases {
		p := c.r.requireProblem(t, c.status)
		require.Equal(t, ingestapi.ProblemType(c.status), p["type"], string(c.r.raw))
		require.True(t, strings.HasPrefix(p["type"].(string), ingestapi.ProblemTypeBase))
	}
	big := strings.Repeat("x", 50_000)
	r := e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"`+big+`","namespace":"a","bogus":{"nested":"`+big+`"}}`)
	r.requireProblem(t, http.StatusUnprocessableEntity)
	require.Less(t, len(r.raw), 4096, "the error does not repeat the document: %d bytes", len(r.raw))
}

// The access log names the key a request used.
func TestAccessLogNamesTheKey(t *testing.T) {
	var logs bytes.Buffer
	e := newEdgeWith(t, keyedConfig(), func(d *ingestapi.Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.as(t, secretReader, "GET", "/api/v1/jobs/job_none", "")
	require.Contains(t, logs.String(), `"key_id":"reader"`)
}

// appearingJobs is a job store whose records appear a moment after they
// are added, as the projection writes them after a submission; a record
// added again shows its new version from its own moment on.
type appearingJobs struct {
	mu       sync.Mutex
	versions map[string][]appearing
}

type appearing struct {
	raw     []byte
	visible time.Time
}

func (a *appearingJobs) add(key string, raw []byte, after time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.versions == nil {
		a.versions = map[string][]appearing{}
	}
	a.versions[key] = append(a.versions[key], appearing{raw: raw, visible: time.Now().Add(after)})
}

func (a *appearingJobs) Get(_ context.Context, key string) ([]byte, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var raw []byte
	for _, v := range a.versions[key] {
		if !time.Now().Before(v.visible) {
			raw = v.raw
		}
	}
	if raw == nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	return raw, 1, nil
}

func (a *appearingJobs) Keys(context.Context, string) ([]string, error) { return nil, nil }

func (a *appearingJobs) KeysAfter(context.Context, string, string, int) ([]string, error) {
	return nil, nil
}

// Cancelling a job this edge has just submitted waits for its record; an id
// it never submitted is a 404 at once.
func TestCancelRightAfterSubmit(t *testing.T) {
	jobs := &appearingJobs{}
	e := newEdgeWith(t, keyedConfig(), func(d *ingestapi.Deps) { d.Jobs = jobs })
	r := e.as(t, secretWriter, "POST", "/api/v1/documents", `{"content":"Grace Hopper","namespace":"a"}`)
	require.Equal(t, http.StatusAccepted, r.status)
	id := r.json(t)["job_id"].(string)
	jobs.add(jobstate.JobKey(id), mustJSONBytes(t, jobstate.Job{JobID: id, Namespace: "a", Status: jobstate.StatusPending}), 300*time.Millisecond)
	r = e.as(t, secretWriter, "POST", "/api/v1/jobs/"+id+"/cancel", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	require.Equal(t, "kgraph.events.job.cancelled", e.pub.published()[1].Subject)

	start := time.Now()
	e.as(t, secretWriter, "POST", "/api/v1/jobs/job_never_submitted/cancel", "").requireProblem(t, http.StatusNotFound)
	require.Less(t, time.Since(start), time.Second)
}

// A job submitted for approval is pending until dedup gates it: approving
// or cancelling it right after the submission waits for the gate, and a
// cancel's reply waits for the cancellation (seen in CI: "is pending, not
// awaiting approval", and a cancel reply saying "now awaiting_approval").
func TestActionsRightAfterSubmitForApproval(t *testing.T) {
	jobs := &appearingJobs{}
	e := newEdgeWith(t, keyedConfig(), func(d *ingestapi.Deps) { d.Jobs = jobs })
	submit := func() (string, string) {
		r := e.as(t, secretWriter, "POST", "/api/v1/documents", fmt.Sprintf(`{"content":"Grace Hopper %d","namespace":"a","auto_approve":false}`, time.Now().UnixNano()))
		require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
		require.Equal(t, "awaiting_approval", r.json(t)["status"])
		id := r.json(t)["job_id"].(string)
		return id, jobstate.JobKey(id)
	}
	job := func(id string, st jobstate.Status) []byte {
		return mustJSONBytes(t, jobstate.Job{JobID: id, Namespace: "a", Status: st})
	}

	id, key := submit()
	jobs.add(key, job(id, jobstate.StatusPending), 0)
	jobs.add(key, job(id, jobstate.StatusAwaitingApproval), 300*time.Millisecond)
	jobs.add(key, job(id, jobstate.StatusApproved), 600*time.Millisecond)
	r := e.as(t, secretWriter, "POST", "/api/v1/jobs/"+id+"/approve", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	require.Equal(t, "approved", r.json(t)["job"].(map[string]any)["status"])

	id, key = submit()
	jobs.add(key, job(id, jobstate.StatusPending), 0)
	jobs.add(key, job(id, jobstate.StatusAwaitingApproval), 200*time.Millisecond)
	jobs.add(key, job(id, jobstate.StatusCancelled), 500*time.Millisecond)
	r = e.as(t, secretWriter, "POST", "/api/v1/jobs/"+id+"/cancel", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	require.Equal(t, "cancelled", r.json(t)["message"])
	require.Equal(t, "cancelled", r.json(t)["job"].(map[string]any)["status"])

	// A pending job that was not submitted for approval here is a 409 at once.
	jobs.add(jobstate.JobKey("job_elsewhere"), job("job_elsewhere", jobstate.StatusPending), 0)
	start := time.Now()
	e.as(t, secretWriter, "POST", "/api/v1/jobs/job_elsewhere/approve", "").requireProblem(t, http.StatusConflict)
	require.Less(t, time.Since(start), 250*time.Millisecond)
}
