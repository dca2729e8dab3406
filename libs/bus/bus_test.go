package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

type env struct {
	js  jetstream.JetStream
	nc  *nats.Conn
	pub *bus.Publisher
	set bus.Settings
	val *events.Validator
}

func setup(t *testing.T) env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	nc, err := srv.Connect("test")
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	set := bus.DefaultSettings()
	set.Storage = jetstream.MemoryStorage
	set.AckWait = time.Second
	set.MaxDeliver = 3
	set.Backoff = []time.Duration{20 * time.Millisecond}
	ctx := context.Background()
	require.NoError(t, bus.EnsureTopology(ctx, js, set))
	require.NoError(t, bus.EnsureTopology(ctx, js, set), "topology must be idempotent")
	val, err := events.NewValidator()
	require.NoError(t, err)
	return env{js: js, nc: nc, pub: bus.NewPublisher(js), set: set, val: val}
}

func submitted(jobID string) events.Event[events.DocumentSubmitted] {
	return events.New("evt-"+jobID, "test", events.DocumentSubmitted{
		JobRef:  events.JobRef{JobID: jobID, DocID: "doc-" + jobID, Namespace: "default"},
		Content: "Some text.", SubmittedAt: time.Unix(1700000000, 0),
	}, time.Now())
}

// run starts a consumer and returns a stop function that cancels it and
// waits for Run to return.
func run(t *testing.T, e env, name string, routes ...bus.Route) func() {
	t.Helper()
	return runWith(t, e, bus.ConsumerConfig{Consumer: name, Routes: routes, Concurrency: 4})
}

// newConsumer builds a consumer of cfg with the test environment's
// settings, source, logger and validator.
func newConsumer(t *testing.T, e env, cfg bus.ConsumerConfig) *bus.Consumer {
	t.Helper()
	cfg.Settings, cfg.Source, cfg.Validator = e.set, "test", e.val
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := bus.NewConsumer(e.js, e.pub, cfg)
	require.NoError(t, err)
	return c
}

// runWith is run with more of the consumer's configuration; the test
// environment fills in the settings, source, logger and validator.
func runWith(t *testing.T, e env, cfg bus.ConsumerConfig) func() {
	t.Helper()
	c := newConsumer(t, e, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("consumer did not drain")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// deadLetters reads the dead letters of consumer. It takes a
// require.TestingT so that an EventuallyWithT condition can call it with
// its CollectT: a failure then fails the attempt, not the test from
// another goroutine.
func deadLetters(t require.TestingT, e env, consumer string) []*jetstream.RawStreamMsg {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	ctx := context.Background()
	st, err := e.js.Stream(ctx, bus.StreamDeadLetter)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == events.DeadLetterSubject(consumer) {
			out = append(out, m)
		}
	}
	return out
}

// waitDeadLetters waits until consumer has n dead letters and returns them.
func waitDeadLetters(t *testing.T, e env, consumer string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	var got []*jetstream.RawStreamMsg
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got = deadLetters(c, e, consumer)
		assert.Len(c, got, n)
	}, 10*time.Second, 20*time.Millisecond)
	return got
}

func streamMsgs(t *testing.T, e env, subject string) int {
	t.Helper()
	st, err := e.js.Stream(context.Background(), bus.StreamEvents)
	require.NoError(t, err)
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	require.NoError(t, err)
	return int(info.State.Subjects[subject])
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ev := submitted("j1")
	require.NoError(t, bus.Publish(ctx, e.pub, ev))
	require.NoError(t, bus.Publish(ctx, e.pub, ev))
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	require.Equal(t, 1, streamMsgs(t, e, subject))
}

func TestPublishAllStoresEveryEventOnce(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	// More than one window of in-flight publishes, with every event twice.
	var evs []events.Event[events.DocumentSubmitted]
	for i := range 300 {
		evs = append(evs, submitted(fmt.Sprintf("j%d", i)))
	}
	require.NoError(t, bus.PublishAll(ctx, e.pub, evs))
	require.NoError(t, bus.PublishAll(ctx, e.pub, evs))
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)
	require.Equal(t, len(evs), streamMsgs(t, e, subject))

	st, err := e.js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	batch, err := cons.Fetch(len(evs), jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get(events.HeaderMsgID))
	}
	require.NoError(t, batch.Error())
	// Published concurrently: every event stored exactly once, in any order.
	want := make([]string, len(evs))
	for i, ev := range evs {
		want[i] = ev.ID
	}
	require.ElementsMatch(t, want, ids)
}

func TestPublishAllReportsCancellation(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := bus.PublishAll(ctx, e.pub, []events.Event[events.DocumentSubmitted]{submitted("c1")})
	require.ErrorIs(t, err, context.Canceled)
}

func TestHandlerSuccessAcks(t *testing.T) {
	e := setup(t)
	got := make(chan events.Event[events.DocumentSubmitted], 10)
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, ev events.Event[events.DocumentSubmitted]) error {
		got <- ev
		return nil
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	select {
	case ev := <-got:
		require.Equal(t, "j1", ev.Data.JobID)
		require.Equal(t, "evt-j1", ev.ID)
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := e.js.Consumer(context.Background(), bus.StreamEvents, bus.ConsumerDedup)
		require.NoError(c, err)
		ci, err := info.Info(context.Background())
		require.NoError(c, err)
		assert.Zero(c, ci.NumAckPending)
		assert.EqualValues(c, 1, ci.AckFloor.Stream)
	}, 5*time.Second, 20*time.Millisecond)
	select {
	case <-got:
		t.Fatal("acked event delivered twice")
	case <-time.After(1500 * time.Millisecond): // past AckWait
	}
}

func TestTransientErrorRetriesWithBackoff(t *testing.T) {
	e := setup(t)
	// Long enough apart to tell a backoff from an immediate redelivery.
	e.set.Backoff = []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	done := make(chan struct{})
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Now())
		if len(calls) < 3 {
			return errors.New("backend unavailable")
		}
		close(done)
		return nil
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no success after retries")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls, 3)
	// Each retry waits at least its step of the backoff (a lower bound
	// only: a loaded machine may wait longer).
	for i, step := range e.set.Backoff {
		require.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), step, "retry %d came before its backoff", i+1)
	}
	require.Empty(t, deadLetters(t, e, bus.ConsumerDedup))
}

func TestPermanentErrorDeadLettersAndFailsJob(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		calls.Add(1)
		return bus.Permanent(errors.New("document text missing"))
	}))
	failed := make(chan events.Event[events.JobFailed], 1)
	run(t, e, bus.ConsumerProjection,
		bus.Ignore(events.TypeDocumentSubmitted),
		bus.On(func(_ context.Context, ev events.Event[events.JobFailed]) error { failed <- ev; return nil }))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	select {
	case ev := <-failed:
		require.Equal(t, "j1", ev.Data.JobID)
		require.Equal(t, bus.ConsumerDedup, ev.Data.Stage)
		require.Contains(t, ev.Data.Reason, "document text missing")
	case <-time.After(5 * time.Second):
		t.Fatal("no job.failed")
	}
	dl := deadLetters(t, e, bus.ConsumerDedup)
	require.Len(t, dl, 1)
	require.Contains(t, dl[0].Header.Get(bus.HeaderDLQReason), "document text missing")
	require.Equal(t, "evt-j1", dl[0].Header.Get(events.HeaderID), "original headers are kept")
	require.Contains(t, string(dl[0].Data), `"job_id":"j1"`, "original payload is kept")
	require.EqualValues(t, 1, calls.Load(), "a permanent error is not retried")
}

func TestGivesUpAfterMaxDeliver(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		calls.Add(1)
		return errors.New("still broken")
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	dl := waitDeadLetters(t, e, bus.ConsumerDedup, 1)[0]
	require.Contains(t, dl.Header.Get(bus.HeaderDLQReason), "gave up after 3 deliveries")
	require.EqualValues(t, e.set.MaxDeliver, calls.Load())
}

func TestMalformedAndUnknownEventsAreDeadLettered(t *testing.T) {
	e := setup(t)
	var handled atomic.Int32
	run(t, e, bus.ConsumerProjection,
		bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error { handled.Add(1); return nil }))
	ctx := context.Background()
	subject, _ := events.SubjectOf(events.TypeDocumentSubmitted)

	cases := []struct {
		name    string
		subject string
		header  nats.Header
		data    string
		reason  string
	}{
		{"not an event", subject, nats.Header{}, "hello", "invalid event"},
		{"unknown type", events.SubjectPrefix + "invoice.paid", nats.Header{
			"ce-specversion": {"1.0"}, "ce-id": {"x1"}, "ce-source": {"billing"}, "ce-type": {"com.example.invoice.paid.v1"},
		}, `{}`, "unknown event type"},
		{"schema violation", subject, nats.Header{
			"ce-specversion": {"1.0"}, "ce-id": {"x2"}, "ce-source": {"outside"}, "ce-type": {string(events.TypeDocumentSubmitted)},
		}, `{"job_id":"j 2","doc_id":"d","namespace":"default","submitted_at":"2026-01-01T00:00:00Z"}`, "violates its schema"},
		{"invalid utf-8", subject, nats.Header{
			"ce-specversion": {"1.0"}, "ce-id": {"x3"}, "ce-source": {"outside"}, "ce-type": {string(events.TypeDocumentSubmitted)},
		}, "{\"job_id\":\"\xff\"}", "UTF-8"},
	}
	for _, c := range cases {
		m := nats.NewMsg(c.subject)
		m.Header = c.header
		m.Data = []byte(c.data)
		_, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err, c.name)
	}
	// The pipeline keeps going: a valid event after the bad ones is handled.
	require.NoError(t, bus.Publish(ctx, e.pub, submitted("ok")))
	require.Eventually(t, func() bool { return handled.Load() == 1 }, 5*time.Second, 20*time.Millisecond)
	waitDeadLetters(t, e, bus.ConsumerProjection, len(cases))
	// Handled concurrently, so the dead letters may be in any order.
	bySubjectAndData := map[string]*jetstream.RawStreamMsg{}
	for _, dl := range deadLetters(t, e, bus.ConsumerProjection) {
		bySubjectAndData[dl.Header.Get(bus.HeaderDLQSubject)+"|"+string(dl.Data)] = dl
	}
	for _, c := range cases {
		dl, ok := bySubjectAndData[c.subject+"|"+c.data]
		require.True(t, ok, "no dead letter for %s", c.name)
		require.Contains(t, dl.Header.Get(bus.HeaderDLQReason), c.reason, c.name)
	}
}

func TestShutdownFinishesInFlightWork(t *testing.T) {
	e := setup(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Int32
	stop := run(t, e, bus.ConsumerDedup, bus.On(func(ctx context.Context, _ events.Event[events.DocumentSubmitted]) error {
		close(started)
		<-release
		if ctx.Err() != nil {
			return ctx.Err()
		}
		finished.Add(1)
		return nil
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Run returned while a handler was in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-stopped
	require.EqualValues(t, 1, finished.Load())
	cons, err := e.js.Consumer(context.Background(), bus.StreamEvents, bus.ConsumerDedup)
	require.NoError(t, err)
	ci, err := cons.Info(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, ci.AckFloor.Stream, "the in-flight event was acked during the drain")
}

func TestCrashedHandlerIsRedelivered(t *testing.T) {
	e := setup(t)
	// A consumer that pulls but never acks stands in for a killed process.
	cons, err := e.js.Consumer(context.Background(), bus.StreamEvents, bus.ConsumerDedup)
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	n := 0
	for range b.Messages() {
		n++
	}
	require.Equal(t, 1, n)

	got := make(chan int, 1)
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, ev events.Event[events.DocumentSubmitted]) error {
		got <- 1
		return nil
	}))
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("unacked event was not redelivered after AckWait")
	}
}

// A delivery whose every attempt timed out without an ack (the handler's
// process crashed each time) is dead-lettered by the next replica to see it,
// without calling the handler, and its job is failed: nothing stalls unseen.
func TestDeliveryPastTheBoundIsDeadLettered(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	require.NoError(t, bus.Publish(ctx, e.pub, submitted("j9")))
	cons, err := e.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerDedup)
	require.NoError(t, err)
	for attempt := 1; attempt <= e.set.MaxDeliver; attempt++ { // each fetch is a crashed process
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range b.Messages() {
			meta, err := m.Metadata()
			require.NoError(t, err)
			require.EqualValues(t, attempt, meta.NumDelivered)
			n++
		}
		require.Equal(t, 1, n, "attempt %d", attempt)
	}
	failed := make(chan events.Event[events.JobFailed], 1)
	run(t, e, bus.ConsumerProjection,
		bus.Ignore(events.TypeDocumentSubmitted),
		bus.On(func(_ context.Context, ev events.Event[events.JobFailed]) error { failed <- ev; return nil }))
	var calls atomic.Int32
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		calls.Add(1)
		return nil
	}))
	select {
	case ev := <-failed:
		require.Equal(t, "j9", ev.Data.JobID)
		require.Contains(t, ev.Data.Reason, "no ack after 3 deliveries")
	case <-time.After(10 * time.Second):
		t.Fatal("no job.failed for the over-delivered event")
	}
	require.Len(t, deadLetters(t, e, bus.ConsumerDedup), 1)
	require.Zero(t, calls.Load(), "the handler is not called past the bound")
}

// During a backend outage a delivery is retried for as long as it lasts,
// past the delivery bound, and is handled once the backend is back.
func TestOutageIsRetriedPastTheBound(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	done := make(chan struct{})
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		if calls.Add(1) <= int32(3*e.set.MaxDeliver) {
			return bus.Unavailable(errors.New("dial tcp 127.0.0.1:7687: connection refused"))
		}
		close(done)
		return nil
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	requireHandledWithoutDeadLetter(t, e, done, &calls)
}

// A classifier given by the composition root marks store errors as outages.
func TestUnavailableClassifier(t *testing.T) {
	e := setup(t)
	outage := errors.New("neo4j: connectivity error")
	var calls atomic.Int32
	done := make(chan struct{})
	runWith(t, e, bus.ConsumerConfig{
		Consumer: bus.ConsumerDedup, Concurrency: 1,
		Unavailable: func(err error) bool { return errors.Is(err, outage) },
		Routes: []bus.Route{bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
			if calls.Add(1) <= int32(2*e.set.MaxDeliver) {
				return fmt.Errorf("merge chunk: %w", outage)
			}
			close(done)
			return nil
		})},
	})
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j1")))
	requireHandledWithoutDeadLetter(t, e, done, &calls)
}

// An event published with a server directive (an expected stream) must
// still reach the dead-letter stream: the directive is not copied there.
func TestDeadLetterDropsServerDirectives(t *testing.T) {
	e := setup(t)
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, _ events.Event[events.DocumentSubmitted]) error {
		return bus.Permanent(errors.New("refused"))
	}))
	msg, err := events.Encode(submitted("j-directive"))
	require.NoError(t, err)
	msg.Header.Set("Nats-Expected-Stream", bus.StreamEvents)
	_, err = e.js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	dl := waitDeadLetters(t, e, bus.ConsumerDedup, 1)[0]
	require.Empty(t, dl.Header.Get("Nats-Expected-Stream"))
	require.Equal(t, msg.Header.Get(events.HeaderMsgID), dl.Header.Get(bus.HeaderDLQOrigMsgID))
}

// A panicking handler is retried like a failing one and dead-lettered past
// the bound, with the panic as the reason; the consumer (and the process,
// with every other service of kg serve in it) goes on handling events.
func TestPanickingHandlerIsDeadLetteredAfterTheBound(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	handled := make(chan string, 1)
	run(t, e, bus.ConsumerDedup, bus.On(func(_ context.Context, ev events.Event[events.DocumentSubmitted]) error {
		if ev.Data.JobID == "j-panics" {
			calls.Add(1)
			var chunks []string
			_ = chunks[len(ev.Data.JobID)] // the kind of bug a handler ships with
		}
		handled <- ev.Data.JobID
		return nil
	}))
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j-panics")))
	dl := waitDeadLetters(t, e, bus.ConsumerDedup, 1)[0]
	require.Contains(t, dl.Header.Get(bus.HeaderDLQReason), "handler panicked: runtime error: index out of range")
	require.EqualValues(t, e.set.MaxDeliver, calls.Load(), "a panic counts toward the delivery bound")

	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j-after")))
	select {
	case id := <-handled:
		require.Equal(t, "j-after", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer stopped handling events after a panic")
	}
}

// A handler that always outlives HandlerTimeout is dead-lettered past the
// bound, even when the composition root's classifier calls a deadline an
// outage (a store's own timeout is one; the handler's is not).
func TestHandlerTimeoutCountsTowardTheBound(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	runWith(t, e, bus.ConsumerConfig{
		Consumer: bus.ConsumerDedup, Concurrency: 1, HandlerTimeout: 50 * time.Millisecond,
		Unavailable: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		Routes: []bus.Route{bus.On(func(ctx context.Context, _ events.Event[events.DocumentSubmitted]) error {
			calls.Add(1)
			<-ctx.Done()
			return fmt.Errorf("query the store: %w", ctx.Err())
		})},
	})
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j-slow")))
	dl := waitDeadLetters(t, e, bus.ConsumerDedup, 1)[0]
	require.Contains(t, dl.Header.Get(bus.HeaderDLQReason), "handler timed out after 50ms")
	require.EqualValues(t, e.set.MaxDeliver, calls.Load())
}

// A store's own deadline, inside a handler with time left, is still an
// outage when the classifier says so.
func TestStoreDeadlineIsStillAnOutage(t *testing.T) {
	e := setup(t)
	var calls atomic.Int32
	done := make(chan struct{})
	runWith(t, e, bus.ConsumerConfig{
		Consumer: bus.ConsumerDedup, Concurrency: 1, HandlerTimeout: time.Minute,
		Unavailable: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		Routes: []bus.Route{bus.On(func(ctx context.Context, _ events.Event[events.DocumentSubmitted]) error {
			if calls.Add(1) <= int32(2*e.set.MaxDeliver) {
				dial, cancel := context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
				<-dial.Done()
				return fmt.Errorf("dial the store: %w", dial.Err())
			}
			close(done)
			return nil
		})},
	})
	require.NoError(t, bus.Publish(context.Background(), e.pub, submitted("j-outage")))
	requireHandledWithoutDeadLetter(t, e, done, &calls)
}

// A consumer that fails stops its siblings: RunAll returns its error
// instead of leaving a service running with half of its consumers.
func TestRunAllStopsWhenOneConsumerFails(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	healthy := newConsumer(t, e, bus.ConsumerConfig{Consumer: bus.ConsumerExtractorDocuments, Concurrency: 1})
	broken := newConsumer(t, e, bus.ConsumerConfig{Consumer: bus.ConsumerExtractorChunks, Concurrency: 1})
	// The durable consumer is gone: binding it fails.
	require.NoError(t, e.js.DeleteConsumer(ctx, bus.StreamEvents, bus.ConsumerExtractorChunks))
	done := make(chan error, 1)
	go func() { done <- bus.RunAll(ctx, healthy, broken) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "bind consumer "+bus.ConsumerExtractorChunks)
	case <-time.After(10 * time.Second):
		t.Fatal("RunAll kept running with a dead consumer")
	}
}

// requireHandledWithoutDeadLetter waits for done (closed by a handler once
// it succeeds) and requires that the retries dead-lettered nothing.
func requireHandledWithoutDeadLetter(t *testing.T, e env, done <-chan struct{}, calls *atomic.Int32) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("not handled after the retries; calls=%d", calls.Load())
	}
	require.Empty(t, deadLetters(t, e, bus.ConsumerDedup), "an outage must not dead-letter")
}
