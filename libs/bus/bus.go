package bus

import (
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/events"
)

// Bus bundles what a service needs to consume and publish events.
type Bus struct {
	JS        jetstream.JetStream
	Pub       *Publisher
	Validator *events.Validator
	Settings  Settings
	Logger    *slog.Logger
	// Unavailable classifies store errors as outages (see ConsumerConfig).
	Unavailable func(error) bool
}

// Consumer builds a consumer adapter for the declared durable consumer name.
func (b Bus) Consumer(name, source string, concurrency int, routes ...Route) (*Consumer, error) {
	return NewConsumer(b.JS, b.Pub, ConsumerConfig{
		Consumer: name, Routes: routes, Concurrency: concurrency, Settings: b.Settings,
		Source: source, Logger: b.Logger, Validator: b.Validator, Unavailable: b.Unavailable,
	})
}
