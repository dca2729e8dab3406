package ingestapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// The REST edge's connection is a QueryStreamer.
var _ ingestapi.QueryStreamer = (*nats.Conn)(nil)

type sseEvent struct {
	name string
	data string
}

// readEvents parses a server-sent event stream to its end, skipping
// comments.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" || cur.data != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func names(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name
	}
	return out
}

// natsPair is an embedded NATS server with the edge's connection and the
// fake query service's.
func natsPair(t *testing.T) (edge, service *nats.Conn) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	edge, err = srv.Connect("edge")
	require.NoError(t, err)
	t.Cleanup(edge.Close)
	service, err = srv.Connect("query")
	require.NoError(t, err)
	t.Cleanup(service.Close)
	return edge, service
}

// respond makes service answer streamed queries with the events, recording
// the requests it got.
func respond(t *testing.T, service *nats.Conn, evs ...events.QueryStreamEvent) *requestLog {
	t.Helper()
	log := &requestLog{}
	sub, err := service.Subscribe(events.QueryStreamSubject, func(m *nats.Msg) {
		var req events.QueryRequest
		if json.Unmarshal(m.Data, &req) == nil {
			log.add(req)
		}
		for _, e := range evs {
			data, err := json.Marshal(e)
			if err != nil {
				panic(err)
			}
			_ = service.PublishMsg(&nats.Msg{Subject: m.Reply, Data: data, Header: nats.Header{events.StreamEventHeader: []string{e.Type}}})
		}
	})
	require.NoError(t, err)
	require.NoError(t, service.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return log
}

type requestLog struct {
	mu   sync.Mutex
	reqs []events.QueryRequest
}

func (l *requestLog) add(r events.QueryRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

func (l *requestLog) all() []events.QueryRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]events.QueryRequest(nil), l.reqs...)
}

func newStreamEdge(t *testing.T, cfg ingestapi.Config, qs ingestapi.QueryStreamer, jobs ingestapi.Records) *httptest.Server {
	t.Helper()
	if jobs == nil {
		jobs = &fakeRecords{values: map[string][]byte{}}
	}
	deps := ingestapi.Deps{Jobs: jobs, Claims: &fakeRecords{values: map[string][]byte{}}, Query: &fakeRequester{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if qs != nil {
		deps.QueryStream = qs
	}
	cfg.Auth.Disabled = true
	ts := httptest.NewServer(ingestapi.New(cfg, deps).Handler())
	t.Cleanup(ts.Close)
	return ts
}

// fetch sends a request to ts and reads the whole answer.
func fetch(t *testing.T, ts *httptest.Server, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

func post(t *testing.T, ts *httptest.Server, path, body string) response {
	t.Helper()
	return fetch(t, ts, http.MethodPost, path, body)
}

func requireStream(t *testing.T, r response) []sseEvent {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	require.Equal(t, "text/event-stream", r.header.Get("Content-Type"))
	return readEvents(t, strings.NewReader(string(r.raw)))
}

func TestQueryStream(t *testing.T) {
	edgeNC, service := natsPair(t)
	usage := &events.QueryUsage{Calls: 1, PromptTokens: 100, CompletionTokens: 7}
	log := respond(t, service,
		events.QueryStreamEvent{Type: events.StreamReferences, Mode: "local", Answerer: events.AnswererLLM, Model: "gpt-x",
			References: &events.References{Entities: []events.EntityRef{{Key: "e1", Name: "ALICE", Type: "PERSON"}}}},
		events.QueryStreamEvent{Type: events.StreamDelta, Delta: "Alice "},
		events.QueryStreamEvent{Type: events.StreamDelta, Delta: "knows "},
		events.QueryStreamEvent{Type: events.StreamDelta, Delta: "Bob."},
		events.QueryStreamEvent{Type: events.StreamDone, Usage: usage, LatencyMS: 12},
	)
	ts := newStreamEdge(t, ingestapi.Config{}, edgeNC, nil)

	evs := requireStream(t, post(t, ts, "/api/v1/query/stream", `{"question":"who knows Bob?","top_k":5}`))
	require.Equal(t, []string{"references", "delta", "delta", "delta", "done"}, names(evs))

	var refs ingestapi.StreamReferences
	require.NoError(t, json.Unmarshal([]byte(evs[0].data), &refs))
	require.Equal(t, "local", refs.Mode)
	require.Equal(t, []events.EntityRef{{Key: "e1", Name: "ALICE", Type: "PERSON"}}, refs.Entities)

	var answer strings.Builder
	for _, e := range evs[1:4] {
		var d ingestapi.StreamDelta
		require.NoError(t, json.Unmarshal([]byte(e.data), &d))
		answer.WriteString(d.Text)
	}
	require.Equal(t, "Alice knows Bob.", answer.String())

	var done ingestapi.StreamDone
	require.NoError(t, json.Unmarshal([]byte(evs[4].data), &done))
	require.Equal(t, usage, done.Usage)
	require.Equal(t, "gpt-x", done.Model)
	require.Equal(t, events.AnswererLLM, done.Answerer)
	require.False(t, done.Cached)
	require.Positive(t, done.LatencyMS)

	reqs := log.all()
	require.Len(t, reqs, 1)
	require.Equal(t, "who knows Bob?", reqs[0].Question)
	require.Equal(t, events.ModeLocal, reqs[0].Mode, "the body's default mode is sent")
	require.Equal(t, events.DefaultNamespace, reqs[0].Namespace)
	require.Equal(t, 5, reqs[0].TopK)
}

func TestQueryStreamErrorEvent(t *testing.T) {
	edgeNC, service := natsPair(t)
	respond(t, service,
		events.QueryStreamEvent{Type: events.StreamReferences, Mode: "global", Answerer: events.AnswererLLM},
		events.QueryStreamEvent{Type: events.StreamDelta, Delta: "partial"},
		events.QueryStreamEvent{Type: events.StreamError, Error: &events.QueryError{Status: http.StatusBadGateway, Message: "llm went away"}},
	)
	ts := newStreamEdge(t, ingestapi.Config{}, edgeNC, nil)

	evs := requireStream(t, post(t, ts, "/api/v1/query/stream", `{"question":"themes?","mode":"global"}`))
	require.Equal(t, []string{"references", "delta", "error"}, names(evs))
	require.JSONEq(t, `{"status":502,"message":"llm went away"}`, evs[2].data)
}

func TestQueryStreamTimeout(t *testing.T) {
	edgeNC, service := natsPair(t)
	// A service that takes the request and never answers.
	sub, err := service.SubscribeSync(events.QueryStreamSubject)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, service.Flush())
	ts := newStreamEdge(t, ingestapi.Config{QueryTimeout: 300 * time.Millisecond}, edgeNC, nil)

	start := time.Now()
	evs := requireStream(t, post(t, ts, "/api/v1/query/stream", `{"question":"anyone?"}`))
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, []string{"error"}, names(evs))
	require.JSONEq(t, `{"status":504,"message":"query timed out"}`, evs[0].data)
	// The edge unsubscribed from its inbox.
	require.Eventually(t, func() bool { return edgeNC.NumSubscriptions() == 0 }, 2*time.Second, 10*time.Millisecond)
}

func TestQueryStreamRefusals(t *testing.T) {
	edgeNC, _ := natsPair(t)
	ts := newStreamEdge(t, ingestapi.Config{}, edgeNC, nil)

	p := (post(t, ts, "/api/v1/query/stream", `{"question":"anyone there?"}`)).requireProblem(t, http.StatusServiceUnavailable)
	require.Equal(t, "query service unavailable", p["detail"])
	require.Equal(t, 0, edgeNC.NumSubscriptions(), "the inbox is released")

	for name, body := range map[string]string{
		"missing question": `{}`,
		"blank question":   `{"question":"   "}`,
		"unknown mode":     `{"question":"q","mode":"deep"}`,
		"bad namespace":    `{"question":"q","namespace":"a b"}`,
		"unknown field":    `{"question":"q","stream":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			(post(t, ts, "/api/v1/query/stream", body)).requireProblem(t, http.StatusUnprocessableEntity)
		})
	}

	unwired := newStreamEdge(t, ingestapi.Config{}, nil, nil)
	p = (post(t, unwired, "/api/v1/query/stream", `{"question":"q"}`)).requireProblem(t, http.StatusServiceUnavailable)
	require.Contains(t, p["detail"], "not configured")
}

func TestQueryModes(t *testing.T) {
	ts := newStreamEdge(t, ingestapi.Config{}, nil, nil)
	resp, err := http.Get(ts.URL + "/api/v1/query/modes")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var modes []ingestapi.QueryMode
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&modes))
	require.Len(t, modes, 3)
	for i, want := range []string{"local", "global", "naive"} {
		require.Equal(t, want, modes[i].Mode)
		require.NotEmpty(t, modes[i].Description)
	}
}

// scriptedJobs serves one job whose record advances through states, one
// state per call to Get, staying at the last.
type scriptedJobs struct {
	id     string
	states []jobstate.Job
	calls  atomic.Int64
}

func (s *scriptedJobs) Keys(context.Context, string) ([]string, error) { return nil, nil }

func (s *scriptedJobs) KeysAfter(context.Context, string, string, int) ([]string, error) {
	return nil, nil
}

func (s *scriptedJobs) Get(_ context.Context, key string) ([]byte, uint64, error) {
	if key != jobstate.JobKey(s.id) {
		return nil, 0, kv.ErrNotFound
	}
	n := int(s.calls.Add(1)) - 1
	j := s.states[min(n, len(s.states)-1)]
	raw, err := json.Marshal(j)
	return raw, uint64(n + 1), err
}

func jobAt(id string, status jobstate.Status, at time.Time) jobstate.Job {
	return jobstate.Job{JobID: id, DocID: "doc_1", Namespace: "default", Status: status, CreatedAt: at, UpdatedAt: at}
}

func TestJobEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jobs := &scriptedJobs{id: "job_1", states: []jobstate.Job{
		jobAt("job_1", jobstate.StatusPending, t0),
		jobAt("job_1", jobstate.StatusPending, t0), // unchanged: no event
		jobAt("job_1", jobstate.StatusProcessing, t0.Add(time.Second)),
		jobAt("job_1", jobstate.StatusCompleted, t0.Add(2*time.Second)),
	}}
	ts := newStreamEdge(t, ingestapi.Config{JobPollInterval: 5 * time.Millisecond}, nil, jobs)

	// The answer ends because the job reached a terminal status.
	evs := requireStream(t, fetch(t, ts, http.MethodGet, "/api/v1/jobs/job_1/events", ""))
	require.Equal(t, []string{"job", "job", "job"}, names(evs))
	var statuses []string
	for _, e := range evs {
		var v ingestapi.JobView
		require.NoError(t, json.Unmarshal([]byte(e.data), &v))
		require.Equal(t, "job_1", v.JobID)
		statuses = append(statuses, v.Status)
	}
	require.Equal(t, []string{"pending", "processing", "completed"}, statuses)
	require.EqualValues(t, 4, jobs.calls.Load(), "no poll after the terminal status")
}

func TestJobEventsRefusals(t *testing.T) {
	jobs := &scriptedJobs{id: "job_1", states: []jobstate.Job{jobAt("job_1", jobstate.StatusPending, time.Now())}}
	ts := newStreamEdge(t, ingestapi.Config{}, nil, jobs)
	for _, id := range []string{"job_unknown", "job.1", "*"} {
		fetch(t, ts, http.MethodGet, "/api/v1/jobs/"+id+"/events", "").requireProblem(t, http.StatusNotFound)
	}
}

func TestJobEventsStopWhenTheClientLeaves(t *testing.T) {
	jobs := &scriptedJobs{id: "job_1", states: []jobstate.Job{jobAt("job_1", jobstate.StatusProcessing, time.Now())}}
	ts := newStreamEdge(t, ingestapi.Config{JobPollInterval: 5 * time.Millisecond}, nil, jobs)

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/jobs/job_1/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: job\n", line)
	cancel()

	// Polling stops soon after the client is gone.
	require.Eventually(t, func() bool {
		before := jobs.calls.Load()
		time.Sleep(50 * time.Millisecond)
		return jobs.calls.Load() == before
	}, 5*time.Second, 10*time.Millisecond)
}

func TestStreamsAreDocumented(t *testing.T) {
	spec := fetch(t, newStreamEdge(t, ingestapi.Config{}, nil, nil), http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, spec.status)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]any `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(spec.raw, &doc))
	for path, method := range map[string]string{"/api/v1/query/stream": "post", "/api/v1/jobs/{id}/events": "get"} {
		require.Contains(t, doc.Paths[path][method].Responses["200"].Content, "text/event-stream", path)
	}
	require.Contains(t, doc.Paths["/api/v1/query/modes"], "get")
}
