package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/projection"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an embedded JetStream with kgraph's topology and the job store.
type harness struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	bus  bus.Bus
	jobs *natskv.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	env := bustest.New(t)
	js := env.JS
	jobs, err := natskv.Open(ctx, js, bus.BucketJobs)
	require.NoError(t, err)
	return harness{
		nc:   env.NC,
		js:   js,
		bus:  env.Bus,
		jobs: jobs,
	}
}

// runProjection runs the service until the test ends, then cancels it and
// waits for its drain, before the server shuts down.
func (h harness) runProjection(t *testing.T, cfg projection.Config) *projection.Service {
	t.Helper()
	svc := projection.New(cfg, h.bus, h.jobs, h.nc)
	h.run(t, svc)
	return svc
}

// run runs svc until the test ends, like runProjection.
func (h harness) run(t *testing.T, svc *projection.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("projection did not stop")
		}
	})
}

func (h harness) publish(t *testing.T, steps ...step) {
	t.Helper()
	for _, s := range steps {
		require.NoError(t, s.publish(context.Background(), h.bus.Pub, s.id), "publish %s", s.id)
	}
}

// waitIdle waits until the projection has handled every event in the stream,
// including the job.completed events it published itself.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var last string // the state seen last, for the failure message
	idle := func() bool {
		st, err := h.js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			last = err.Error()
			return false
		}
		sinfo, err := st.Info(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		c, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerProjection)
		if err != nil {
			last = err.Error()
			return false
		}
		cinfo, err := c.Info(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("stream last seq %d; consumer pending %d, ack pending %d, redelivered %d, waiting pulls %d, delivered stream seq %d, ack floor stream seq %d",
			sinfo.State.LastSeq, cinfo.NumPending, cinfo.NumAckPending, cinfo.NumRedelivered, cinfo.NumWaiting, cinfo.Delivered.Stream, cinfo.AckFloor.Stream)
		return cinfo.NumPending == 0 && cinfo.NumAckPending == 0 && cinfo.AckFloor.Stream >= sinfo.State.LastSeq
	}
	deadline := time.Now().Add(10 * time.Second)
	for !idle() {
		if time.Now().After(deadline) {
			require.FailNow(t, "projection did not catch up with the stream", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h harness) job(t *testing.T, jobID string) jobstate.Job {
	t.Helper()
	raw, _, err := h.jobs.Get(context.Background(), jobstate.JobKey(jobID))
	require.NoError(t, err, "job %s has no record", jobID)
	var j jobstate.Job
	require.NoError(t, json.Unmarshal(raw, &j))
	return j
}

// completions returns the job.completed events in the stream.
func (h harness) completions(t *testing.T) []events.Event[events.JobCompleted] {
	t.Helper()
	return published[events.JobCompleted](t, h)
}

// published returns the events of T's type in the stream.
func published[T events.Payload](t *testing.T, h harness) []events.Event[T] {
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
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		e, err := events.Decode[T](env, h.bus.Validator)
		require.NoError(t, err)
		out = append(out, e)
		seq = m.Sequence + 1
	}
}

// requireNoDeadLetters guards against events the projection rejected: a
// rejected event would silently be missing from the fold.
func (h harness) requireNoDeadLetters(t *testing.T) {
	t.Helper()
	st, err := h.js.Stream(context.Background(), bus.StreamDeadLetter)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "dead letters")
}

// step is one event to publish, under an id that a test may change.
type step struct {
	id      string
	publish func(ctx context.Context, pub bus.MsgPublisher, id string) error
}

func stepOf[T events.Payload](id string, data T) step {
	return step{id: id, publish: func(ctx context.Context, pub bus.MsgPublisher, id string) error {
		return bus.Publish(ctx, pub, events.New(id, "test", data, time.Now()))
	}}
}

// stepAt is an event whose time is at.
func stepAt[T events.Payload](id string, data T, at time.Time) step {
	return step{id: id, publish: func(ctx context.Context, pub bus.MsgPublisher, id string) error {
		return bus.Publish(ctx, pub, events.New(id, "test", data, at))
	}}
}

// withID is the same payload under another event id: the stream does not
// drop it, so the projection folds it a second time.
func (s step) withID(id string) step { s.id = id; return s }

var submittedAt = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// flow builds the events of one job. Merging chunk i brings the document's
// totals to docEntities[i] and docRelations[i]; the values are not
// increasing in chunk order, as when merges finish out of order.
type flow struct {
	ref          events.JobRef
	docEntities  []int
	docRelations []int
}

func newFlow(jobID string) flow {
	return flow{
		ref:          events.JobRef{JobID: jobID, DocID: "doc-" + jobID, Namespace: "books"},
		docEntities:  []int{4, 9, 7},
		docRelations: []int{2, 6, 5},
	}
}

func (f flow) chunks() int        { return len(f.docEntities) }
func (f flow) wantEntities() int  { return slices.Max(f.docEntities) }
func (f flow) wantRelations() int { return slices.Max(f.docRelations) }

func (f flow) id(kind string, i int) string { return fmt.Sprintf("%s-%s-%d", f.ref.JobID, kind, i) }

func (f flow) position(i int) events.ChunkPosition {
	return events.ChunkPosition{ChunkID: fmt.Sprintf("%032x", i+1), Index: i, ChunksTotal: f.chunks()}
}

func (f flow) submitted() step {
	return stepOf(f.id("submitted", 0), events.DocumentSubmitted{JobRef: f.ref, Content: "Ada Lovelace met Charles Babbage.",
		ClientID: "client-7", SubmittedAt: submittedAt})
}

func (f flow) accepted() step {
	return stepOf(f.id("accepted", 0), events.DocumentAccepted{JobRef: f.ref, Content: "Ada Lovelace met Charles Babbage.",
		ContentSHA256: events.ContentSHA256("Ada Lovelace met Charles Babbage.")})
}

func (f flow) chunked() step {
	return stepOf(f.id("chunked", 0), events.DocumentChunked{JobRef: f.ref, ChunksTotal: f.chunks(), TokensTotal: 100 * f.chunks()})
}

func (f flow) merged(i int) step {
	return stepOf(f.id("merged", i), events.ChunkMerged{JobRef: f.ref, ChunkPosition: f.position(i),
		Entities: 3, Relations: 2, DocEntities: f.docEntities[i], DocRelations: f.docRelations[i]})
}

func (f flow) indexed(i int) step {
	return stepOf(f.id("indexed", i), events.ChunkIndexed{JobRef: f.ref, ChunkPosition: f.position(i), Vectors: 4})
}

func (f flow) allMerged() []step {
	var out []step
	for i := range f.chunks() {
		out = append(out, f.merged(i))
	}
	return out
}

func (f flow) allIndexed() []step {
	var out []step
	for i := range f.chunks() {
		out = append(out, f.indexed(i))
	}
	return out
}

// inFlowOrder is every event of the job in the order the pipeline emits them.
func (f flow) inFlowOrder() []step {
	return slices.Concat([]step{f.submitted(), f.accepted(), f.chunked()}, f.allMerged(), f.allIndexed())
}

func failed(f flow, id, stage, reason string) step {
	return stepOf(id, events.JobFailed{JobRef: f.ref, Stage: stage, Reason: reason})
}

func TestJobCompletesInFlowOrder(t *testing.T) {
	h := newHarness(t)
	// One event at a time, so the stream order is the order of folding.
	h.runProjection(t, projection.Config{Concurrency: 1})
	f := newFlow("job-flow")

	h.publish(t, f.submitted(), f.accepted(), f.chunked())
	h.publish(t, f.allMerged()...)
	h.publish(t, f.indexed(0))
	h.waitIdle(t)
	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusProcessing, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "extracting", Percent: (3 + 1) * 100 / 6, ChunksProcessed: 1, ChunksTotal: 3,
		Entities: f.wantEntities(), Relations: f.wantRelations()}, j.Progress())
	require.True(t, j.FinishedAt.IsZero())
	require.Empty(t, h.completions(t), "job.completed before every chunk is indexed")

	h.publish(t, f.indexed(1), f.indexed(2))
	h.waitIdle(t)
	j = h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100, ChunksProcessed: 3, ChunksTotal: 3,
		Entities: f.wantEntities(), Relations: f.wantRelations()}, j.Progress())
	require.Equal(t, f.ref.DocID, j.DocID)
	require.Equal(t, f.ref.Namespace, j.Namespace)
	require.Equal(t, "client-7", j.ClientID)
	require.True(t, j.Submitted && j.Accepted && j.Chunked)
	require.Equal(t, submittedAt, j.CreatedAt.UTC())
	require.False(t, j.FinishedAt.IsZero())

	done := h.completions(t)
	require.Len(t, done, 1, "job.completed must be published once, whatever folds after completion")
	require.Equal(t, events.JobCompleted{JobRef: f.ref, ChunksTotal: 3, Entities: f.wantEntities(), Relations: f.wantRelations()}, done[0].Data)
	require.Equal(t, f.ref.JobID, done[0].Subject)

	// A late redelivery of an event of the completed job republishes
	// job.completed under its derived id; the stream drops the copy.
	h.publish(t, f.indexed(2).withID("job-flow-indexed-again"))
	h.waitIdle(t)
	require.Len(t, h.completions(t), 1)
	require.Equal(t, jobstate.StatusCompleted, h.job(t, f.ref.JobID).Status)
	h.requireNoDeadLetters(t)
}

func TestJobOutcomeDoesNotDependOnEventOrder(t *testing.T) {
	shuffled := func(seed uint64) func(f flow) []step {
		return func(f flow) []step {
			steps := f.inFlowOrder()
			rand.New(rand.NewPCG(seed, seed)).Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
			return steps
		}
	}
	cases := []struct {
		name        string
		concurrency int
		order       func(f flow) []step
	}{
		{"flow order", 1, flow.inFlowOrder},
		{"reversed", 1, func(f flow) []step {
			steps := f.inFlowOrder()
			slices.Reverse(steps)
			return steps
		}},
		{"chunks before chunked, accepted last", 1, func(f flow) []step {
			return slices.Concat([]step{f.submitted()}, f.allMerged(), f.allIndexed(), []step{f.chunked(), f.accepted()})
		}},
		{"indexed first, submitted last", 1, func(f flow) []step {
			return slices.Concat(f.allIndexed(), []step{f.chunked()}, f.allMerged(), []step{f.accepted(), f.submitted()})
		}},
		{"shuffled 1", 1, shuffled(1)},
		{"shuffled 2", 1, shuffled(2)},
		{"shuffled 3", 1, shuffled(3)},
		{"reversed, folded concurrently", 8, func(f flow) []step {
			steps := f.inFlowOrder()
			slices.Reverse(steps)
			return steps
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.runProjection(t, projection.Config{Concurrency: c.concurrency})
			f := newFlow("job-order")
			h.publish(t, c.order(f)...)
			h.waitIdle(t)

			j := h.job(t, f.ref.JobID)
			require.Equal(t, jobstate.StatusCompleted, j.Status)
			require.True(t, j.Submitted && j.Accepted && j.Chunked, "every fact is recorded: %+v", j)
			require.Equal(t, "client-7", j.ClientID)
			require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100, ChunksProcessed: 3, ChunksTotal: 3,
				Entities: f.wantEntities(), Relations: f.wantRelations()}, j.Progress())
			done := h.completions(t)
			require.Len(t, done, 1)
			require.Equal(t, events.JobCompleted{JobRef: f.ref, ChunksTotal: 3, Entities: f.wantEntities(), Relations: f.wantRelations()}, done[0].Data)
			h.requireNoDeadLetters(t)
		})
	}
}

func TestRedeliveredChunkEventsCountOnce(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{})
	f := newFlow("job-redelivery")
	f.docEntities, f.docRelations = []int{4, 9}, []int{2, 6}

	h.publish(t, f.submitted(), f.accepted(), f.chunked())
	// The identical event twice (dropped by the stream's duplicate window),
	// and the same chunk's results under new ids (folded again).
	h.publish(t, f.merged(0), f.merged(0), f.merged(0).withID("merged-0-again"), f.merged(0).withID("merged-0-third"))
	h.publish(t, f.indexed(0), f.indexed(0).withID("indexed-0-again"))
	h.waitIdle(t)

	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusProcessing, j.Status, "chunk 1 is neither merged nor indexed")
	require.Equal(t, 1, j.Merged.Count())
	require.Equal(t, 1, j.Indexed.Count())
	require.Equal(t, jobstate.Progress{Stage: "extracting", Percent: 50, ChunksProcessed: 1, ChunksTotal: 2,
		Entities: 4, Relations: 2}, j.Progress())
	require.Empty(t, h.completions(t))

	h.publish(t, f.merged(1), f.indexed(1), f.merged(1).withID("merged-1-again"))
	h.waitIdle(t)
	j = h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100, ChunksProcessed: 2, ChunksTotal: 2,
		Entities: 9, Relations: 6}, j.Progress())
	require.Len(t, h.completions(t), 1)
	h.requireNoDeadLetters(t)
}

func TestTerminalStatusIsFinal(t *testing.T) {
	cases := []struct {
		name string
		// before leads up to the terminal event, stray follows it.
		before, stray func(f flow) []step
		terminal      func(f flow) step
		want          func(t *testing.T, j jobstate.Job)
	}{
		{
			name:   "duplicate",
			before: func(f flow) []step { return []step{f.submitted()} },
			terminal: func(f flow) step {
				return stepOf("dup-1", events.DocumentDuplicate{JobRef: f.ref, ExistingJobID: "job-first", ExistingDocID: "doc-first",
					ContentSHA256: events.ContentSHA256("Ada Lovelace met Charles Babbage.")})
			},
			stray: func(f flow) []step {
				return slices.Concat([]step{f.accepted(), f.chunked()}, f.allMerged(), f.allIndexed(),
					[]step{failed(f, "failed-late", "extractor-chunks", "too late")})
			},
			want: func(t *testing.T, j jobstate.Job) {
				require.Equal(t, jobstate.StatusDuplicate, j.Status)
				require.Equal(t, "job-first", j.ExistingJobID)
				require.Empty(t, j.FailedStage)
				require.Empty(t, j.Error)
				require.Equal(t, "duplicate", j.Progress().Stage)
			},
		},
		{
			name:   "failed",
			before: func(f flow) []step { return []step{f.submitted(), f.accepted(), f.chunked(), f.merged(0)} },
			terminal: func(f flow) step {
				return failed(f, "failed-1", "extractor-chunks", "llm timed out")
			},
			stray: func(f flow) []step {
				return slices.Concat(f.allMerged(), f.allIndexed(), []step{
					failed(f, "failed-2", "graph-writer", "disk full"),
					stepOf("dup-late", events.DocumentDuplicate{JobRef: f.ref, ExistingJobID: "job-first",
						ContentSHA256: events.ContentSHA256("Ada Lovelace met Charles Babbage.")}),
				})
			},
			want: func(t *testing.T, j jobstate.Job) {
				require.Equal(t, jobstate.StatusFailed, j.Status)
				require.Equal(t, "extractor-chunks", j.FailedStage)
				require.Equal(t, "llm timed out", j.Error)
				require.Empty(t, j.ExistingJobID, "a late duplicate verdict does not touch a finished job")
				p := j.Progress()
				require.Equal(t, "failed", p.Stage)
				require.Less(t, p.Percent, 100)
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.runProjection(t, projection.Config{Concurrency: 1})
			f := newFlow("job-" + c.name)

			h.publish(t, c.before(f)...)
			h.publish(t, c.terminal(f))
			h.waitIdle(t)
			ended := h.job(t, f.ref.JobID)
			c.want(t, ended)
			require.False(t, ended.FinishedAt.IsZero())

			h.publish(t, c.stray(f)...)
			h.waitIdle(t)
			later := h.job(t, f.ref.JobID)
			c.want(t, later)
			require.Equal(t, ended.FinishedAt, later.FinishedAt)
			require.Empty(t, h.completions(t), "a finished job never completes")
			h.requireNoDeadLetters(t)
		})
	}
}

func TestDocumentWithoutChunksCompletes(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{})
	f := newFlow("job-empty")
	f.docEntities, f.docRelations = nil, nil

	h.publish(t, f.submitted(), f.accepted(), f.chunked())
	h.waitIdle(t)
	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100}, j.Progress())
	done := h.completions(t)
	require.Len(t, done, 1)
	require.Equal(t, events.JobCompleted{JobRef: f.ref}, done[0].Data)
	h.requireNoDeadLetters(t)
}

// slowJobs counts the writes to the job store and makes each take a while,
// as a write to a remote store does.
type slowJobs struct {
	projection.Jobs
	writes atomic.Int64
}

func (s *slowJobs) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	s.writes.Add(1)
	time.Sleep(10 * time.Millisecond)
	return s.Jobs.Create(ctx, key, value)
}

func (s *slowJobs) Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error) {
	s.writes.Add(1)
	time.Sleep(10 * time.Millisecond)
	return s.Jobs.Update(ctx, key, value, lastRevision)
}

func TestConcurrentEventsOfOneJobShareWrites(t *testing.T) {
	h := newHarness(t)
	jobs := &slowJobs{Jobs: h.jobs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- projection.New(projection.Config{Concurrency: 8}, h.bus, jobs, nil).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	f := newFlow("job-coalesced")
	const chunks = 40
	f.docEntities, f.docRelations = make([]int, chunks), make([]int, chunks)
	for i := range chunks {
		f.docEntities[i], f.docRelations[i] = i%7+1, i%5+1
	}
	steps := f.inFlowOrder()
	h.publish(t, steps...)
	h.waitIdle(t)

	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100, ChunksProcessed: chunks, ChunksTotal: chunks,
		Entities: f.wantEntities(), Relations: f.wantRelations()}, j.Progress())
	require.Len(t, h.completions(t), 1)
	// Events handled at once share one write; one write per event would be
	// len(steps) writes or more.
	require.Less(t, jobs.writes.Load(), int64(len(steps)/2), "writes for %d events", len(steps))
	h.requireNoDeadLetters(t)
}
