package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/events"
)

// Dead-letter headers, added to the original headers of a dead letter.
const (
	HeaderDLQReason     = "Kg-Dlq-Reason"
	HeaderDLQConsumer   = "Kg-Dlq-Consumer"
	HeaderDLQStreamSeq  = "Kg-Dlq-Stream-Seq"
	HeaderDLQSubject    = "Kg-Dlq-Subject"
	HeaderDLQDeliveries = "Kg-Dlq-Deliveries"
	HeaderDLQTime       = "Kg-Dlq-Time"
	HeaderDLQOrigMsgID  = "Kg-Dlq-Original-Msg-Id"
)

// permanentError marks an error that no redelivery can fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as permanent: the adapter dead-letters the event at
// once instead of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// IsPermanent reports whether err can never succeed on redelivery: marked
// with Permanent, or an undecodable or unknown event.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrUnknownType)
}

// unavailableError marks an error caused by a backend being down.
type unavailableError struct{ err error }

func (u unavailableError) Error() string { return u.err.Error() }
func (u unavailableError) Unwrap() error { return u.err }

// Unavailable marks err as caused by an unreachable backend (a database
// restarting, a network partition). Such deliveries are retried with capped
// backoff for as long as the outage lasts and do not count toward the
// delivery bound, so an outage never dead-letters healthy events.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err: err}
}

// IsUnavailable reports whether err was marked with Unavailable.
func IsUnavailable(err error) bool {
	var u unavailableError
	return errors.As(err, &u)
}

// Route binds an event type to its handler.
type Route struct {
	Type   events.Type
	handle func(ctx context.Context, env events.Envelope, v *events.Validator) error
}

// On routes events of T's type to h. The adapter decodes and validates the
// event; h never sees a NATS message.
func On[T events.Payload](h func(ctx context.Context, e events.Event[T]) error) Route {
	var zero T
	return Route{Type: zero.EventType(), handle: func(ctx context.Context, env events.Envelope, v *events.Validator) error {
		e, err := events.Decode[T](env, v)
		if err != nil {
			return err
		}
		return h(ctx, e)
	}}
}

// Ignore acknowledges events of type t without handling them: for a
// consumer that sees every subject but needs only some types.
func Ignore(t events.Type) Route { return Route{Type: t} }

// ConsumerConfig configures one consumer adapter.
type ConsumerConfig struct {
	// Consumer is the name of a declared durable consumer (see Consumers).
	Consumer string
	Routes   []Route
	// Concurrency is the number of events handled at once by this process.
	Concurrency int
	// HandlerTimeout bounds one handler call.
	HandlerTimeout time.Duration
	Settings       Settings
	// Source is the CloudEvents source of the job.failed events the adapter
	// publishes when it dead-letters an event that belongs to a job.
	Source    string
	Logger    *slog.Logger
	Validator *events.Validator
	// Unavailable classifies errors of the stores this consumer's handlers
	// use (connection refused, a driver's connectivity error) as outages,
	// in addition to errors marked with Unavailable. Optional.
	Unavailable func(error) bool
}

// Consumer pulls from a durable consumer and runs the handlers.
type Consumer struct {
	cfg    ConsumerConfig
	js     jetstream.JetStream
	pub    MsgPublisher
	routes map[events.Type]Route
	log    *slog.Logger
	now    func() time.Time
	// outages counts, per stream sequence, the deliveries that failed
	// because a backend was down; they are not held against the bound.
	// In memory: after a restart the count starts again, which errs on
	// the side of retrying.
	outagesMu sync.Mutex
	outages   map[uint64]uint64
}

// NewConsumer builds the adapter. The durable consumer must exist (see
// EnsureTopology).
func NewConsumer(js jetstream.JetStream, pub MsgPublisher, cfg ConsumerConfig) (*Consumer, error) {
	if _, err := ConsumerByName(cfg.Consumer); err != nil {
		return nil, err
	}
	if cfg.Validator == nil || cfg.Logger == nil || cfg.Source == "" {
		return nil, errors.New("consumer needs a validator, a logger and a source")
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("consumer %s settings: %w", cfg.Consumer, err)
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 5 * time.Minute
	}
	routes := make(map[events.Type]Route, len(cfg.Routes))
	for _, r := range cfg.Routes {
		if _, dup := routes[r.Type]; dup {
			return nil, fmt.Errorf("consumer %s routes %s twice", cfg.Consumer, r.Type)
		}
		routes[r.Type] = r
	}
	return &Consumer{cfg: cfg, js: js, pub: pub, routes: routes, log: cfg.Logger.With("consumer", cfg.Consumer), now: time.Now,
		outages: map[uint64]uint64{}}, nil
}

// pullWait is how long one pull request waits for events before the next
// is sent.
const pullWait = 5 * time.Second

// Run handles events until ctx is cancelled, then drains: it stops pulling,
// hands back the events it has received but not started for immediate
// redelivery, and waits for the handlers in flight to finish and ack. It
// returns nil after a clean drain.
//
// Events are pulled with one bounded request at a time (Fetch), each for
// up to twice the concurrency, the next sent once the last event of the
// previous one has been handed to a handler. nats.go's continuous iterator
// (Messages) was used before and stalled now and then: it decides to ask
// for more only when an event arrives, and skips asking while its previous
// request is still marked as being sent; when the last events arrived in
// that window nothing was requested again until a missed heartbeat, 30 s
// later, with events waiting in the stream (seen as a job finishing 30 s
// late, and in tests as a consumer with 10 pending and no waiting pull).
// A Fetch has no such bookkeeping: it ends, and the loop asks again.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.js.Consumer(ctx, StreamEvents, c.cfg.Consumer)
	if err != nil {
		return fmt.Errorf("bind consumer %s: %w", c.cfg.Consumer, err)
	}
	// Handlers outlive the cancellation of ctx so that a drain finishes the
	// work in flight; each is bounded by HandlerTimeout instead.
	handlerCtx := context.WithoutCancel(ctx)
	slots := make(chan struct{}, c.cfg.Concurrency)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	failures := 0
	for ctx.Err() == nil {
		// The request ends at once when ctx is cancelled: a drain does not
		// wait out pullWait. (Events the server sends to it after that
		// are redelivered after AckWait, as they were with the iterator.)
		fetchCtx, cancel := context.WithTimeout(ctx, pullWait)
		batch, err := cons.Fetch(2*c.cfg.Concurrency, jetstream.FetchContext(fetchCtx))
		if err == nil {
			for msg := range batch.Messages() {
				c.dispatch(ctx, handlerCtx, msg, slots, &inFlight)
			}
			err = batch.Error()
		}
		cancel()
		switch {
		case err == nil, errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
			failures = 0
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("consumer %s: %w", c.cfg.Consumer, err)
		default:
			// A server restarting or the consumer being recreated: ask
			// again after a short pause rather than in a tight loop.
			failures++
			c.log.Debug("pull failed", "err", err, "failures", failures)
			select {
			case <-ctx.Done():
			case <-time.After(c.cfg.Settings.Delay(failures)):
			}
		}
	}
	return nil
}

// dispatch hands msg to a handler once a slot is free, or back to the
// server for immediate redelivery if the consumer is draining.
func (c *Consumer) dispatch(ctx, handlerCtx context.Context, msg jetstream.Msg, slots chan struct{}, inFlight *sync.WaitGroup) {
	// Draining: give the message back for another replica (or the next
	// start) instead of waiting for AckWait.
	select {
	case slots <- struct{}{}:
		if ctx.Err() != nil {
			<-slots
			_ = msg.Nak()
			return
		}
	case <-ctx.Done():
		_ = msg.Nak()
		return
	}
	inFlight.Go(func() {
		defer func() { <-slots }()
		hctx, cancel := context.WithTimeout(handlerCtx, c.cfg.HandlerTimeout)
		defer cancel()
		c.process(hctx, msg)
	})
}

// process handles one delivery and decides its fate.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without metadata", "err", err)
		_ = msg.Term()
		return
	}
	env, err := events.DecodeEnvelope(msg.Headers(), msg.Data())
	if err != nil {
		c.deadLetter(ctx, msg, rawOf(msg, meta), err, nil)
		return
	}
	log := c.log.With("event_id", env.ID, "type", env.Type, "delivery", meta.NumDelivered)
	route, ok := c.routes[env.Type]
	if !ok {
		reason := fmt.Errorf("%w: %q", events.ErrUnknownType, env.Type)
		if _, known := events.Lookup(env.Type); known {
			reason = fmt.Errorf("event type %q is not handled by consumer %s", env.Type, c.cfg.Consumer)
		}
		c.deadLetter(ctx, msg, rawOf(msg, meta), reason, &env)
		return
	}
	if route.handle == nil {
		c.ack(msg, log)
		return
	}
	// The bound on deliveries is enforced here rather than by the server:
	// a delivery past it means every earlier attempt crashed or timed out
	// without an answer, and whichever replica sees it next dead-letters it.
	// (With the server's MaxDeliver the message would just stop being
	// delivered, and only an advisory that nobody may be listening to would
	// say so.)
	seq := meta.Sequence.Stream
	attempts := meta.NumDelivered - c.outageCount(seq)
	if attempts > uint64(c.cfg.Settings.MaxDeliver) {
		c.forget(seq)
		c.deadLetter(ctx, msg, rawOf(msg, meta), fmt.Errorf("no ack after %d deliveries (handler crashed or timed out)", attempts-1), &env)
		return
	}

	// Keep a slow handler's delivery alive past AckWait.
	heartbeat := c.keepAlive(msg)
	start := time.Now()
	err = c.handle(ctx, route, env, log)
	heartbeat.Stop()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The handler's own bound, not a store's: it counts toward the
		// delivery bound whatever the classifier says of deadlines, or a
		// handler that always times out would be retried forever.
		err = fmt.Errorf("handler timed out after %s: %w", c.cfg.HandlerTimeout, errHandlerTimeout{err})
	}
	switch {
	case err == nil:
		log.Debug("handled", "took", time.Since(start))
		c.forget(seq)
		c.ack(msg, log)
	case IsPermanent(err):
		c.forget(seq)
		c.deadLetter(ctx, msg, rawOf(msg, meta), err, &env)
	case !isHandlerFault(err) && c.isUnavailable(err):
		n := c.countOutage(seq)
		delay := c.cfg.Settings.Delay(int(n))
		log.Warn("backend unavailable, will retry", "err", err, "retry_in", delay, "outage_deliveries", n)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak", "err", nerr)
		}
	case attempts >= uint64(c.cfg.Settings.MaxDeliver):
		c.forget(seq)
		c.deadLetter(ctx, msg, rawOf(msg, meta), fmt.Errorf("gave up after %d deliveries: %w", attempts, err), &env)
	default:
		delay := c.cfg.Settings.Delay(int(attempts))
		log.Warn("handler failed, will retry", "err", err, "retry_in", delay)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak", "err", nerr)
		}
	}
}

// handle runs the route's handler, turning a panic into an error that is
// retried and, past the bound, dead-lettered with the panic as the reason:
// one faulty handler must not take down the process and every service
// composed into it.
func (c *Consumer) handle(ctx context.Context, route Route, env events.Envelope, log *slog.Logger) (err error) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("handler panicked", "panic", v, "stack", string(debug.Stack()))
			err = errHandlerPanic{value: v}
		}
	}()
	return route.handle(ctx, env, c.cfg.Validator)
}

// errHandlerPanic is a handler's panic, as an error.
type errHandlerPanic struct{ value any }

func (e errHandlerPanic) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

// errHandlerTimeout wraps the error of a handler that ran out of
// HandlerTimeout.
type errHandlerTimeout struct{ err error }

func (e errHandlerTimeout) Error() string { return e.err.Error() }
func (e errHandlerTimeout) Unwrap() error { return e.err }

// isHandlerFault reports whether err is the handler's own failure (a panic
// or its timeout), which is never an outage.
func isHandlerFault(err error) bool {
	var p errHandlerPanic
	var t errHandlerTimeout
	return errors.As(err, &p) || errors.As(err, &t)
}

func (c *Consumer) isUnavailable(err error) bool {
	return IsUnavailable(err) || (c.cfg.Unavailable != nil && c.cfg.Unavailable(err))
}

func (c *Consumer) outageCount(seq uint64) uint64 {
	c.outagesMu.Lock()
	defer c.outagesMu.Unlock()
	return c.outages[seq]
}

func (c *Consumer) countOutage(seq uint64) uint64 {
	c.outagesMu.Lock()
	defer c.outagesMu.Unlock()
	c.outages[seq]++
	return c.outages[seq]
}

func (c *Consumer) forget(seq uint64) {
	c.outagesMu.Lock()
	defer c.outagesMu.Unlock()
	delete(c.outages, seq)
}

func (c *Consumer) ack(msg jetstream.Msg, log *slog.Logger) {
	if err := msg.Ack(); err != nil {
		// The work is committed; a lost ack means an idempotent redelivery.
		log.Warn("ack", "err", err)
	}
}

// heartbeat tells the server a slow delivery is still being worked on.
type heartbeat struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func (h *heartbeat) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
}

func (c *Consumer) keepAlive(msg jetstream.Msg) *heartbeat {
	every := c.cfg.Settings.AckWait / 3
	h := &heartbeat{}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timer = time.AfterFunc(every, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.stopped {
			return
		}
		_ = msg.InProgress()
		h.timer.Reset(every)
	})
	return h
}

// rawMsg is what a dead letter keeps of the original delivery.
type rawMsg struct {
	subject    string
	header     nats.Header
	data       []byte
	streamSeq  uint64
	deliveries uint64
}

func rawOf(msg jetstream.Msg, meta *jetstream.MsgMetadata) rawMsg {
	return rawMsg{subject: msg.Subject(), header: msg.Headers(), data: msg.Data(), streamSeq: meta.Sequence.Stream, deliveries: meta.NumDelivered}
}

// deadLetter copies the delivery to the dead-letter stream with the reason,
// fails its job if it belongs to one, and then terminates the delivery. If
// either publish fails the delivery is nak'ed instead, so nothing is lost.
// deadLetterTimeout bounds publishing a dead letter and its job.failed.
const deadLetterTimeout = 30 * time.Second

func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, raw rawMsg, reason error, env *events.Envelope) {
	log := c.log.With("stream_seq", raw.streamSeq, "subject", raw.subject)
	// The handler's context may be what ran out (a handler timeout): the
	// dead letter gets time of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterTimeout)
	defer cancel()
	if err := c.publishDeadLetter(ctx, raw, reason); err != nil {
		log.Error("dead-letter publish failed, will retry", "err", err)
		_ = msg.NakWithDelay(c.cfg.Settings.Delay(int(raw.deliveries)))
		return
	}
	if err := c.failJob(ctx, env, reason); err != nil {
		log.Error("job.failed publish failed, will retry", "err", err)
		_ = msg.NakWithDelay(c.cfg.Settings.Delay(int(raw.deliveries)))
		return
	}
	log.Warn("dead-lettered", "reason", reason.Error())
	if err := msg.TermWithReason(truncate(reason.Error(), 200)); err != nil {
		log.Warn("term", "err", err)
	}
}

func (c *Consumer) publishDeadLetter(ctx context.Context, raw rawMsg, reason error) error {
	dl := nats.NewMsg(events.DeadLetterSubject(c.cfg.Consumer))
	for k, vs := range raw.header {
		// Server directives such as Nats-Expected-Stream would make the
		// dead-letter publish fail forever; only the message id is kept.
		if strings.HasPrefix(strings.ToLower(k), "nats-") && !strings.EqualFold(k, events.HeaderMsgID) {
			continue
		}
		dl.Header[k] = append([]string(nil), vs...)
	}
	if orig := raw.header.Get(events.HeaderMsgID); orig != "" {
		dl.Header.Set(HeaderDLQOrigMsgID, orig)
	}
	dl.Header.Set(HeaderDLQReason, reason.Error())
	dl.Header.Set(HeaderDLQConsumer, c.cfg.Consumer)
	dl.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(raw.streamSeq, 10))
	dl.Header.Set(HeaderDLQSubject, raw.subject)
	dl.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(raw.deliveries, 10))
	dl.Header.Set(HeaderDLQTime, c.now().UTC().Format(time.RFC3339Nano))
	// One dead letter per (consumer, original message), however often this runs.
	dl.Header.Set(events.HeaderMsgID, "dlq-"+c.cfg.Consumer+"-"+strconv.FormatUint(raw.streamSeq, 10))
	dl.Data = raw.data
	return c.pub.PublishMsg(ctx, dl)
}

var refPattern = regexp.MustCompile(events.IDPattern)

// failJob publishes job.failed for the job of a dead-lettered event, when
// the event names a job and is not itself a job outcome.
func (c *Consumer) failJob(ctx context.Context, env *events.Envelope, reason error) error {
	if env == nil {
		return nil
	}
	if env.Type == events.TypeJobFailed || env.Type == events.TypeJobCompleted {
		return nil
	}
	var ref events.JobRef
	if json.Unmarshal(env.Data, &ref) != nil || !refPattern.MatchString(ref.JobID) || len(ref.JobID) > events.MaxIDLength {
		return nil
	}
	if ref.Namespace == "" {
		ref.Namespace = events.DefaultNamespace
	}
	if ref.DocID == "" || !refPattern.MatchString(ref.Namespace) {
		return nil
	}
	failed := events.JobFailed{JobRef: ref, Stage: c.cfg.Consumer, Reason: truncate(reason.Error(), 1000)}
	e := events.New(events.DerivedID(env.ID, string(events.TypeJobFailed), c.cfg.Consumer), c.cfg.Source, failed, c.now())
	e.TraceParent = env.TraceParent
	return Publish(ctx, c.pub, e)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// RunAll runs a service's consumers until ctx is cancelled or one of them
// fails; a failure stops the others (they drain), so a service never keeps
// running with half of its consumers dead. It returns the first failure.
func RunAll(ctx context.Context, consumers ...*Consumer) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range consumers {
		g.Go(func() error { return c.Run(ctx) })
	}
	return g.Wait()
}
