package serve_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// TestMain checks for goroutine leaks. One goroutine is ignored by name:
// the object store's Put (nats.go v1.55.0) starts a publisher status
// goroutine and stops it at once, and when the stop wins the race the
// goroutine waits on a nil channel for good (jetstream/publish.go
// resetPendingAcksOnReconnect against cleanupReplySub). It is nats.go's and
// holds nothing of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

type running struct {
	client e2e.Client
	ready  serve.Ready
	stop   func()
}

func start(t *testing.T, dataDir string) running {
	t.Helper()
	return startTB(t, dataDir)
}

// startB starts kgraph for a benchmark.
func startB(b *testing.B) e2e.Client { return startTB(b, b.TempDir()).client }

func startTB(t testing.TB, dataDir string, configure ...func(*serve.Config)) running {
	t.Helper()
	cfg := serve.Config{DataDir: dataDir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Bus: bus.DefaultSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Edge: ingestapi.Config{Auth: ingestapi.AuthConfig{Disabled: true}}}
	cfg.Bus.AckWait = 5 * time.Second
	for _, c := range configure {
		c(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan serve.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, cfg, func(r serve.Ready) { readyc <- r }) }()
	var r serve.Ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(60 * time.Second):
				t.Fatal("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return running{client: e2e.Client{Base: "http://" + r.HTTPAddr}, ready: r, stop: stop}
}

func submit(t *testing.T, c e2e.Client, body map[string]any) map[string]any {
	t.Helper()
	r, err := c.JSON(context.Background(), http.MethodPost, "/api/v1/documents", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, r.Status, string(r.Raw))
	return r.Body
}

// Test 1: one ~40-chunk document through the whole pipeline in one process.
func TestDocumentThroughThePipeline(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	doc := e2e.Corpus(1, 44_000)
	sub := submit(t, s.client, map[string]any{"content": doc, "doc_id": "corpus-1", "namespace": "books"})
	require.Equal(t, "pending", sub["status"])
	require.Equal(t, "corpus-1", sub["doc_id"])
	jobID := sub["job_id"].(string)

	job, err := s.client.WaitJob(ctx, jobID, 3*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	p := job["progress"].(map[string]any)
	total := p["chunks_total"].(float64)
	require.InDelta(t, 40, total, 5, "the document should make about 40 chunks")
	require.Equal(t, total, p["chunks_processed"])
	require.Equal(t, float64(100), p["percent"])
	require.Greater(t, p["entities"].(float64), float64(10))
	require.Greater(t, p["relations"].(float64), float64(10))
	require.Equal(t, "offline", job["extractor"])

	for _, mode := range []string{"naive", "local"} {
		r, err := s.client.JSON(ctx, http.MethodPost, "/api/v1/query",
			map[string]any{"question": "Who worked on the Analytical Engine with Ada Lovelace?", "mode": mode, "namespace": "books"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, mode, r.Body["mode"])
		require.NotEmpty(t, r.Body["answer"])
		refs := r.Body["references"].(map[string]any)
		chunks := refs["chunks"].([]any)
		require.NotEmpty(t, chunks, mode)
		for _, c := range chunks {
			require.Equal(t, "corpus-1", c.(map[string]any)["doc_id"], mode)
		}
		if mode == "local" {
			require.NotEmpty(t, refs["entities"])
			require.NotEmpty(t, refs["relations"])
		}
	}
	// Another namespace sees nothing of it.
	r, err := s.client.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{"question": "Ada Lovelace", "mode": "naive", "namespace": "other"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.Body["references"].(map[string]any)["chunks"])
}

// Test 4: dedup per namespace.
func TestDuplicateContent(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	doc := e2e.Corpus(2, 3000)
	first := submit(t, s.client, map[string]any{"content": doc})
	job1, err := s.client.WaitJob(ctx, first["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job1["status"])

	// Same text with other line endings and trailing spaces is the same content.
	again := submit(t, s.client, map[string]any{"content": strings.ReplaceAll(doc, "\n", " \r\n")})
	require.Equal(t, true, again["duplicate"], "the submit reply knows the earlier job")
	require.Equal(t, first["job_id"], again["existing_job_id"])
	job2, err := s.client.WaitJob(ctx, again["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "duplicate", job2["status"])
	require.Equal(t, true, job2["duplicate"])
	require.Equal(t, first["job_id"], job2["existing_job_id"])
	require.Zero(t, job2["progress"].(map[string]any)["chunks_total"], "no extraction work for a duplicate")

	other := submit(t, s.client, map[string]any{"content": doc, "namespace": "elsewhere"})
	require.Equal(t, false, other["duplicate"])
	job3, err := s.client.WaitJob(ctx, other["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job3["status"])
}

// Test 5: bad input at the edge and on the bus.
func TestBadInput(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	big := `{"content":"` + strings.Repeat("a", 9<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed json", "POST", "/api/v1/documents", `{"content": "abc"`, 400},
		{"wrong type", "POST", "/api/v1/documents", `{"content": 42}`, 422},
		{"missing content", "POST", "/api/v1/documents", `{}`, 422},
		{"empty content", "POST", "/api/v1/documents", `{"content": ""}`, 422},
		{"blank content", "POST", "/api/v1/documents", `{"content": "   \n\t "}`, 422},
		{"bad namespace", "POST", "/api/v1/documents", `{"content": "x", "namespace": "a b"}`, 422},
		{"oversize", "POST", "/api/v1/documents", big, 413},
		{"invalid utf-8", "POST", "/api/v1/documents", "{\"content\": \"caf\xe9\"}", 400},
		{"array body", "POST", "/api/v1/documents", `[1,2]`, 422},
		{"unknown mode", "POST", "/api/v1/query", `{"question": "who?", "mode": "psychic"}`, 422},
		{"empty question", "POST", "/api/v1/query", `{"question": "", "mode": "local"}`, 422},
		{"unknown job", "GET", "/api/v1/jobs/job_nope", "", 404},
		{"unknown route", "GET", "/api/v1/nope", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := s.client.Do(ctx, c.method, c.path, "application/json", []byte(c.body))
			require.NoError(t, err)
			require.Equal(t, c.want, r.Status, string(r.Raw))
			require.Equal(t, "application/problem+json", r.ContentType)
			require.NotEmpty(t, r.Body["detail"].(string)+r.Body["title"].(string))
		})
	}

	// Malformed events and events of unknown type published straight onto
	// NATS land in the dead-letter stream, and the pipeline keeps going.
	nc, err := nats.Connect(s.ready.NATSURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("not a cloudevent")})
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: events.SubjectPrefix + "invoice.paid", Header: nats.Header{
		"ce-specversion": {"1.0"}, "ce-id": {"inv-1"}, "ce-source": {"billing"}, "ce-type": {"com.example.invoice.paid.v1"}}, Data: []byte(`{}`)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := js.Stream(ctx, bus.StreamDeadLetter)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.SubjectAllDead))
		if err != nil {
			return false
		}
		// dedup and projection both see the malformed submission; the
		// projection alone sees the unknown type.
		return info.State.Subjects[events.DeadLetterSubject(bus.ConsumerDedup)] == 1 &&
			info.State.Subjects[events.DeadLetterSubject(bus.ConsumerProjection)] == 2
	}, 20*time.Second, 100*time.Millisecond)

	ok := submit(t, s.client, map[string]any{"content": e2e.Corpus(3, 500)})
	job, err := s.client.WaitJob(ctx, ok["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"])
}

// An outside publisher's document.submitted with inline content is ingested.
func TestOutsidePublisher(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	nc, err := nats.Connect(s.ready.NATSURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	e := events.New("crm-42", "crm.example.com", events.DocumentSubmitted{
		JobRef:  events.JobRef{JobID: "crm-job-42", DocID: "crm-doc-42", Namespace: "crm"},
		Content: e2e.Corpus(4, 2000), SubmittedAt: time.Now().UTC(),
	}, time.Now())
	m, err := events.Encode(e)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)
	job, err := s.client.WaitJob(ctx, "crm-job-42", time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"])
}

// Test 7: an acknowledged submission survives SIGTERM-style shutdown: after
// a restart on the same data directory the job completes.
func TestShutdownKeepsAcknowledgedSubmissions(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	var jobs []string
	for i := range 5 {
		sub := submit(t, s.client, map[string]any{"content": e2e.Corpus(uint64(10+i), 6000)})
		jobs = append(jobs, sub["job_id"].(string))
	}
	s.stop() // at once, while the pipeline is busy

	s2 := start(t, dir)
	for _, id := range jobs {
		job, err := s2.client.WaitJob(context.Background(), id, 2*time.Minute)
		require.NoError(t, err)
		require.Equal(t, "completed", job["status"], "%s: %v", id, job)
	}
}
