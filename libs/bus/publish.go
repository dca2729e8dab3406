package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// Bounds of PublishMsgs: the messages in flight at once (well below the
// client's limit on pending async publishes) and how long it waits for the
// acks of one window when ctx sets no earlier deadline.
const (
	publishWindow     = 256
	publishAckTimeout = 30 * time.Second
)

// PublishMsgs publishes msgs in order without waiting for each ack in turn:
// a window of messages goes out at once and then its acks are awaited, so
// many events cost about one round trip instead of one each. It returns nil
// only once the stream has stored every message; on an error some may be
// stored, and publishing them all again is harmless because each keeps its
// Nats-Msg-Id.
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
	ctx, cancel := context.WithTimeout(ctx, publishAckTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var errs []error
	for _, m := range msgs {
		var opts []jetstream.PublishOpt
		if id := m.Header.Get(events.HeaderMsgID); id != "" {
			opts = append(opts, jetstream.WithMsgID(id))
		}
		f, err := p.js.PublishMsgAsync(m, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", m.Subject, err))
			break
		}
		futures = append(futures, f)
	}
	// Every future is awaited, also after a failure, so that no ack of this
	// window is still outstanding when the next one starts.
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("publish %s: wait for ack: %w", f.Msg().Subject, ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
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
