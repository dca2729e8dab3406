// Package bustest gives a test a bus of its own: an embedded nats-server
// with JetStream in a temporary directory, kgraph's topology ensured, and a
// bus.Bus whose short ack wait and backoffs make redeliveries happen within
// the test. Every service's tests start one the same way.
package bustest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
)

// Env is a running test bus.
type Env struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	Bus bus.Bus
}

// Option adjusts an Env before the topology is ensured.
type Option func(*options)

type options struct {
	settings bus.Settings
	logLevel slog.Level
}

// WithSettings changes the bus settings (ack wait, delivery bound,
// backoffs) from the test defaults.
func WithSettings(adjust func(*bus.Settings)) Option {
	return func(o *options) { adjust(&o.settings) }
}

// WithLogLevel sets the level from which the services' logs reach the
// test's output (default: warnings).
func WithLogLevel(level slog.Level) Option {
	return func(o *options) { o.logLevel = level }
}

// New starts the server, connects, ensures the topology and returns the
// bus; everything stops when t ends.
func New(t testing.TB, opts ...Option) Env {
	t.Helper()
	o := options{settings: bus.DefaultSettings(), logLevel: slog.LevelWarn}
	o.settings.AckWait = time.Second
	o.settings.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(t.Name())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, bus.EnsureTopology(context.Background(), js, o.settings))
	validator, err := events.NewValidator()
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: o.logLevel}))
	return Env{NC: nc, JS: js,
		Bus: bus.Bus{JS: js, Pub: bus.NewPublisher(js), Validator: validator, Settings: o.settings, Logger: logger}}
}
