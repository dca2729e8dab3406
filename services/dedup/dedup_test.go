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
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/dedup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an embedded JetStream with kgraph's topology, the claim store
// and the document store.
type harness struct {
	js     jetstream.JetStream
	bus    bus.Bus
	claims *natskv.Store
	docs   *natsdocs.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(t.Name())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	settings := bus.DefaultSettings()
	settings.AckWait = time.Second
	settings.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	require.NoError(t, bus.EnsureTopology(ctx, js, settings))
	validator, err := events.NewValidator()
	require.NoError(t, err)
	claims, err := natskv.Open(ctx, js, bus.BucketDedup)
	require.NoError(t, err)
	docs, err := natsdocs.Open(ctx, js, bus.BucketDocuments)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	return harness{
		js:     js,
		bus:    bus.Bus{JS: js, Pub: bus.NewPublisher(js), Validator: validator, Settings: settings, Logger: logger},
		claims: claims,
		docs:   docs,
	}
}

// runDedup runs the service until the test ends, then cancels it and waits
// for its drain, before the server shuts down.
func (h harness) runDedup(t *testing.T, cfg dedup.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dedup.New(cfg, h.bus, h.claims, h.docs).Run(ctx) }()
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

// waitIdle waits until the dedup consumer has settled every submission in
// the stream: acknowledged or dead-lettered, none pending or in flight.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	subject, err := events.SubjectOf(events.TypeDocumentSubmitted)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := h.js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			return false
		}
		last, err := st.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return false
		}
		c, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerDedup)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last.Sequence
	}, 10*time.Second, 10*time.Millisecond, "dedup did not settle the submissions")
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

			acc, isAccepted := published[events.DocumentAccepted](t, h)[events.DerivedID(s.eventID, string(events.TypeDocumentAccepted))]
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
