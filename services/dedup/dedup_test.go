package dedup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/dedup"
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

// harness is an embedded JetStream with kgraph's topology, the claim store
// and the document store.
type harness struct {
	js     jetstream.JetStream
	bus    bus.Bus
	claims *natskv.Store
	jobs   *natskv.Store
	docs   *natsdocs.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	env := bustest.New(t, bustest.WithLogLevel(slog.LevelError))
	js := env.JS
	claims, err := natskv.Open(ctx, js, bus.BucketDedup)
	require.NoError(t, err)
	jobs, err := natskv.Open(ctx, js, bus.BucketJobs)
	require.NoError(t, err)
	docs, err := natsdocs.Open(ctx, js, bus.BucketDocuments)
	require.NoError(t, err)
	return harness{
		js:     js,
		bus:    env.Bus,
		claims: claims,
		jobs:   jobs,
		docs:   docs,
	}
}

// runDedup runs the service until the test ends, then cancels it and waits
// for its drain, before the server shuts down.
func (h harness) runDedup(t *testing.T, cfg dedup.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dedup.New(cfg, h.bus, h.claims, h.jobs, h.docs).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("dedup did not stop")
		}
	})
}

func (h harness) submit(t *testing.T, eventID string, d events.DocumentSubmitted) {
	t.Helper()
	require.NoError(t, bus.Publish(context.Background(), h.bus.Pub, events.New(eventID, "test", d, time.Now())))
}

// waitIdle waits until the dedup consumer has settled every event it
// consumes in the stream: acknowledged or dead-lettered, none pending or in
// flight.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	spec, err := bus.ConsumerByName(bus.ConsumerDedup)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := h.js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			return false
		}
		var last uint64
		for _, subject := range spec.Subjects() {
			m, err := st.GetLastMsgForSubject(ctx, subject)
			if err == nil {
				last = max(last, m.Sequence)
			}
		}
		c, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerDedup)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last
	}, 10*time.Second, 10*time.Millisecond, "dedup did not settle its events")
}

// publish publishes an event as the edge or the projection would.
func publish[T events.Payload](t *testing.T, h harness, eventID string, data T) {
	t.Helper()
	require.NoError(t, bus.Publish(context.Background(), h.bus.Pub, events.New(eventID, "test", data, time.Now())))
}

// putJob writes a job record as the projection would.
func (h harness) putJob(t *testing.T, j jobstate.Job) {
	t.Helper()
	raw, err := json.Marshal(j)
	require.NoError(t, err)
	_, err = h.jobs.Put(context.Background(), jobstate.JobKey(j.JobID), raw)
	require.NoError(t, err)
}

// count returns how many events of T's type with the id the stream holds.
func count[T events.Payload](t *testing.T, h harness, id string) int {
	t.Helper()
	var zero T
	subject, err := events.SubjectOf(zero.EventType())
	require.NoError(t, err)
	n := 0
	for _, m := range streamMsgs(t, h, bus.StreamEvents, subject) {
		if m.Header.Get(events.HeaderMsgID) == id {
			n++
		}
	}
	return n
}

func (h harness) requireNoDeadLetters(t *testing.T) {
	t.Helper()
	require.Empty(t, streamMsgs(t, h, bus.StreamDeadLetter, events.SubjectAllDead))
}

// requireUnclaimed asserts nobody holds the claim of text in namespace.
func (h harness) requireUnclaimed(t *testing.T, namespace, text string) {
	t.Helper()
	_, _, err := h.claims.Get(context.Background(), jobstate.ClaimKey(namespace, events.ContentSHA256(text)))
	require.ErrorIs(t, err, kv.ErrNotFound)
}

// published returns the events of T's type in the EVENTS stream by id.
func published[T events.Payload](t *testing.T, h harness) map[string]events.Event[T] {
	t.Helper()
	var zero T
	subject, err := events.SubjectOf(zero.EventType())
	require.NoError(t, err)
	out := map[string]events.Event[T]{}
	for _, m := range streamMsgs(t, h, bus.StreamEvents, subject) {
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		e, err := events.Decode[T](env, h.bus.Validator)
		require.NoError(t, err)
		out[e.ID] = e
	}
	return out
}

func streamMsgs(t *testing.T, h harness, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := h.js.Stream(ctx, stream)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func (h harness) claim(t *testing.T, namespace, text string) jobstate.Claim {
	t.Helper()
	raw, _, err := h.claims.Get(context.Background(), jobstate.ClaimKey(namespace, events.ContentSHA256(text)))
	require.NoError(t, err)
	var c jobstate.Claim
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

// outcome is what dedup made of one submission.
type outcome int

const (
	accepted outcome = iota
	duplicate
	deadLettered
)

const text = "Ada Lovelace wrote the first program.\nCharles Babbage designed the Analytical Engine.\n"

// sameTextReformatted differs from text only in what normalisation removes.
var sameTextReformatted = "\r\n" + strings.ReplaceAll(text, "\n", "  \r\n") + "\r\n\r\n"

func ref(jobID, namespace string) events.JobRef {
	return events.JobRef{JobID: jobID, DocID: "doc-" + jobID, Namespace: namespace}
}

func TestClaims(t *testing.T) {
	h := newHarness(t)
	h.runDedup(t, dedup.Config{})
	ctx := context.Background()
	const otherText = "A different document about the Difference Engine."
	require.NoError(t, h.docs.Put(ctx, "texts/job-5", otherText))
	require.NoError(t, h.docs.Put(ctx, "texts/job-7", sameTextReformatted))

	steps := []struct {
		name    string
		eventID string
		sub     events.DocumentSubmitted
		want    outcome
		// existingJob is the job a duplicate points at.
		existingJob string
		// text is the document text behind the submission.
		text string
	}{
		{name: "first submission with inline text", eventID: "evt-1", want: accepted, text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: text, Metadata: map[string]string{"title": "Notes"}}},
		{name: "same text with CRLF and trailing spaces", eventID: "evt-2", want: duplicate, existingJob: "job-1", text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-2", "books"), Content: sameTextReformatted}},
		{name: "same text in another namespace", eventID: "evt-3", want: accepted, text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-3", "papers"), Content: text}},
		{name: "the winner's submission again under a new event id", eventID: "evt-1-retry", want: accepted, text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: text, Metadata: map[string]string{"title": "Notes"}}},
		{name: "new text by reference", eventID: "evt-5", want: accepted, text: otherText,
			sub: events.DocumentSubmitted{JobRef: ref("job-5", "books"), ContentRef: "texts/job-5"}},
		{name: "reference to a missing text", eventID: "evt-6", want: deadLettered,
			sub: events.DocumentSubmitted{JobRef: ref("job-6", "books"), ContentRef: "texts/nowhere"}},
		{name: "claimed text by reference", eventID: "evt-7", want: duplicate, existingJob: "job-1", text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-7", "books"), ContentRef: "texts/job-7"}},
		{name: "the loser's submission again", eventID: "evt-2-retry", want: duplicate, existingJob: "job-1", text: text,
			sub: events.DocumentSubmitted{JobRef: ref("job-2", "books"), Content: text}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.sub.SubmittedAt = time.Now()
			h.submit(t, s.eventID, s.sub)
			h.waitIdle(t)

			acc, isAccepted := published[events.DocumentAccepted](t, h)[dedup.AcceptedID(s.sub.JobID)]
			dup, isDuplicate := published[events.DocumentDuplicate](t, h)[events.DerivedID(s.eventID, string(events.TypeDocumentDuplicate))]
			failed, isFailed := published[events.JobFailed](t, h)[events.DerivedID(s.eventID, string(events.TypeJobFailed), bus.ConsumerDedup)]
			require.Equal(t, s.want == accepted, isAccepted, "accepted")
			require.Equal(t, s.want == duplicate, isDuplicate, "duplicate")
			require.Equal(t, s.want == deadLettered, isFailed, "job.failed")

			switch s.want {
			case accepted:
				want := events.DocumentAccepted{JobRef: s.sub.JobRef, ContentRef: s.sub.ContentRef, Content: s.sub.Content,
					ContentSHA256: events.ContentSHA256(s.text), Metadata: s.sub.Metadata}
				require.Equal(t, want, acc.Data)
				require.Equal(t, s.sub.JobID, acc.Subject)
				require.Equal(t, dedup.Source, acc.Source)
				require.Equal(t, 1, count[events.DocumentAccepted](t, h, acc.ID), "a job is accepted once")
			case duplicate:
				require.Equal(t, events.DocumentDuplicate{JobRef: s.sub.JobRef, ExistingJobID: s.existingJob,
					ExistingDocID: "doc-" + s.existingJob, ContentSHA256: events.ContentSHA256(s.text)}, dup.Data)
			case deadLettered:
				require.Equal(t, events.JobFailed{JobRef: s.sub.JobRef, Stage: bus.ConsumerDedup, Reason: failed.Data.Reason}, failed.Data)
				require.Contains(t, failed.Data.Reason, "texts/nowhere")
				var letters []string
				for _, m := range streamMsgs(t, h, bus.StreamDeadLetter, events.DeadLetterSubject(bus.ConsumerDedup)) {
					letters = append(letters, m.Header.Get(bus.HeaderDLQOrigMsgID))
					if m.Header.Get(bus.HeaderDLQOrigMsgID) == s.eventID {
						require.Contains(t, m.Header.Get(bus.HeaderDLQReason), "not found")
						require.Equal(t, "1", m.Header.Get(bus.HeaderDLQDeliveries), "a missing text is not retried")
					}
				}
				require.Equal(t, []string{s.eventID}, letters)
			}
		})
	}

	require.Equal(t, "job-1", h.claim(t, "books", text).JobID)
	require.Equal(t, "job-3", h.claim(t, "papers", text).JobID)
	require.Equal(t, "job-5", h.claim(t, "books", otherText).JobID)
}

func TestConcurrentIdenticalSubmissionsHaveOneWinner(t *testing.T) {
	h := newHarness(t)
	const jobs = 10
	// Queued before the service starts, so that it claims them concurrently.
	for i := range jobs {
		content := text
		if i%2 == 1 {
			content = sameTextReformatted
		}
		h.submit(t, fmt.Sprintf("evt-%d", i), events.DocumentSubmitted{JobRef: ref(fmt.Sprintf("job-%d", i), "books"),
			Content: content, SubmittedAt: time.Now()})
	}
	h.runDedup(t, dedup.Config{Concurrency: jobs})
	h.waitIdle(t)

	acc := published[events.DocumentAccepted](t, h)
	require.Len(t, acc, 1, "exactly one job wins the claim")
	var winner events.JobRef
	for _, e := range acc {
		winner = e.Data.JobRef
	}
	dups := published[events.DocumentDuplicate](t, h)
	require.Len(t, dups, jobs-1)
	losers := map[string]bool{}
	for _, e := range dups {
		require.Equal(t, winner.JobID, e.Data.ExistingJobID)
		require.Equal(t, winner.DocID, e.Data.ExistingDocID)
		require.NotEqual(t, winner.JobID, e.Data.JobID)
		losers[e.Data.JobID] = true
	}
	require.Len(t, losers, jobs-1, "every other job is a duplicate once")
	require.Equal(t, winner.JobID, h.claim(t, "books", text).JobID)
	require.Empty(t, published[events.JobFailed](t, h))
}

var estimate = &events.Estimate{Chunks: 1, TokensIn: 40, TokensOutLow: 10, TokensOutHigh: 40, CostLowUSD: 0.001, CostHighUSD: 0.002, Model: "gpt-4o"}

func TestApprovalGate(t *testing.T) {
	h := newHarness(t)
	h.runDedup(t, dedup.Config{})
	ctx := context.Background()
	const byRef = "A document submitted by reference, to be approved."
	require.NoError(t, h.docs.Put(ctx, "job/job-2", byRef))

	// Inline text: held, and the text is kept for the approval.
	inline := events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: text, Metadata: map[string]string{"title": "Notes"},
		RequireApproval: true, Estimate: estimate, SubmittedAt: time.Now()}
	h.submit(t, "evt-1", inline)
	// By reference: held with the reference it came with.
	h.submit(t, "evt-2", events.DocumentSubmitted{JobRef: ref("job-2", "books"), ContentRef: "job/job-2",
		RequireApproval: true, SubmittedAt: time.Now()})
	h.waitIdle(t)
	// The held job holds the claim: the same content again is a duplicate.
	h.submit(t, "evt-3", events.DocumentSubmitted{JobRef: ref("job-3", "books"), Content: sameTextReformatted, SubmittedAt: time.Now()})
	h.waitIdle(t)

	require.Empty(t, published[events.DocumentAccepted](t, h), "nothing is accepted before approval")
	held := published[events.JobAwaitingApproval](t, h)
	require.Len(t, held, 2)
	first := held[dedup.AwaitingApprovalID("job-1")]
	require.Equal(t, events.JobAwaitingApproval{JobRef: inline.JobRef, ContentRef: "job/job-1", ContentSHA256: events.ContentSHA256(text),
		Metadata: inline.Metadata, Estimate: estimate}, first.Data)
	require.Equal(t, dedup.Source, first.Source)
	stored, err := h.docs.Get(ctx, "job/job-1")
	require.NoError(t, err)
	require.Equal(t, text, stored)
	require.Equal(t, events.JobAwaitingApproval{JobRef: ref("job-2", "books"), ContentRef: "job/job-2", ContentSHA256: events.ContentSHA256(byRef)},
		held[dedup.AwaitingApprovalID("job-2")].Data)
	require.Equal(t, "job-1", h.claim(t, "books", text).JobID)
	dup := published[events.DocumentDuplicate](t, h)
	require.Len(t, dup, 1)
	for _, e := range dup {
		require.Equal(t, "job-1", e.Data.ExistingJobID)
	}

	// A redelivered submission of a held job holds it again under the same
	// id, which the stream drops.
	h.submit(t, "evt-1-again", inline)
	h.waitIdle(t)
	require.Equal(t, 1, count[events.JobAwaitingApproval](t, h, dedup.AwaitingApprovalID("job-1")))

	// Approval, delivered twice (two clicks: two events), accepts once.
	approval := events.JobApproved{JobRef: inline.JobRef, ContentRef: "job/job-1", ContentSHA256: events.ContentSHA256(text),
		Metadata: inline.Metadata, ApprovedBy: "alice"}
	h.putJob(t, jobstate.Job{JobID: "job-1", DocID: "doc-job-1", Namespace: "books", Status: jobstate.StatusApproved})
	publish(t, h, "approve-1", approval)
	publish(t, h, "approve-2", approval)
	h.waitIdle(t)
	acc := published[events.DocumentAccepted](t, h)
	require.Len(t, acc, 1)
	got, ok := acc[dedup.AcceptedID("job-1")]
	require.True(t, ok, "the approval path uses the job's accept id")
	require.Equal(t, events.DocumentAccepted{JobRef: inline.JobRef, ContentRef: "job/job-1", ContentSHA256: events.ContentSHA256(text),
		Metadata: inline.Metadata}, got.Data)
	require.Equal(t, 1, count[events.DocumentAccepted](t, h, got.ID))

	// Once the projection shows the job accepted, a late approval is
	// acknowledged without output.
	h.putJob(t, jobstate.Job{JobID: "job-1", DocID: "doc-job-1", Namespace: "books", Status: jobstate.StatusProcessing, Accepted: true})
	publish(t, h, "approve-3", approval)
	// And a submission redelivered after the approval is not held again.
	h.submit(t, "evt-1-late", inline)
	h.waitIdle(t)
	require.Equal(t, 1, count[events.DocumentAccepted](t, h, got.ID))
	require.Len(t, streamMsgs(t, h, bus.StreamEvents, mustSubject(t, events.TypeJobAwaitingApproval)), 2)

	// An approval racing a cancellation that won accepts nothing.
	h.putJob(t, jobstate.Job{JobID: "job-2", DocID: "doc-job-2", Namespace: "books", Status: jobstate.StatusCancelled})
	publish(t, h, "approve-job-2", events.JobApproved{JobRef: ref("job-2", "books"), ContentRef: "job/job-2", ContentSHA256: events.ContentSHA256(byRef)})
	h.waitIdle(t)
	require.NotContains(t, published[events.DocumentAccepted](t, h), dedup.AcceptedID("job-2"))
	h.requireNoDeadLetters(t)
}

func mustSubject(t *testing.T, typ events.Type) string {
	t.Helper()
	s, err := events.SubjectOf(typ)
	require.NoError(t, err)
	return s
}

func TestCalledOffSubmissionTakesNoClaim(t *testing.T) {
	for _, st := range []jobstate.Status{jobstate.StatusCancelled, jobstate.StatusExpired} {
		t.Run(string(st), func(t *testing.T) {
			h := newHarness(t)
			h.putJob(t, jobstate.Job{JobID: "job-1", DocID: "doc-job-1", Namespace: "books", Status: st})
			h.runDedup(t, dedup.Config{})
			h.submit(t, "evt-1", events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: text, SubmittedAt: time.Now()})
			h.submit(t, "evt-2", events.DocumentSubmitted{JobRef: ref("job-2", "books"), Content: text, SubmittedAt: time.Now()})
			h.waitIdle(t)

			acc := published[events.DocumentAccepted](t, h)
			require.Len(t, acc, 1)
			require.Contains(t, acc, dedup.AcceptedID("job-2"), "the next submission of the content wins")
			require.Empty(t, published[events.DocumentDuplicate](t, h))
			require.Equal(t, "job-2", h.claim(t, "books", text).JobID)
			h.requireNoDeadLetters(t)
		})
	}
}

func TestClaimRelease(t *testing.T) {
	h := newHarness(t)
	h.runDedup(t, dedup.Config{})
	ctx := context.Background()
	texts := map[string]string{}
	for _, id := range []string{"job-1", "job-2", "job-3", "job-5", "job-6"} {
		texts[id] = "The text ingested by " + id + "."
	}
	hash := func(jobID string) string { return events.ContentSHA256(texts[jobID]) }
	// job-1 is accepted, job-2 held for approval, job-3 accepted and job-4 a
	// duplicate of it, job-5 and job-6 accepted by reference.
	h.submit(t, "evt-1", events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: texts["job-1"], SubmittedAt: time.Now()})
	h.submit(t, "evt-2", events.DocumentSubmitted{JobRef: ref("job-2", "books"), Content: texts["job-2"], RequireApproval: true, SubmittedAt: time.Now()})
	h.submit(t, "evt-3", events.DocumentSubmitted{JobRef: ref("job-3", "books"), Content: texts["job-3"], SubmittedAt: time.Now()})
	h.waitIdle(t) // job-3 claims first
	h.submit(t, "evt-4", events.DocumentSubmitted{JobRef: ref("job-4", "books"), Content: texts["job-3"], SubmittedAt: time.Now()})
	for _, id := range []string{"job-5", "job-6"} {
		require.NoError(t, h.docs.Put(ctx, "job/"+id, texts[id]))
		h.submit(t, "evt-"+id, events.DocumentSubmitted{JobRef: ref(id, "books"), ContentRef: "job/" + id, SubmittedAt: time.Now()})
	}
	h.waitIdle(t)
	for _, id := range []string{"job-1", "job-2", "job-3", "job-5", "job-6"} {
		require.Equal(t, id, h.claim(t, "books", texts[id]).JobID)
	}
	// The projection's records, with the hashes dedup's events carried.
	for _, id := range []string{"job-1", "job-2", "job-3", "job-5", "job-6"} {
		h.putJob(t, jobstate.Job{JobID: id, DocID: "doc-" + id, Namespace: "books", Status: jobstate.StatusProcessing, ContentSHA256: hash(id)})
	}
	h.putJob(t, jobstate.Job{JobID: "job-4", DocID: "doc-job-4", Namespace: "books", Status: jobstate.StatusDuplicate, ContentSHA256: hash("job-3")})
	h.putJob(t, jobstate.Job{JobID: "job-7", DocID: "doc-job-7", Namespace: "books", Status: jobstate.StatusPending})

	steps := []struct {
		name    string
		publish func(t *testing.T)
		// released and kept are the jobs whose claims must be gone or stay.
		released, kept []string
	}{
		{name: "cancelled job", released: []string{"job-1"}, kept: []string{"job-2", "job-3", "job-5", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "cancel-1", events.JobCancelled{JobRef: ref("job-1", "books"), CancelledBy: "alice"})
			}},
		{name: "cancellation redelivered", released: []string{"job-1"},
			publish: func(t *testing.T) {
				publish(t, h, "cancel-1-again", events.JobCancelled{JobRef: ref("job-1", "books")})
			}},
		{name: "expired job", released: []string{"job-2"}, kept: []string{"job-3", "job-5", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "expire-2", events.JobExpired{JobRef: ref("job-2", "books"), Reason: "not approved in time"})
			}},
		{name: "cancelled duplicate leaves the winner's claim", kept: []string{"job-3", "job-5", "job-6"},
			publish: func(t *testing.T) { publish(t, h, "cancel-4", events.JobCancelled{JobRef: ref("job-4", "books")}) }},
		{name: "cancelled job without a known hash", kept: []string{"job-3", "job-5", "job-6"},
			publish: func(t *testing.T) { publish(t, h, "cancel-7", events.JobCancelled{JobRef: ref("job-7", "books")}) }},
		{name: "cancelled job without a record", kept: []string{"job-3", "job-5", "job-6"},
			publish: func(t *testing.T) { publish(t, h, "cancel-8", events.JobCancelled{JobRef: ref("job-8", "books")}) }},
		{name: "deleted document", released: []string{"job-5"}, kept: []string{"job-3", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "delete-5", events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-5", DocID: "doc-job-5", Namespace: "books"},
					IngestJobID: "job-5", ContentRef: "job/job-5", ContentSHA256: hash("job-5")})
			}},
		{name: "deletion redelivered", released: []string{"job-5"}, kept: []string{"job-3", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "delete-5-again", events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-5", DocID: "doc-job-5", Namespace: "books"},
					IngestJobID: "job-5", ContentRef: "job/job-5", ContentSHA256: hash("job-5")})
			}},
		{name: "deletion naming another ingestion job", kept: []string{"job-3", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "delete-6", events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-6", DocID: "doc-job-6", Namespace: "books"},
					IngestJobID: "job-1", ContentSHA256: hash("job-6")})
			}},
		{name: "deletion naming another job's text", kept: []string{"job-3", "job-6"},
			publish: func(t *testing.T) {
				publish(t, h, "delete-6-text", events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-6b", DocID: "doc-job-6", Namespace: "books"},
					IngestJobID: "job-1", ContentRef: "job/job-6"})
			}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.publish(t)
			h.waitIdle(t)
			for _, id := range s.released {
				h.requireUnclaimed(t, "books", texts[id])
			}
			for _, id := range s.kept {
				require.Equal(t, id, h.claim(t, "books", texts[id]).JobID)
			}
			h.requireNoDeadLetters(t)
		})
	}

	_, err := h.docs.Get(ctx, "job/job-5")
	require.ErrorIs(t, err, kv.ErrNotFound, "the deleted document's text is gone")
	_, err = h.docs.Get(ctx, "job/job-6")
	require.NoError(t, err, "a deletion removes only its ingestion job's text")

	// Released content can be ingested again.
	h.submit(t, "evt-9", events.DocumentSubmitted{JobRef: ref("job-9", "books"), Content: texts["job-1"], SubmittedAt: time.Now()})
	h.waitIdle(t)
	require.Contains(t, published[events.DocumentAccepted](t, h), dedup.AcceptedID("job-9"))
	require.Equal(t, "job-9", h.claim(t, "books", texts["job-1"]).JobID)
}
