package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

// fakeEdge plays the parts of the REST edge the interactive paths need:
// one job that awaits approval, one document to delete, and a query stream
// whose events the test sets.
type fakeEdge struct {
	mu        sync.Mutex
	polls     int
	approved  bool
	deleted   bool
	requests  []string
	streamSSE string
}

func testEstimate() *events.Estimate {
	return &events.Estimate{Chunks: 3, TokensIn: 1200, TokensOutLow: 300, TokensOutHigh: 900,
		CostLowUSD: 0.001, CostHighUSD: 0.004, Model: "gpt-4o-mini"}
}

func (f *fakeEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	job := func(status string) map[string]any {
		return map[string]any{"job_id": "job_1", "kind": "ingest", "doc_id": "d", "namespace": "default", "status": status,
			"estimate": testEstimate(), "progress": map[string]any{"stage": status}}
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /api/v1/documents":
		reply(http.StatusAccepted, map[string]any{"job_id": "job_1", "doc_id": "d", "namespace": "default",
			"status": "awaiting_approval", "estimate": testEstimate()})
	case "GET /api/v1/jobs/job_1":
		f.polls++
		switch {
		case f.approved:
			reply(http.StatusOK, job("completed"))
		case f.polls == 1:
			reply(http.StatusOK, job("pending")) // the projection has not recorded it yet
		default:
			reply(http.StatusOK, job("awaiting_approval"))
		}
	case "POST /api/v1/jobs/job_1/approve":
		f.approved = true
		reply(http.StatusOK, map[string]any{"job": job("approved"), "message": "approved"})
	case "DELETE /api/v1/documents/d":
		f.deleted = true
		reply(http.StatusAccepted, map[string]any{"job_id": "job_del", "doc_id": "d", "namespace": "default", "status": "pending"})
	case "GET /api/v1/jobs/job_del":
		reply(http.StatusOK, map[string]any{"job_id": "job_del", "kind": "delete", "doc_id": "d", "namespace": "default", "status": "completed"})
	case "GET /api/v1/documents/d":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"title":"Not Found","status":404,"detail":"no document \"d\""}`)
	case "POST /api/v1/admin/dead-letters/7/replay":
		reply(http.StatusAccepted, map[string]any{"seq": 7, "subject": "kgraph.events.document.submitted", "stream_seq": 42,
			"message": "replayed: the event was republished and the dead letter removed"})
	case "POST /api/v1/query/stream":
		if f.streamSSE == "" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"title":"Service Unavailable","status":503,"detail":"query streaming is not configured"}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, f.streamSSE)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeEdge) saw(request string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if r == request {
			return true
		}
	}
	return false
}

// interactiveEnv is an environment whose stdin and stderr are a terminal,
// typing answers.
func interactiveEnv(t *testing.T, edge *fakeEdge, answers string) (*environment, *bytes.Buffer, *bytes.Buffer) {
	srv := httptest.NewServer(edge)
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	getenv := func(name string) string {
		if name == "KG_SERVER" {
			return srv.URL
		}
		return ""
	}
	return &environment{getenv: getenv, stdin: strings.NewReader(answers), stdout: &out, stderr: &errOut,
		interactive: true, width: defaultColumns}, &out, &errOut
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestIngestAsksForApproval(t *testing.T) {
	file := filepath.Join(t.TempDir(), "d.txt")
	require.NoError(t, os.WriteFile(file, []byte("Ada Lovelace met Charles Babbage."), 0o644))
	question := "job_1 (d) awaits approval: 3 chunks, 1200 tokens in, 300–900 tokens out, $0.0010–$0.0040 with gpt-4o-mini\napprove? [y/N] "

	t.Run("yes", func(t *testing.T) {
		edge := &fakeEdge{}
		e, out, errOut := interactiveEnv(t, edge, "y\n")
		require.NoError(t, e.ingest(testContext(t), []string{file}))
		require.Equal(t, question, errOut.String())
		require.True(t, edge.saw("POST /api/v1/jobs/job_1/approve"))
		require.Equal(t, "job_1 approved (d): 3 chunks, 1200 tokens in, 300–900 tokens out, $0.0010–$0.0040 with gpt-4o-mini\n"+
			"job_1 completed (d): 0 chunks, 0 entities, 0 relations\n", out.String())
	})
	t.Run("no", func(t *testing.T) {
		edge := &fakeEdge{}
		e, out, errOut := interactiveEnv(t, edge, "\n")
		require.EqualError(t, e.ingest(testContext(t), []string{file}), "job job_1 awaits approval: kg jobs approve job_1")
		require.Equal(t, question, errOut.String())
		require.False(t, edge.saw("POST /api/v1/jobs/job_1/approve"))
		require.Contains(t, out.String(), "job_1 awaits approval (d): 3 chunks")
	})
	t.Run("--yes asks nothing", func(t *testing.T) {
		edge := &fakeEdge{}
		e, _, errOut := interactiveEnv(t, edge, "")
		require.NoError(t, e.ingest(testContext(t), []string{file, "--yes"}))
		require.Empty(t, errOut.String())
		require.True(t, edge.saw("POST /api/v1/jobs/job_1/approve"))
	})
	t.Run("stdin is the document: no question", func(t *testing.T) {
		edge := &fakeEdge{}
		e, _, errOut := interactiveEnv(t, edge, "the document")
		require.ErrorContains(t, e.ingest(testContext(t), []string{"-"}), "awaits approval")
		require.Empty(t, errOut.String())
		require.False(t, edge.saw("POST /api/v1/jobs/job_1/approve"))
	})
}

func TestDeleteAsksOnATerminal(t *testing.T) {
	edge := &fakeEdge{}
	e, _, errOut := interactiveEnv(t, edge, "n\n")
	require.EqualError(t, e.docs(testContext(t), []string{"delete", "d"}), "not deleted")
	require.Equal(t, "delete document d from the default namespace? [y/N] ", errOut.String())
	require.False(t, edge.saw("DELETE /api/v1/documents/d"))

	e, out, _ := interactiveEnv(t, edge, "yes\n")
	require.NoError(t, e.docs(testContext(t), []string{"delete", "d"}))
	require.True(t, edge.saw("DELETE /api/v1/documents/d"))
	require.Equal(t, "job_del completed: deleted d from namespace default\n", out.String())
}

func TestQueryStream(t *testing.T) {
	sse := func(events ...string) string { return strings.Join(events, "\n\n") + "\n\n" }
	refs := `event: references` + "\n" + `data: {"mode":"local","entities":[{"name":"Ada Lovelace"}],"chunks":[{"doc_id":"d","index":2}]}`
	cases := []struct {
		name, stream, stdout, err string
	}{
		{
			name: "answer",
			stream: sse(refs, "event: delta\ndata: {\"text\":\"Ada \"}", ": keep-alive", "event: delta\ndata: {\"text\":\"wrote notes.\"}",
				`event: done`+"\n"+`data: {"latency_ms":12,"answerer":"llm","model":"m","cached":true}`),
			stdout: "Ada wrote notes.\n\nreferences: 1 entities, 0 relations, 1 chunks, 0 reports\n  chunks: d#2\n  entities: Ada Lovelace\n" +
				"mode local, answered by llm m in 12 ms, cached\n",
		},
		{
			name:   "error after part of the answer",
			stream: sse(refs, "event: delta\ndata: {\"text\":\"Ada \"}", `event: error`+"\n"+`data: {"status":504,"message":"query timed out"}`),
			stdout: "Ada \n",
			err:    "Gateway Timeout: query timed out (HTTP 504)",
		},
		{
			name:   "stream cut short",
			stream: sse(refs, "event: delta\ndata: {\"text\":\"Ada\\n\"}"),
			stdout: "Ada\n",
			err:    "the answer's stream ended before the answer did",
		},
		{
			name: "refused before the stream",
			err:  "Service Unavailable: query streaming is not configured (HTTP 503)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, out, _ := interactiveEnv(t, &fakeEdge{streamSSE: c.stream}, "")
			err := e.query(testContext(t), []string{"Who is Ada?"})
			if c.err == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, c.err)
			}
			require.Equal(t, c.stdout, out.String())
		})
	}
}

func TestEstimateText(t *testing.T) {
	require.Equal(t, "3 chunks, 1200 tokens in, 300–900 tokens out, $0.0010–$0.0040 with gpt-4o-mini", estimateText(testEstimate()))
	require.Equal(t, "7 chunks, no LLM calls (offline extractor)", estimateText(&events.Estimate{Chunks: 7, Model: "offline"}))
	require.Equal(t, "no estimate", estimateText(nil))
	require.Equal(t, "job_9 awaits approval (d): no estimate; approve with: kg jobs approve job_9",
		finalLine(jobView{JobID: "job_9", DocID: "d", Status: statusAwaitingApproval}))
}

func TestReplayDeadLetter(t *testing.T) {
	e, out, _ := interactiveEnv(t, &fakeEdge{}, "")
	require.NoError(t, e.admin(testContext(t), []string{"dead-letters", "replay", "7"}))
	require.Equal(t, "dead letter 7 replayed: the event was republished and the dead letter removed "+
		"(kgraph.events.document.submitted, event stream seq 42)\n", out.String())
	require.EqualError(t, e.admin(testContext(t), []string{"dead-letters", "replay", "0"}), `dead letter "0": want its seq, a positive number`)
}
