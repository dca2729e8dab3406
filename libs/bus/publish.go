package bus

import (
	"context"
	"fmt"

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

// Publish encodes a typed event and publishes it.
func Publish[T events.Payload](ctx context.Context, p MsgPublisher, e events.Event[T]) error {
	m, err := events.Encode(e)
	if err != nil {
		return err
	}
	return p.PublishMsg(ctx, m)
}
