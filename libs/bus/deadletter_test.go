package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
)

func submittedIn(ns, jobID string) events.Event[events.DocumentSubmitted] {
	e := submitted(jobID)
	e.Data.Namespace = ns
	return e
}

// crafted is a dead letter written the way the consumer adapter writes one.
type crafted struct {
	consumer, subject, eventID, reason string
	data                               string
	streamSeq                          uint64
}

func publishDeadLetter(t *testing.T, e env, c crafted) {
	t.Helper()
	m := nats.NewMsg(events.DeadLetterSubject(c.consumer))
	if c.eventID != "" {
		m.Header.Set(events.HeaderSpec, "1.0")
		m.Header.Set(events.HeaderID, c.eventID)
		m.Header.Set(events.HeaderType, string(events.TypeDocumentSubmitted))
	}
	m.Header.Set(bus.HeaderDLQConsumer, c.consumer)
	m.Header.Set(bus.HeaderDLQSubject, c.subject)
	m.Header.Set(bus.HeaderDLQReason, c.reason)
	m.Header.Set(bus.HeaderDLQStreamSeq, strconv.FormatUint(c.streamSeq, 10))
	m.Header.Set(bus.HeaderDLQDeliveries, "1")
	m.Header.Set(events.HeaderMsgID, fmt.Sprintf("dlq-%s-%d", c.consumer, c.streamSeq))
	m.Data = []byte(c.data)
	require.NoError(t, e.pub.PublishMsg(context.Background(), m))
}

func payloadIn(ns, jobID string) string {
	return fmt.Sprintf(`{"job_id":%q,"doc_id":"d","namespace":%q}`, jobID, ns)
}

func TestDeadLetterListGetAndReplay(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	var fixed atomic.Bool
	handled := make(chan string, 10)
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, ev events.Event[events.DocumentSubmitted]) error {
		if !fixed.Load() {
			return bus.Permanent(errors.New("claim store rejected the document"))
		}
		handled <- ev.ID
		return nil
	}))
	require.NoError(t, bus.Publish(ctx, e.pub, submittedIn("alpha", "j1")))
	require.NoError(t, bus.Publish(ctx, e.pub, submittedIn("beta", "j2")))
	waitDeadLetters(t, e, bus.ConsumerDedup, 2)

	page, err := store.List(ctx, bus.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	require.Zero(t, page.Next)
	byJob := map[string]bus.DeadLetter{}
	for _, dl := range page.Entries {
		byJob[dl.JobID] = dl
	}
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	j1 := byJob["j1"]
	require.Equal(t, bus.ConsumerDedup, j1.Consumer)
	require.Equal(t, subject, j1.Subject)
	require.Equal(t, string(events.TypeDocumentSubmitted), j1.Type)
	require.Equal(t, "evt-j1", j1.EventID)
	require.Equal(t, "alpha", j1.Namespace)
	require.Contains(t, j1.Reason, "claim store rejected")
	require.EqualValues(t, 1, j1.Deliveries)
	require.NotZero(t, j1.StreamSeq)
	require.WithinDuration(t, time.Now(), j1.Time, time.Minute)
	require.Contains(t, j1.Payload, `"job_id":"j1"`)
	require.Nil(t, j1.Headers, "listings carry no headers")

	only, err := store.List(ctx, bus.DeadLetterFilter{Namespaces: []string{"beta"}}, 10)
	require.NoError(t, err)
	require.Len(t, only.Entries, 1)
	require.Equal(t, "j2", only.Entries[0].JobID)
	none, err := store.List(ctx, bus.DeadLetterFilter{Consumer: bus.ConsumerProjection}, 10)
	require.NoError(t, err)
	require.Empty(t, none.Entries)

	got, err := store.Get(ctx, j1.Seq)
	require.NoError(t, err)
	require.Equal(t, []string{"evt-j1"}, got.Headers[events.HeaderID])
	for k := range got.Headers {
		require.False(t, strings.HasPrefix(k, "Kg-Dlq-") || strings.HasPrefix(k, "Nats-"), "header %s is not the event's", k)
	}

	// The original event id is still inside the duplicate window: a replay
	// under it would be dropped, and the handler would never see it.
	fixed.Store(true)
	r, err := store.Replay(ctx, j1.Seq)
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.Equal(t, subject, r.Subject)
	require.Equal(t, "evt-j1", r.EventID)
	select {
	case id := <-handled:
		require.Equal(t, "evt-j1", id)
	case <-time.After(5 * time.Second):
		t.Fatal("replayed event not delivered")
	}
	_, err = store.Get(ctx, j1.Seq)
	require.ErrorIs(t, err, bus.ErrDeadLetterNotFound, "a replayed dead letter is removed")
	_, err = store.Replay(ctx, j1.Seq)
	require.ErrorIs(t, err, bus.ErrDeadLetterNotFound, "a second replay finds nothing")
	select {
	case id := <-handled:
		t.Fatalf("event %s handled twice", id)
	case <-time.After(300 * time.Millisecond):
	}
	left, err := store.List(ctx, bus.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, left.Entries, 1)
	require.Equal(t, "j2", left.Entries[0].JobID)
}

// A replayed event that fails again comes back as a new dead letter that
// names the one it was replayed from.
func TestReplayedEventThatFailsAgainNamesItsOrigin(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	var calls atomic.Int32
	run(t, e, bus.ConsumerDedup, bus.On(func(context.Context, events.Event[events.DocumentSubmitted]) error {
		calls.Add(1)
		return bus.Permanent(errors.New("still broken"))
	}))
	require.NoError(t, bus.Publish(ctx, e.pub, submitted("j1")))
	first := waitDeadLetters(t, e, bus.ConsumerDedup, 1)[0]
	_, err := store.Replay(ctx, first.Sequence)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		dls := deadLetters(c, e, bus.ConsumerDedup)
		require.Len(c, dls, 1)
		assert.NotEqual(c, first.Sequence, dls[0].Sequence, "the replay's dead letter replaces the first")
	}, 5*time.Second, 20*time.Millisecond)
	page, err := store.List(ctx, bus.DeadLetterFilter{Consumer: bus.ConsumerDedup}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, first.Sequence, page.Entries[0].ReplayOf)
	require.Equal(t, "evt-j1", page.Entries[0].EventID)
	require.EqualValues(t, 2, calls.Load(), "the replay was handled once and dead-lettered at once")
}

func TestConcurrentReplaysPublishOnce(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	publishDeadLetter(t, e, crafted{consumer: bus.ConsumerDedup, subject: subject, eventID: "evt-x", reason: "boom",
		data: payloadIn("alpha", "jx"), streamSeq: 41})
	page, err := store.List(ctx, bus.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	seq := page.Entries[0].Seq

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = store.Replay(ctx, seq) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.True(t, errors.Is(err, bus.ErrAlreadyReplayed) || errors.Is(err, bus.ErrDeadLetterNotFound), "unexpected error %v", err)
	}
	require.Equal(t, 1, ok, "exactly one replay succeeds")
	require.Equal(t, 1, streamMsgs(t, e, subject), "the event is republished once")
}

// A replay whose earlier attempt published but could not remove the dead
// letter publishes nothing new and removes it.
func TestReplayAfterAPublishedAttemptIsADuplicate(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	publishDeadLetter(t, e, crafted{consumer: bus.ConsumerDedup, subject: subject, eventID: "evt-y", reason: "boom",
		data: payloadIn("alpha", "jy"), streamSeq: 7})
	page, err := store.List(ctx, bus.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	seq := page.Entries[0].Seq
	earlier := nats.NewMsg(subject)
	earlier.Header.Set(events.HeaderMsgID, bus.ReplayMsgID(seq, bus.ConsumerDedup, 7))
	earlier.Data = []byte(payloadIn("alpha", "jy"))
	require.NoError(t, e.pub.PublishMsg(ctx, earlier))

	r, err := store.Replay(ctx, seq)
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.Equal(t, 1, streamMsgs(t, e, subject))
	_, err = store.Get(ctx, seq)
	require.ErrorIs(t, err, bus.ErrDeadLetterNotFound)
}

func TestDeadLetterEdgeCases(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	long := strings.Repeat("é", 3000) // 6000 bytes; the preview cut falls inside a rune
	for i, c := range []crafted{
		{consumer: bus.ConsumerProjection, subject: subject, reason: "invalid event", data: "\xff\xfe not json"},
		{consumer: bus.ConsumerProjection, subject: subject, eventID: "amb", reason: "x", data: `{"job_id":"j","namespace":"alpha","NAMESPACE":"beta"}`},
		{consumer: bus.ConsumerProjection, subject: "kgraph.dlq.elsewhere", eventID: "loop", reason: "x", data: payloadIn("alpha", "jl")},
		{consumer: bus.ConsumerProjection, subject: subject, eventID: "big", reason: "x", data: `{"namespace":"alpha","text":"` + long + `"}`},
	} {
		c.streamSeq = uint64(100 + i)
		publishDeadLetter(t, e, c)
	}
	all, err := store.List(ctx, bus.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, all.Entries, 4)
	notJSON, ambiguous, loop, big := all.Entries[0], all.Entries[1], all.Entries[2], all.Entries[3]

	require.Empty(t, notJSON.Namespace)
	require.Empty(t, notJSON.EventID)
	require.True(t, utf8.ValidString(notJSON.Payload))
	require.Contains(t, notJSON.Payload, "\uFFFD")
	require.Empty(t, ambiguous.Namespace, "a payload that reads as two namespaces names none")
	require.Equal(t, "j", ambiguous.JobID)

	scoped, err := store.List(ctx, bus.DeadLetterFilter{Namespaces: []string{"alpha", "beta"}}, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{loop.Seq, big.Seq}, seqs(scoped.Entries), "entries without a namespace only for unscoped listings")

	require.True(t, big.PayloadTruncated)
	require.Equal(t, len(`{"namespace":"alpha","text":"`)+6000+2, big.PayloadBytes)
	require.LessOrEqual(t, len(big.Payload), bus.DeadLetterPreviewBytes)
	require.True(t, utf8.ValidString(big.Payload))
	require.NotContains(t, big.Payload, "\uFFFD")
	full, err := store.Get(ctx, big.Seq)
	require.NoError(t, err)
	require.False(t, full.PayloadTruncated)
	require.Len(t, full.Payload, full.PayloadBytes)

	_, err = store.Replay(ctx, loop.Seq)
	require.ErrorIs(t, err, bus.ErrNotReplayable)
	_, err = store.Get(ctx, loop.Seq)
	require.NoError(t, err, "a dead letter that cannot be replayed stays")
	_, err = store.Get(ctx, 0)
	require.ErrorIs(t, err, bus.ErrDeadLetterNotFound)
	_, err = store.Replay(ctx, 999)
	require.ErrorIs(t, err, bus.ErrDeadLetterNotFound)
	_, err = store.List(ctx, bus.DeadLetterFilter{Consumer: "dedup.>"}, 10)
	require.Error(t, err)
}

func seqs(dls []bus.DeadLetter) []uint64 {
	out := make([]uint64, len(dls))
	for i, d := range dls {
		out[i] = d.Seq
	}
	return out
}

func TestDeadLetterPages(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	for i := range 7 {
		consumer := bus.ConsumerDedup
		if i%2 == 1 {
			consumer = bus.ConsumerGraphWriter
		}
		publishDeadLetter(t, e, crafted{consumer: consumer, subject: subject, eventID: fmt.Sprint("e", i), reason: "x",
			data: payloadIn("alpha", fmt.Sprint("j", i)), streamSeq: uint64(i + 1)})
	}
	var got []string
	var after uint64
	pages := 0
	for {
		page, err := store.List(ctx, bus.DeadLetterFilter{Consumer: bus.ConsumerDedup, AfterSeq: after}, 2)
		require.NoError(t, err)
		pages++
		for _, dl := range page.Entries {
			got = append(got, dl.JobID)
		}
		if page.Next == 0 {
			break
		}
		require.Len(t, page.Entries, 2)
		after = page.Next
	}
	require.Equal(t, []string{"j0", "j2", "j4", "j6"}, got)
	require.Equal(t, 2, pages, "a full last page says there is no next one")
}

// One call reads a bounded number of dead letters: a namespace filter that
// matches nothing in the first stretch returns an empty page to go on from.
func TestDeadLetterListScanIsBounded(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	store := bus.NewDeadLetterStore(e.js)
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	var msgs []*nats.Msg
	for i := range 2100 {
		ns := "beta"
		if i == 2099 {
			ns = "alpha"
		}
		m := nats.NewMsg(events.DeadLetterSubject(bus.ConsumerDedup))
		m.Header.Set(bus.HeaderDLQConsumer, bus.ConsumerDedup)
		m.Header.Set(bus.HeaderDLQSubject, subject)
		m.Header.Set(events.HeaderMsgID, fmt.Sprint("dl-", i))
		m.Data = []byte(payloadIn(ns, fmt.Sprint("j", i)))
		msgs = append(msgs, m)
	}
	require.NoError(t, e.pub.PublishMsgs(ctx, msgs))
	var found []bus.DeadLetter
	var after uint64
	calls := 0
	for {
		page, err := store.List(ctx, bus.DeadLetterFilter{Namespaces: []string{"alpha"}, AfterSeq: after}, 10)
		require.NoError(t, err)
		calls++
		found = append(found, page.Entries...)
		if page.Next == 0 {
			break
		}
		require.Greater(t, page.Next, after)
		after = page.Next
	}
	require.Len(t, found, 1)
	require.Equal(t, "alpha", found[0].Namespace)
	require.Equal(t, 2, calls)
}
