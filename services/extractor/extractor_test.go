package extractor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/extractor"
)

// harness is an embedded JetStream with kgraph's topology, the job records
// and the document store.
type harness struct {
	js   jetstream.JetStream
	bus  bus.Bus
	jobs *natskv.Store
	docs *natsdocs.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	env := bustest.New(t, bustest.WithLogLevel(slog.LevelError))
	js := env.JS
	jobs, err := natskv.Open(ctx, js, bus.BucketJobs)
	require.NoError(t, err)
	docs, err := natsdocs.Open(ctx, js, bus.BucketDocuments)
	require.NoError(t, err)
	return harness{
		js:   js,
		bus:  env.Bus,
		jobs: jobs,
		docs: docs,
	}
}

// countingExtraction extracts one entity per chunk and counts the chunks it
// was asked about.
type countingExtraction struct {
	mu    sync.Mutex
	texts []string
}

func (c *countingExtraction) Name() string { return "counting" }

func (c *countingExtraction) Extract(_ context.Context, text string) ([]events.Entity, []events.Relation, events.Usage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.texts = append(c.texts, text)
	return []events.Entity{{Name: "Ada Lovelace", Type: "PERSON", Description: "Mathematician."}}, nil, events.Usage{}, nil
}

func (c *countingExtraction) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.texts)
}

// run runs the extractor until the test ends, then cancels it and waits for
// its drain, before the server shuts down.
func (h harness) run(t *testing.T, cfg extractor.Config, extraction extractor.Extraction) {
	t.Helper()
	svc, err := extractor.New(cfg, h.bus, h.jobs, h.docs, extraction)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("extractor did not stop")
		}
	})
}

// waitIdle waits until both extractor consumers have settled every event
// they consume in the stream.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{bus.ConsumerExtractorDocuments, bus.ConsumerExtractorChunks} {
		spec, err := bus.ConsumerByName(name)
		require.NoError(t, err)
		// What the consumer showed last, for the failure message (written
		// by the condition's goroutine).
		var state atomic.Value
		state.Store("no consumer info")
		ok := assert.Eventually(t, func() bool {
			st, err := h.js.Stream(ctx, bus.StreamEvents)
			if err != nil {
				state.Store(fmt.Sprintf("stream: %v", err))
				return false
			}
			var last uint64
			for _, subject := range spec.Subjects() {
				if m, err := st.GetLastMsgForSubject(ctx, subject); err == nil {
					last = max(last, m.Sequence)
				}
			}
			c, err := h.js.Consumer(ctx, bus.StreamEvents, name)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil {
				return false
			}
			state.Store(fmt.Sprintf("pending %d, ack pending %d, redelivered %d, waiting pulls %d, ack floor %d, delivered %d, last %d",
				info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.AckFloor.Stream, info.Delivered.Stream, last))
			return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last
		}, 10*time.Second, 10*time.Millisecond, "%s did not settle its events", name)
		if !ok {
			t.Fatalf("%s: last seen %s", name, state.Load())
		}
	}
}

func publish[T events.Payload](t *testing.T, h harness, eventID string, data T) {
	t.Helper()
	require.NoError(t, bus.Publish(context.Background(), h.bus.Pub, events.New(eventID, "test", data, time.Now())))
}

func (h harness) putJob(t *testing.T, jobID string, st jobstate.Status) {
	t.Helper()
	raw, err := json.Marshal(jobstate.Job{JobID: jobID, DocID: "doc-" + jobID, Namespace: "books", Status: st})
	require.NoError(t, err)
	_, err = h.jobs.Put(context.Background(), jobstate.JobKey(jobID), raw)
	require.NoError(t, err)
}

// published returns the events of T's type in the stream that belong to jobID.
func published[T events.Payload](t *testing.T, h harness, jobID string) []events.Event[T] {
	t.Helper()
	ctx := context.Background()
	var zero T
	subject, err := events.SubjectOf(zero.EventType())
	require.NoError(t, err)
	st, err := h.js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	var out []events.Event[T]
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		seq = m.Sequence + 1
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		e, err := events.Decode[T](env, h.bus.Validator)
		require.NoError(t, err)
		if e.Data.Ref().JobID == jobID {
			out = append(out, e)
		}
	}
}

func (h harness) requireNoDeadLetters(t *testing.T) {
	t.Helper()
	st, err := h.js.Stream(context.Background(), bus.StreamDeadLetter)
	require.NoError(t, err)
	_, err = st.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject(events.SubjectAllDead))
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "dead letters")
}

func ref(jobID string) events.JobRef {
	return events.JobRef{JobID: jobID, DocID: "doc-" + jobID, Namespace: "books"}
}

// text is a few chunks long at 20 tokens a chunk.
var text = strings.Repeat("Ada Lovelace wrote the first program for the Analytical Engine. ", 8)

func chunkCreated(jobID string, index int) events.ChunkCreated {
	chunkText := "Ada Lovelace wrote the first program."
	return events.ChunkCreated{JobRef: ref(jobID), Text: chunkText, Tokens: 8, ChunkPosition: events.ChunkPosition{
		ChunkID: extractor.ChunkID("books", "doc-"+jobID, index, chunkText), Index: index, ChunksTotal: 3}}
}

func TestStoppedJobsAreNotChunked(t *testing.T) {
	h := newHarness(t)
	extraction := &countingExtraction{}
	h.run(t, extractor.Config{ChunkTokens: 20, OverlapTokens: 2}, extraction)
	tests := []struct {
		jobID string
		// status is the job record's; empty means no record yet.
		status  jobstate.Status
		chunked bool
	}{
		{jobID: "job-processing", status: jobstate.StatusProcessing, chunked: true},
		{jobID: "job-unrecorded", chunked: true},
		{jobID: "job-cancelled", status: jobstate.StatusCancelled},
		{jobID: "job-expired", status: jobstate.StatusExpired},
		{jobID: "job-failed", status: jobstate.StatusFailed},
	}
	for _, tt := range tests {
		if tt.status != "" {
			h.putJob(t, tt.jobID, tt.status)
		}
		publish(t, h, "accept-"+tt.jobID, events.DocumentAccepted{JobRef: ref(tt.jobID), Content: text, ContentSHA256: events.ContentSHA256(text)})
	}
	h.waitIdle(t)
	for _, tt := range tests {
		t.Run(tt.jobID, func(t *testing.T) {
			chunked := published[events.DocumentChunked](t, h, tt.jobID)
			created := published[events.ChunkCreated](t, h, tt.jobID)
			extracted := published[events.ChunkExtracted](t, h, tt.jobID)
			if !tt.chunked {
				require.Empty(t, chunked)
				require.Empty(t, created)
				require.Empty(t, extracted)
				return
			}
			require.Len(t, chunked, 1)
			require.Greater(t, chunked[0].Data.ChunksTotal, 1)
			require.Len(t, created, chunked[0].Data.ChunksTotal)
			require.Len(t, extracted, chunked[0].Data.ChunksTotal)
		})
	}
	h.requireNoDeadLetters(t)
}

func TestCancelledJobStopsBetweenChunks(t *testing.T) {
	h := newHarness(t)
	extraction := &countingExtraction{}
	h.run(t, extractor.Config{}, extraction)

	h.putJob(t, "job-1", jobstate.StatusProcessing)
	publish(t, h, "chunk-0", chunkCreated("job-1", 0))
	h.waitIdle(t)
	require.Len(t, published[events.ChunkExtracted](t, h, "job-1"), 1)

	// Cancelled after the first chunk: the rest is acknowledged unextracted,
	// also on redelivery.
	h.putJob(t, "job-1", jobstate.StatusCancelled)
	publish(t, h, "chunk-1", chunkCreated("job-1", 1))
	publish(t, h, "chunk-2", chunkCreated("job-1", 2))
	publish(t, h, "chunk-2-again", chunkCreated("job-1", 2))
	h.waitIdle(t)
	extracted := published[events.ChunkExtracted](t, h, "job-1")
	require.Len(t, extracted, 1)
	require.Equal(t, 0, extracted[0].Data.Index)
	require.Equal(t, 1, extraction.calls(), "no LLM call for a cancelled job's chunks")
	h.requireNoDeadLetters(t)
}

// brokenJobs fails every read, like an unreachable KV store.
type brokenJobs struct{ reads chan struct{} }

func (b brokenJobs) Get(context.Context, string) ([]byte, uint64, error) {
	select {
	case b.reads <- struct{}{}:
	default:
	}
	return nil, 0, errors.New("kv unreachable")
}

func TestJobReadErrorIsRetried(t *testing.T) {
	h := newHarness(t)
	// Far from dead-lettering while the test looks.
	h.bus.Settings.MaxDeliver = 100
	jobs := brokenJobs{reads: make(chan struct{}, 100)}
	svc, err := extractor.New(extractor.Config{}, h.bus, jobs, h.docs, &countingExtraction{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	publish(t, h, "chunk-0", chunkCreated("job-1", 0))
	// A permanent error would be dead-lettered at the first delivery; a
	// retryable one is read again.
	for range 3 {
		select {
		case <-jobs.reads:
		case <-time.After(10 * time.Second):
			t.Fatal("the chunk was not redelivered")
		}
	}
	require.Empty(t, published[events.ChunkExtracted](t, h, "job-1"))
	h.requireNoDeadLetters(t)
}

// When one of the extractor's two consumers dies, the extractor stops with
// its error instead of running on with only the other (the process exits,
// and its supervisor restarts it).
func TestFailingConsumerStopsTheExtractor(t *testing.T) {
	h := newHarness(t)
	svc, err := extractor.New(extractor.Config{}, h.bus, h.jobs, h.docs, &countingExtraction{})
	require.NoError(t, err)
	// The chunks' durable consumer is gone: binding it fails.
	require.NoError(t, h.js.DeleteConsumer(context.Background(), bus.StreamEvents, bus.ConsumerExtractorChunks))
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, bus.ConsumerExtractorChunks)
	case <-time.After(10 * time.Second):
		t.Fatal("the extractor kept running with a dead consumer")
	}
}

// countingJobs counts the reads of each job record.
type countingJobs struct {
	extractor.Jobs
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingJobs) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	c.mu.Lock()
	c.reads[key]++
	c.mu.Unlock()
	return c.Jobs.Get(ctx, key)
}

func (c *countingJobs) readsOf(jobID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[jobstate.JobKey(jobID)]
}

// A running job is read before each of its chunks, which is how a
// cancellation reaches the extractor; a stopped one is read once, and the
// rest of its chunks are dropped without a read.
func TestStoppedJobIsReadOnce(t *testing.T) {
	h := newHarness(t)
	jobs := &countingJobs{Jobs: h.jobs, reads: map[string]int{}}
	extraction := &countingExtraction{}
	// One chunk at a time: concurrent chunks of a job not yet seen stopped
	// would each read it.
	svc, err := extractor.New(extractor.Config{ChunkConcurrency: 1}, h.bus, jobs, h.docs, extraction)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	const chunks = 6
	tests := []struct {
		jobID     string
		status    jobstate.Status
		wantReads int
		extracted int
	}{
		{jobID: "job-running", status: jobstate.StatusProcessing, wantReads: chunks, extracted: chunks},
		{jobID: "job-cancelled", status: jobstate.StatusCancelled, wantReads: 1},
		{jobID: "job-failed", status: jobstate.StatusFailed, wantReads: 1},
	}
	for _, tt := range tests {
		h.putJob(t, tt.jobID, tt.status)
		for i := range chunks {
			publish(t, h, fmt.Sprintf("chunk-%s-%d", tt.jobID, i), chunkCreated(tt.jobID, i))
		}
	}
	h.waitIdle(t)
	for _, tt := range tests {
		t.Run(tt.jobID, func(t *testing.T) {
			require.Equal(t, tt.wantReads, jobs.readsOf(tt.jobID))
			require.Len(t, published[events.ChunkExtracted](t, h, tt.jobID), tt.extracted)
		})
	}
	require.Equal(t, chunks, extraction.calls())
	h.requireNoDeadLetters(t)
}
