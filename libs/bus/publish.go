package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/events"
)

// MsgPublisher publishes an encoded message and returns once the stream has
// stored it.
type MsgPublisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg) error
}

// Publisher publishes to JetStream and waits for the stream's ack.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// PublishMsg publishes m with its Nats-Msg-Id, so a retried publish of the
// same event is dropped by the stream's duplicate window.
func (p *Publisher) PublishMsg(ctx context.Context, m *nats.Msg) error {
	var opts []jetstream.PublishOpt
	if id := m.Header.Get(events.HeaderMsgID); id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	if _, err := p.js.PublishMsg(ctx, m, opts...); err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return nil
}

// Bounds of PublishMsgs: the messages of one window, and the publishes in
// flight at once within it.
const (
	publishWindow      = 256
	publishConcurrency = 32
)

// PublishMsgs publishes msgs several at a time, so many events cost a few
// round trips instead of one each; the stream may store them in any order.
// It returns nil only once the stream has stored every message; on an error
// some may be stored, and publishing them all again is harmless because each
// keeps its Nats-Msg-Id.
func (p *Publisher) PublishMsgs(ctx context.Context, msgs []*nats.Msg) error {
	for start := 0; start < len(msgs); start += publishWindow {
		if err := p.publishWindow(ctx, msgs[start:min(start+publishWindow, len(msgs))]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publishWindow(ctx context.Context, msgs []*nats.Msg) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish %d events: %w", len(msgs), err)
	}
	// Synchronous publishes, several in flight: each waits for its own ack
	// through the connection's request path. (Asynchronous publishes were
	// measured to lose an ack now and then on a fresh connection, stalling
	// the batch until its timeout.)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(publishConcurrency)
	for _, m := range msgs {
		g.Go(func() error { return p.PublishMsg(gctx, m) })
	}
	return g.Wait()
}

// PublishAll encodes typed events and publishes them in order with
// PublishMsgs.
func PublishAll[T events.Payload](ctx context.Context, p *Publisher, es []events.Event[T]) error {
	msgs := make([]*nats.Msg, 0, len(es))
	for _, e := range es {
		m, err := events.Encode(e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return p.PublishMsgs(ctx, msgs)
}

// Publish encodes a typed event and publishes it.
func Publish[T events.Payload](ctx context.Context, p MsgPublisher, e events.Event[T]) error {
	m, err := events.Encode(e)
	if err != nil {
		return err
	}
	return p.PublishMsg(ctx, m)
}
