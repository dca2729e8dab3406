package ingestapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// fakePublisher records what the edge publishes, or fails with err.
type fakePublisher struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	err  error
}

func (p *fakePublisher) PublishMsg(_ context.Context, m *nats.Msg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, m)
	return nil
}

func (p *fakePublisher) published() []*nats.Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// fakeDocuments is an in-memory object store, or fails with err.
type fakeDocuments struct {
	mu   sync.Mutex
	text map[string]string
	err  error
}

func (d *fakeDocuments) Put(_ context.Context, name, text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	if d.text == nil {
		d.text = map[string]string{}
	}
	d.text[name] = text
	return nil
}

func (d *fakeDocuments) Get(_ context.Context, name string) (string, error) {
	if t, ok := d.get(name); ok {
		return t, nil
	}
	return "", fmt.Errorf("get %s: %w", name, kv.ErrNotFound)
}

func (d *fakeDocuments) get(name string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.text[name]
	return t, ok
}

// fakeRecords is an in-memory KV store that checks keys as natskv does:
// dot-separated non-empty tokens of [A-Za-z0-9_-]; any other key is an
// error that is not kv.ErrNotFound, as the real store reports it.
type fakeRecords struct {
	values map[string][]byte
	err    error
}

func (r *fakeRecords) Get(_ context.Context, key string) ([]byte, uint64, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	for token := range strings.SplitSeq(key, ".") {
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(token) {
			return nil, 0, fmt.Errorf("get: key %q is invalid", key)
		}
	}
	v, ok := r.values[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	return v, 1, nil
}

func (r *fakeRecords) Keys(_ context.Context, prefix string) ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	var keys []string
	for k := range r.values {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (r *fakeRecords) KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	keys, err := r.Keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k <= after })
	return keys[:min(limit, len(keys))], nil
}

// putJob stores a job record and its job index entries, as the projection
// writes them.
func (r *fakeRecords) putJob(t *testing.T, j jobstate.Job) {
	t.Helper()
	r.values[jobstate.JobKey(j.JobID)] = mustJSONBytes(t, j)
	for _, k := range jobstate.JobIndexKeys(&j) {
		r.values[k] = []byte("1")
	}
}

// putDoc stores a document record and its document index entries, as the
// projection writes them.
func (r *fakeRecords) putDoc(t *testing.T, d jobstate.Document) {
	t.Helper()
	r.values[jobstate.DocKey(d.Namespace, d.DocID)] = mustJSONBytes(t, d)
	for _, k := range jobstate.DocIndexKeys(&d) {
		r.values[k] = []byte("1")
	}
}

// fakeRequester answers NATS requests with reply and records them.
type fakeRequester struct {
	mu    sync.Mutex
	reqs  []*nats.Msg
	reply func(ctx context.Context, m *nats.Msg) (*nats.Msg, error)
}

func (q *fakeRequester) RequestMsgWithContext(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	q.mu.Lock()
	q.reqs = append(q.reqs, m)
	q.mu.Unlock()
	if q.reply == nil {
		return nil, nats.ErrNoResponders
	}
	return q.reply(ctx, m)
}

func (q *fakeRequester) requests() []*nats.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.reqs)
}

type edge struct {
	srv   *ingestapi.Server
	pub   *fakePublisher
	docs  *fakeDocuments
	jobs  *fakeRecords
	claim *fakeRecords
	query *fakeRequester
}

func newEdge(t *testing.T, cfg ingestapi.Config, health ...ingestapi.HealthCheck) *edge {
	t.Helper()
	return newEdgeWith(t, cfg, func(d *ingestapi.Deps) { d.Health = health })
}

// newEdgeWith builds an edge on fakes; adjust changes its dependencies.
func newEdgeWith(t *testing.T, cfg ingestapi.Config, adjust func(*ingestapi.Deps)) *edge {
	t.Helper()
	e := &edge{pub: &fakePublisher{}, docs: &fakeDocuments{}, jobs: &fakeRecords{values: map[string][]byte{}},
		claim: &fakeRecords{values: map[string][]byte{}}, query: &fakeRequester{}}
	if len(cfg.Auth.Keys) == 0 {
		cfg.Auth.Disabled = true
	}
	require.NoError(t, cfg.Validate())
	deps := ingestapi.Deps{
		Publisher: e.pub, Documents: e.docs, Jobs: e.jobs, Claims: e.claim, Query: e.query,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	adjust(&deps)
	e.srv = ingestapi.New(cfg, deps)
	return e
}

type response struct {
	status int
	header http.Header
	raw    []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.raw, &m), string(r.raw))
	return m
}

// requireProblem checks an RFC 9457 problem answer with the given status.
func (r response) requireProblem(t *testing.T, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, string(r.raw))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), string(r.raw))
	p := r.json(t)
	require.EqualValues(t, status, p["status"], string(r.raw))
	require.NotEmpty(t, p["title"], string(r.raw))
	return p
}

func (e *edge) do(t *testing.T, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return e.serve(t, httptest.NewRequest(method, path, rd))
}

func (e *edge) serve(t *testing.T, req *http.Request) response {
	t.Helper()
	if req.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func decodeSubmitted(t *testing.T, m *nats.Msg) events.Event[events.DocumentSubmitted] {
	t.Helper()
	subject, err := events.SubjectOf(events.TypeDocumentSubmitted)
	require.NoError(t, err)
	require.Equal(t, subject, m.Subject)
	env, err := events.DecodeEnvelope(m.Header, m.Data)
	require.NoError(t, err)
	v, err := events.NewValidator()
	require.NoError(t, err)
	e, err := events.Decode[events.DocumentSubmitted](env, v)
	require.NoError(t, err)
	require.Equal(t, ingestapi.Source, e.Source)
	require.Equal(t, m.Header.Get(events.HeaderID), m.Header.Get(events.HeaderMsgID), "JetStream dedups on the event id")
	require.Equal(t, e.ID, m.Header.Get(events.HeaderMsgID))
	return e
}

func TestSubmit(t *testing.T) {
	jobIDPattern := regexp.MustCompile(`^job_[0-9a-f]{24}$`)
	content := "Ada Lovelace wrote the first program.\nCharles Babbage built the engine."
	cases := []struct {
		name          string
		body          map[string]any
		wantDoc, want string
	}{
		{"defaults", map[string]any{"content": content}, "doc_" + events.ContentSHA256(content)[:24], "default"},
		{"explicit ids", map[string]any{"content": content, "doc_id": "book:1.v2", "namespace": "library_2",
			"metadata": map[string]string{"author": "Ada", "lang": "en"}}, "book:1.v2", "library_2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{})
			before := time.Now().UTC()
			r := e.do(t, http.MethodPost, "/api/v1/documents", mustJSON(t, c.body))
			require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
			reply := r.json(t)
			jobID, _ := reply["job_id"].(string)
			require.Regexp(t, jobIDPattern, jobID)
			require.Equal(t, c.wantDoc, reply["doc_id"])
			require.Equal(t, c.want, reply["namespace"])
			require.Equal(t, "pending", reply["status"])
			require.Equal(t, false, reply["duplicate"])
			require.NotContains(t, reply, "existing_job_id")

			msgs := e.pub.published()
			require.Len(t, msgs, 1)
			ev := decodeSubmitted(t, msgs[0])
			d := ev.Data
			require.Equal(t, events.JobRef{JobID: jobID, DocID: c.wantDoc, Namespace: c.want}, d.JobRef)
			require.Empty(t, d.Content, "the text travels by reference")
			stored, ok := e.docs.get(d.ContentRef)
			require.True(t, ok, "content_ref %q names the stored text", d.ContentRef)
			require.Equal(t, content, stored)
			require.Equal(t, events.ContentSHA256(content), d.ContentSHA256)
			require.Equal(t, len(content), d.ContentBytes)
			require.WithinRange(t, d.SubmittedAt, before.Add(-time.Second), time.Now().UTC().Add(time.Second))
			if md, ok := c.body["metadata"]; ok {
				require.Equal(t, md, d.Metadata)
			} else {
				require.Empty(t, d.Metadata)
			}
		})
	}
}

func TestSubmitGivesEveryJobItsOwnID(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	seen := map[string]bool{}
	for range 20 {
		r := e.do(t, http.MethodPost, "/api/v1/documents", `{"content":"same text"}`)
		require.Equal(t, http.StatusAccepted, r.status)
		id := r.json(t)["job_id"].(string)
		require.False(t, seen[id], "job id %s reused", id)
		seen[id] = true
	}
	ids := map[string]bool{}
	for _, m := range e.pub.published() {
		ids[m.Header.Get(events.HeaderMsgID)] = true
	}
	require.Len(t, ids, 20, "each submission is its own event, not a JetStream duplicate")
}

func TestSubmitKnownDuplicate(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	content := "The same text,\ntwice."
	e.claim.values[jobstate.ClaimKey("books", events.ContentSHA256(content))] = []byte(mustJSON(t,
		jobstate.Claim{JobID: "job_000000000000000000000001", DocID: "first", ClaimedAt: time.Now()}))

	// Other line endings and trailing spaces are the same content.
	r := e.do(t, http.MethodPost, "/api/v1/documents", mustJSON(t, map[string]any{
		"content": strings.ReplaceAll(content, "\n", "  \r\n") + " \r\n", "namespace": "books"}))
	require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	reply := r.json(t)
	require.Equal(t, true, reply["duplicate"])
	require.Equal(t, "duplicate", reply["status"])
	require.Equal(t, "job_000000000000000000000001", reply["existing_job_id"])
	require.NotEqual(t, reply["existing_job_id"], reply["job_id"])
	require.Len(t, e.pub.published(), 1, "dedup still records the duplicate job from the event")
	require.Equal(t, reply["job_id"], decodeSubmitted(t, e.pub.published()[0]).Data.JobID)

	// The claim is per namespace.
	r = e.do(t, http.MethodPost, "/api/v1/documents", mustJSON(t, map[string]any{"content": content}))
	require.Equal(t, http.StatusAccepted, r.status)
	require.Equal(t, false, r.json(t)["duplicate"])
}

func TestSubmitIgnoresUnreadableClaims(t *testing.T) {
	cases := map[string]func(e *edge, hash string){
		"claims store down": func(e *edge, _ string) { e.claim.err = errors.New("kv down") },
		"garbage claim":     func(e *edge, hash string) { e.claim.values[jobstate.ClaimKey("default", hash)] = []byte("{") },
		"claim without job": func(e *edge, hash string) { e.claim.values[jobstate.ClaimKey("default", hash)] = []byte(`{}`) },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{})
			setup(e, events.ContentSHA256("text"))
			r := e.do(t, http.MethodPost, "/api/v1/documents", `{"content":"text"}`)
			require.Equal(t, http.StatusAccepted, r.status, "the claim is only a hint; dedup decides")
			require.Equal(t, false, r.json(t)["duplicate"])
			require.Len(t, e.pub.published(), 1)
		})
	}
}

func TestSubmitBackendFailures(t *testing.T) {
	t.Run("document store", func(t *testing.T) {
		e := newEdge(t, ingestapi.Config{})
		e.docs.err = errors.New("object store down")
		r := e.do(t, http.MethodPost, "/api/v1/documents", `{"content":"text"}`)
		p := r.requireProblem(t, http.StatusServiceUnavailable)
		require.NotContains(t, p["detail"], "object store down", "internal errors stay in the log")
		require.Empty(t, e.pub.published(), "no event for text that was not stored")
	})
	t.Run("publish", func(t *testing.T) {
		e := newEdge(t, ingestapi.Config{})
		e.pub.err = errors.New("no stream ack")
		r := e.do(t, http.MethodPost, "/api/v1/documents", `{"content":"text"}`)
		r.requireProblem(t, http.StatusServiceUnavailable)
	})
}

func TestBadInput(t *testing.T) {
	const submit, query = "/api/v1/documents", "/api/v1/query"
	cases := []struct {
		name, method, path, body string
		want                     int // 0: any 4xx
	}{
		{"malformed json", "POST", submit, `{"content": "abc"`, 400},
		{"trailing garbage", "POST", submit, `{"content": "abc"} x`, 0},
		{"content not a string", "POST", submit, `{"content": 42}`, 422},
		{"metadata not strings", "POST", submit, `{"content": "x", "metadata": {"a": 1}}`, 422},
		{"metadata not an object", "POST", submit, `{"content": "x", "metadata": "a"}`, 422},
		{"namespace not a string", "POST", submit, `{"content": "x", "namespace": 7}`, 422},
		{"missing content", "POST", submit, `{}`, 422},
		{"null content", "POST", submit, `{"content": null}`, 0},
		{"empty content", "POST", submit, `{"content": ""}`, 422},
		{"blank content", "POST", submit, `{"content": "   \n\t "}`, 422},
		{"namespace with space", "POST", submit, `{"content": "x", "namespace": "a b"}`, 422},
		{"namespace with dot", "POST", submit, `{"content": "x", "namespace": "a.b"}`, 422},
		{"namespace wildcard", "POST", submit, `{"content": "x", "namespace": "*"}`, 422},
		{"namespace leading dash", "POST", submit, `{"content": "x", "namespace": "-a"}`, 422},
		{"namespace too long", "POST", submit, `{"content": "x", "namespace": "` + strings.Repeat("n", 65) + `"}`, 422},
		{"doc id with slash", "POST", submit, `{"content": "x", "doc_id": "a/b"}`, 422},
		{"doc id with space", "POST", submit, `{"content": "x", "doc_id": "a b"}`, 422},
		{"doc id leading dot", "POST", submit, `{"content": "x", "doc_id": ".a"}`, 422},
		{"doc id too long", "POST", submit, `{"content": "x", "doc_id": "` + strings.Repeat("d", 129) + `"}`, 422},
		{"invalid utf-8", "POST", submit, "{\"content\": \"caf\xe9\"}", 400},
		{"invalid utf-8 in a key", "POST", submit, "{\"content\": \"x\", \"\xff\": \"y\"}", 400},
		{"array body", "POST", submit, `[1,2]`, 0},
		{"null body", "POST", submit, `null`, 0},
		{"string body", "POST", submit, `"content"`, 0},
		{"empty body", "POST", submit, ``, 0},
		{"unknown mode", "POST", query, `{"question": "who?", "mode": "psychic"}`, 422},
		{"empty mode", "POST", query, `{"question": "who?", "mode": ""}`, 422},
		{"mode not a string", "POST", query, `{"question": "who?", "mode": 1}`, 422},
		{"empty question", "POST", query, `{"question": "", "mode": "local"}`, 422},
		{"blank question", "POST", query, `{"question": " \n ", "mode": "local"}`, 422},
		{"missing question", "POST", query, `{"mode": "local"}`, 422},
		{"question too long", "POST", query, `{"question": "` + strings.Repeat("q", 4001) + `"}`, 422},
		{"negative top_k", "POST", query, `{"question": "who?", "top_k": -1}`, 422},
		{"top_k too large", "POST", query, `{"question": "who?", "top_k": 1001}`, 422},
		{"level too deep", "POST", query, `{"question": "who?", "level": 17}`, 422},
		{"negative budget", "POST", query, `{"question": "who?", "naive_max_tokens": -1}`, 422},
		{"fractional top_k", "POST", query, `{"question": "who?", "top_k": 1.5}`, 422},
		{"bad query namespace", "POST", query, `{"question": "who?", "namespace": "a.b"}`, 422},
		{"unknown route", "GET", "/api/v1/nope", "", 404},
		{"unknown route with body", "POST", "/api/v2/documents", `{"content":"x"}`, 404},
		{"wrong method on documents", "PUT", submit, "", 405},
		{"wrong method on query", "PUT", query, `{"question":"x"}`, 405},
		{"wrong method on jobs", "DELETE", "/api/v1/jobs/job_1", "", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{})
			var body io.Reader
			if c.body != "" || c.method == "POST" {
				body = strings.NewReader(c.body)
			}
			r := e.serve(t, httptest.NewRequest(c.method, c.path, body))
			if c.want == 0 {
				require.True(t, r.status >= 400 && r.status < 500, "status %d: %s", r.status, r.raw)
				r.requireProblem(t, r.status)
			} else {
				r.requireProblem(t, c.want)
			}
			require.Empty(t, e.pub.published(), "nothing is published for a rejected request")
			require.Empty(t, e.query.requests(), "nothing is asked of the query service for a rejected request")
		})
	}
}

// Huma rejects members the schema does not name (additionalProperties is
// false by default), so a misspelt field fails loudly instead of being lost.
func TestUnknownFieldsAreRejected(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	r := e.do(t, http.MethodPost, "/api/v1/documents", `{"content": "x", "namespce": "books"}`)
	p := r.requireProblem(t, http.StatusUnprocessableEntity)
	require.Contains(t, fmt.Sprint(p["errors"]), "namespce")
	require.Empty(t, e.pub.published())

	r = e.do(t, http.MethodPost, "/api/v1/query", `{"question": "x", "topk": 3}`)
	r.requireProblem(t, http.StatusUnprocessableEntity)
}

func TestOversizeBody(t *testing.T) {
	const limit = 1024
	doc := func(n int) string { // a submission of exactly n bytes
		const frame = `{"content":""}`
		return `{"content":"` + strings.Repeat("a", n-len(frame)) + `"}`
	}
	require.Len(t, doc(limit), limit)
	big := doc(4 * limit)

	e := newEdge(t, ingestapi.Config{MaxBodyBytes: limit})
	t.Run("at the limit", func(t *testing.T) {
		r := e.do(t, http.MethodPost, "/api/v1/documents", doc(limit))
		require.Equal(t, http.StatusAccepted, r.status, string(r.raw))
	})
	t.Run("one byte over", func(t *testing.T) {
		e.do(t, http.MethodPost, "/api/v1/documents", doc(limit+1)).requireProblem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("with content length", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/documents", strings.NewReader(big))
		require.EqualValues(t, len(big), req.ContentLength)
		e.serve(t, req).requireProblem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("unknown length", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/documents", iotest.OneByteReader(strings.NewReader(big)))
		req.ContentLength = -1
		e.serve(t, req).requireProblem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("query", func(t *testing.T) {
		r := e.do(t, http.MethodPost, "/api/v1/query", `{"question":"`+strings.Repeat("q", 2*limit)+`"}`)
		r.requireProblem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked over http", func(t *testing.T) {
		var sawLength int64
		var sawEncoding []string
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawLength, sawEncoding = r.ContentLength, r.TransferEncoding
			e.srv.Handler().ServeHTTP(w, r)
		}))
		defer ts.Close()
		// A reader of unknown length makes the client send the body chunked.
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/documents", io.MultiReader(strings.NewReader(big)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.EqualValues(t, -1, sawLength)
		require.Equal(t, []string{"chunked"}, sawEncoding)
		response{status: resp.StatusCode, header: resp.Header, raw: raw}.requireProblem(t, http.StatusRequestEntityTooLarge)
	})
	require.Len(t, e.pub.published(), 1, "only the submission at the limit went through")

	// The query operation has its own, smaller bound under a large edge limit.
	e = newEdge(t, ingestapi.Config{})
	r := e.do(t, http.MethodPost, "/api/v1/query", `{"question":"`+strings.Repeat("q", 70<<10)+`"}`)
	r.requireProblem(t, http.StatusRequestEntityTooLarge)
	require.Empty(t, e.query.requests())
}

func TestUnreadableBody(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/documents", iotest.ErrReader(errors.New("connection reset")))
	req.ContentLength = -1
	e.serve(t, req).requireProblem(t, http.StatusBadRequest)
	require.Empty(t, e.pub.published())
}

func TestJobView(t *testing.T) {
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	updated := created.Add(90 * time.Second)
	var merged, indexed jobstate.Bitset
	merged.Set(0)
	merged.Set(1)
	indexed.Set(0)
	running := jobstate.Job{JobID: "job_abc", DocID: "doc-1", Namespace: "books", Status: jobstate.StatusProcessing,
		Submitted: true, Accepted: true, Chunked: true, ChunksTotal: 4, Merged: merged, Indexed: indexed,
		Entities: 7, Relations: 3, Extractor: "llm:gpt-4o-mini", CreatedAt: created, UpdatedAt: updated,
		Usage: events.Usage{Calls: 6, CachedCalls: 2, PromptTokens: 7200, CompletionTokens: 900, CostUSD: 0.00162, SkippedRecords: 1}}
	failed := jobstate.Job{JobID: "job_failed", DocID: "doc-2", Namespace: "default", Status: jobstate.StatusFailed,
		Submitted: true, FailedStage: "chunk", Error: "document text not found", CreatedAt: created, UpdatedAt: updated}
	dup := jobstate.Job{JobID: "job_dup", DocID: "doc-3", Namespace: "default", Status: jobstate.StatusDuplicate,
		ExistingJobID: "job_abc", CreatedAt: created, UpdatedAt: updated}

	e := newEdge(t, ingestapi.Config{})
	for _, j := range []jobstate.Job{running, failed, dup} {
		e.jobs.values[jobstate.JobKey(j.JobID)] = []byte(mustJSON(t, j))
	}
	cases := []struct {
		id   string
		want string
	}{
		{"job_abc", `{"job_id":"job_abc","kind":"ingest","doc_id":"doc-1","namespace":"books","status":"processing",
			"progress":{"stage":"extracting","percent":37,"chunks_processed":1,"chunks_total":4,"entities":7,"relations":3},
			"duplicate":false,"extractor":"llm:gpt-4o-mini","created_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-01T10:01:30Z",
			"usage":{"calls":6,"cached_calls":2,"prompt_tokens":7200,"completion_tokens":900,"cost_usd":0.00162,"skipped_records":1}}`},
		{"job_failed", `{"job_id":"job_failed","kind":"ingest","doc_id":"doc-2","namespace":"default","status":"failed",
			"progress":{"stage":"failed","percent":0,"chunks_processed":0,"chunks_total":0,"entities":0,"relations":0},
			"duplicate":false,"created_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-01T10:01:30Z",
			"error":"document text not found","usage":{"calls":0,"cached_calls":0,"prompt_tokens":0,"completion_tokens":0,"cost_usd":0,"skipped_records":0}}`},
		{"job_dup", `{"job_id":"job_dup","kind":"ingest","doc_id":"doc-3","namespace":"default","status":"duplicate",
			"progress":{"stage":"duplicate","percent":0,"chunks_processed":0,"chunks_total":0,"entities":0,"relations":0},
			"duplicate":true,"existing_job_id":"job_abc","created_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-01T10:01:30Z",
			"usage":{"calls":0,"cached_calls":0,"prompt_tokens":0,"completion_tokens":0,"cost_usd":0,"skipped_records":0}}`},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "/api/v1/jobs/"+c.id, "")
			require.Equal(t, http.StatusOK, r.status, string(r.raw))
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.JSONEq(t, c.want, string(r.raw))
		})
	}
}

func TestJobNotFound(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	e.jobs.values[jobstate.JobKey("job_abc")] = []byte(mustJSON(t, jobstate.Job{JobID: "job_abc", Status: jobstate.StatusPending}))
	for _, path := range []string{
		"job_unknown",
		"job_abc.x", // would be another key, or a subject token, if it reached the store
		"job.abc",
		"*",
		"job_*",
		">",
		"job_abc%20",
		"job%20abc",
		"%20job_abc",
		"job_abc!",
		"job_%C3%A9",
		"job:abc",
		"job%2Fabc",
		"-job",
	} {
		t.Run(path, func(t *testing.T) {
			e.do(t, http.MethodGet, "/api/v1/jobs/"+path, "").requireProblem(t, http.StatusNotFound)
		})
	}
	// The path parameter's schema bounds the length.
	e.do(t, http.MethodGet, "/api/v1/jobs/"+strings.Repeat("j", 129), "").requireProblem(t, http.StatusUnprocessableEntity)
}

func TestJobStoreFailures(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	e.jobs.values[jobstate.JobKey("job_garbled")] = []byte("{not json")
	e.do(t, http.MethodGet, "/api/v1/jobs/job_garbled", "").requireProblem(t, http.StatusServiceUnavailable)
	e.jobs.values[jobstate.DocKey("default", "doc_garbled")] = []byte(`{"doc_id": 7}`)
	e.do(t, http.MethodGet, "/api/v1/documents/doc_garbled", "").requireProblem(t, http.StatusServiceUnavailable)
	// A listing leaves the unreadable record out and lists the rest.
	at := time.Now()
	e.jobs.putJob(t, jobstate.Job{JobID: "job_listed", Namespace: "default", Status: jobstate.StatusPending, CreatedAt: at})
	for _, k := range jobstate.JobIndexKeys(&jobstate.Job{JobID: "job_garbled", Namespace: "default", CreatedAt: at}) {
		e.jobs.values[k] = []byte("1")
	}
	r := e.do(t, http.MethodGet, "/api/v1/jobs", "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	listed := r.json(t)["jobs"].([]any)
	require.Len(t, listed, 1)
	require.Equal(t, "job_listed", listed[0].(map[string]any)["job_id"])

	e.jobs.err = errors.New("kv down")
	e.do(t, http.MethodGet, "/api/v1/jobs/job_abc", "").requireProblem(t, http.StatusServiceUnavailable)
}

func queryReply(t *testing.T, resp events.QueryResponse) func(context.Context, *nats.Msg) (*nats.Msg, error) {
	data := mustJSON(t, resp)
	return func(context.Context, *nats.Msg) (*nats.Msg, error) { return &nats.Msg{Data: []byte(data)}, nil }
}

func TestQuery(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	answer := events.QueryResponse{Answer: "Ada Lovelace.", Mode: "naive", Answerer: "extractive", References: events.References{
		Entities:  []events.EntityRef{{Key: "ADA LOVELACE", Name: "Ada Lovelace", Type: "PERSON", Score: 0.9}},
		Relations: []events.RelationRef{{Source: "ADA LOVELACE", Target: "CHARLES BABBAGE", Weight: 2}},
		Chunks:    []events.ChunkRef{{ChunkID: strings.Repeat("a", 32), DocID: "doc-1", Index: 3, Score: 0.75}},
	}}
	e.query.reply = queryReply(t, answer)

	r := e.do(t, http.MethodPost, "/api/v1/query", `{"question":"Who wrote the first program?","mode":"naive","namespace":"books","top_k":7}`)
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	var got ingestapi.QueryReply
	require.NoError(t, json.Unmarshal(r.raw, &got))
	require.Equal(t, answer.Answer, got.Answer)
	require.Equal(t, "naive", got.Mode)
	require.Equal(t, "extractive", got.Answerer)
	require.Equal(t, answer.References, got.References)
	require.GreaterOrEqual(t, got.LatencyMS, 0.0)

	reqs := e.query.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, events.QuerySubject, reqs[0].Subject)
	var sent events.QueryRequest
	require.NoError(t, json.Unmarshal(reqs[0].Data, &sent))
	require.Equal(t, events.QueryRequest{Question: "Who wrote the first program?", Mode: "naive", Namespace: "books", TopK: 7}, sent)
}

// The schema documents mode as defaulting to local, so it must not also
// require it.
func TestQueryDefaults(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	e.query.reply = queryReply(t, events.QueryResponse{Answer: "a", Mode: events.ModeLocal})
	r := e.do(t, http.MethodPost, "/api/v1/query", `{"question":"Who?"}`)
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	reqs := e.query.requests()
	require.Len(t, reqs, 1)
	var sent events.QueryRequest
	require.NoError(t, json.Unmarshal(reqs[0].Data, &sent))
	require.Equal(t, events.QueryRequest{Question: "Who?", Mode: events.ModeLocal, Namespace: events.DefaultNamespace}, sent)

	schema := e.srv.OpenAPI().Components.Schemas.Map()["QueryBody"]
	require.NotNil(t, schema)
	require.Equal(t, []string{"question"}, schema.Required)
	require.Equal(t, "local", schema.Properties["mode"].Default)
}

func TestQueryFailures(t *testing.T) {
	errorReply := func(code, desc string) func(context.Context, *nats.Msg) (*nats.Msg, error) {
		return func(context.Context, *nats.Msg) (*nats.Msg, error) {
			return &nats.Msg{Header: nats.Header{micro.ErrorCodeHeader: {code}, micro.ErrorHeader: {desc}}}, nil
		}
	}
	failing := func(err error) func(context.Context, *nats.Msg) (*nats.Msg, error) {
		return func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, err }
	}
	cases := []struct {
		name       string
		reply      func(context.Context, *nats.Msg) (*nats.Msg, error)
		want       int
		wantDetail string
	}{
		{"bad request", errorReply("400", "unknown mode"), 400, "unknown mode"},
		{"not implemented", errorReply("501", "global mode needs community reports"), 501, "global mode needs community reports"},
		{"backend down", errorReply("503", "query backend unavailable"), 503, "query backend unavailable"},
		{"non-numeric code", errorReply("oops", "?"), 502, ""},
		{"success code", errorReply("200", "?"), 502, ""},
		{"out of range code", errorReply("600", "?"), 502, ""},
		{"no responders", failing(nats.ErrNoResponders), 503, ""},
		{"wrapped no responders", failing(fmt.Errorf("request: %w", nats.ErrNoResponders)), 503, ""},
		{"connection closed", failing(nats.ErrConnectionClosed), 503, ""},
		{"nats timeout", failing(nats.ErrTimeout), 504, ""},
		{"blocks past the timeout", func(ctx context.Context, _ *nats.Msg) (*nats.Msg, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, 504, ""},
		{"garbage reply", func(context.Context, *nats.Msg) (*nats.Msg, error) { return &nats.Msg{Data: []byte("<html>")}, nil }, 502, ""},
		{"empty reply", func(context.Context, *nats.Msg) (*nats.Msg, error) { return &nats.Msg{}, nil }, 502, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{QueryTimeout: 50 * time.Millisecond})
			e.query.reply = c.reply
			start := time.Now()
			r := e.do(t, http.MethodPost, "/api/v1/query", `{"question":"who?","mode":"local"}`)
			require.Less(t, time.Since(start), 10*time.Second)
			p := r.requireProblem(t, c.want)
			if c.wantDetail != "" {
				require.Equal(t, c.wantDetail, p["detail"])
			}
		})
	}
}

func TestQueryTimeoutBoundsTheRequest(t *testing.T) {
	e := newEdge(t, ingestapi.Config{QueryTimeout: 50 * time.Millisecond})
	var deadline time.Time
	e.query.reply = func(ctx context.Context, _ *nats.Msg) (*nats.Msg, error) {
		deadline, _ = ctx.Deadline()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	start := time.Now()
	e.do(t, http.MethodPost, "/api/v1/query", `{"question":"who?","mode":"naive"}`).requireProblem(t, http.StatusGatewayTimeout)
	require.WithinDuration(t, start.Add(50*time.Millisecond), deadline, 40*time.Millisecond)
}

func TestHealth(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(msg string) func(context.Context) error {
		return func(context.Context) error { return errors.New(msg) }
	}
	cases := []struct {
		name   string
		checks []ingestapi.HealthCheck
		want   int
		status string
	}{
		{"all healthy", []ingestapi.HealthCheck{{"nats", ok}, {"kv", ok}}, 200, "healthy"},
		{"one down", []ingestapi.HealthCheck{{"nats", ok}, {"kv", down("bucket missing")}}, 200, "degraded"},
		{"all down", []ingestapi.HealthCheck{{"nats", down("disconnected")}, {"kv", down("bucket missing")}}, 503, "unhealthy"},
		{"no backends", nil, 200, "healthy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{}, c.checks...)
			r := e.do(t, http.MethodGet, "/api/v1/health", "")
			require.Equal(t, c.want, r.status, string(r.raw))
			var h ingestapi.HealthReply
			require.NoError(t, json.Unmarshal(r.raw, &h))
			require.Equal(t, c.status, h.Status)
			require.Len(t, h.Backends, len(c.checks))
			for _, chk := range c.checks {
				b := h.Backends[chk.Name]
				require.GreaterOrEqual(t, b.LatencyMS, 0.0)
				if err := chk.Check(context.Background()); err != nil {
					require.Equal(t, "unhealthy", b.Status)
					require.Equal(t, err.Error(), b.Error)
				} else {
					require.Equal(t, "healthy", b.Status)
					require.Empty(t, b.Error)
				}
			}
		})
	}
}

func TestLivenessAndReadiness(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("disconnected") }
	cases := []struct {
		name        string
		checks      []ingestapi.HealthCheck
		wantReady   int
		readyStatus string
	}{
		{"all healthy", []ingestapi.HealthCheck{{"nats", ok}, {"kv", ok}}, 200, "healthy"},
		{"degraded is not ready", []ingestapi.HealthCheck{{"nats", ok}, {"kv", down}}, 503, "degraded"},
		{"all down", []ingestapi.HealthCheck{{"nats", down}}, 503, "unhealthy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEdge(t, ingestapi.Config{}, c.checks...)
			live := e.do(t, http.MethodGet, "/api/v1/health/live", "")
			require.Equal(t, http.StatusOK, live.status, "liveness does not depend on backends")
			require.Equal(t, "healthy", live.json(t)["status"])
			ready := e.do(t, http.MethodGet, "/api/v1/health/ready", "")
			require.Equal(t, c.wantReady, ready.status, string(ready.raw))
			require.Equal(t, c.readyStatus, ready.json(t)["status"])
		})
	}
}

func TestHealthCheckIsBounded(t *testing.T) {
	var hadDeadline bool
	e := newEdge(t, ingestapi.Config{}, ingestapi.HealthCheck{Name: "slow", Check: func(ctx context.Context) error {
		_, hadDeadline = ctx.Deadline()
		return nil
	}})
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/api/v1/health", "").status)
	require.True(t, hadDeadline, "a hanging backend must not hang the health endpoint")
}

func TestEveryResponseHasARequestID(t *testing.T) {
	e := newEdge(t, ingestapi.Config{MaxBodyBytes: 64})
	e.jobs.values[jobstate.JobKey("job_1")] = []byte(mustJSON(t, jobstate.Job{JobID: "job_1", Status: jobstate.StatusPending}))
	e.query.reply = queryReply(t, events.QueryResponse{Answer: "a", Mode: "local"})
	cases := []struct{ method, path, body string }{
		{"POST", "/api/v1/documents", `{"content":"x"}`},
		{"POST", "/api/v1/documents", `{"content":""}`},
		{"POST", "/api/v1/documents", `{"content":"` + strings.Repeat("x", 100) + `"}`},
		{"POST", "/api/v1/documents", "\xff"},
		{"GET", "/api/v1/jobs/job_1", ""},
		{"GET", "/api/v1/jobs/job_2", ""},
		{"POST", "/api/v1/query", `{"question":"x"}`},
		{"GET", "/api/v1/health", ""},
		{"GET", "/nope", ""},
		{"PATCH", "/api/v1/health", ""},
	}
	ids := map[string]bool{}
	for _, c := range cases {
		r := e.do(t, c.method, c.path, c.body)
		id := r.header.Get("X-Request-Id")
		require.NotEmpty(t, id, "%s %s answered %d", c.method, c.path, r.status)
		require.False(t, ids[id], "request id %s reused", id)
		ids[id] = true
	}

	// A caller's id is kept, so logs can be joined across services.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/health", nil)
	req.Header.Set("X-Request-Id", "trace-me-42")
	require.Equal(t, "trace-me-42", e.serve(t, req).header.Get("X-Request-Id"))
}

func TestOpenAPI(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	doc := e.srv.OpenAPI()
	require.Equal(t, "3.1.0", doc.OpenAPI)
	ops := map[string]string{}
	for path, item := range doc.Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put,
			"PATCH": item.Patch, "DELETE": item.Delete, "HEAD": item.Head, "OPTIONS": item.Options} {
			if op != nil {
				ops[op.OperationID] = method + " " + path
			}
		}
	}
	for id, route := range map[string]string{
		"submit-document": "POST /api/v1/documents",
		"get-job":         "GET /api/v1/jobs/{id}",
		"query":           "POST /api/v1/query",
		"health":          "GET /api/v1/health",
	} {
		require.Equal(t, route, ops[id], "operation %s", id)
	}
	require.Contains(t, doc.Paths["/api/v1/documents"].Post.Responses, "202", "a submission is accepted, not created")

	// The document is also served, as JSON that says the same.
	r := e.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.status)
	served := r.json(t)
	require.Equal(t, "3.1.0", served["openapi"])
	require.Contains(t, served["paths"], "/api/v1/jobs/{id}")
}
