// Package metrics holds Prometheus collectors that read the pipeline's
// state when scraped: consumer lag and dead letters from JetStream, and jobs
// by status from the job records. Each reading is cached for a few seconds
// and bounded by a timeout, so that frequent scrapes stay cheap and a slow
// backend cannot hold a scrape; a failed reading leaves its series out and
// sets the collector's "up" gauge to 0 instead of failing the whole scrape.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// cachedReading holds the last reading of a collector's source, so that
// scrapes in quick succession (several Prometheus servers, a dashboard) do
// not each hit the source. A failed reading is cached too: a backend that is
// down is not asked again on every scrape.
type cachedReading[T any] struct {
	ttl, timeout time.Duration
	now          func() time.Time
	read         func(ctx context.Context) T

	mu    sync.Mutex
	at    time.Time
	last  T
	valid bool
}

// get returns the cached reading, reading anew when it is older than the
// TTL. Concurrent scrapes wait for one reading rather than each starting
// their own.
func (c *cachedReading[T]) get() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.valid && now.Sub(c.at) < c.ttl {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.last, c.at, c.valid = c.read(ctx), now, true
	return c.last
}

// RegisterPipeline registers the consumer lag and the jobs-by-status
// collectors, with their default settings, on reg. A collector already
// registered (a second edge on one registry) is kept. Pipeline state is the
// same whichever service reports it, so one service should: the edge does.
func RegisterPipeline(reg prometheus.Registerer, js JetStreamState, jobs JobStore, logger *slog.Logger) error {
	lag := NewConsumerLag(js, ConsumerLagConfig{Logger: logger})
	byStatus := NewJobsByStatus(jobs, JobsConfig{Logger: logger})
	for _, c := range []prometheus.Collector{lag, byStatus} {
		if err := reg.Register(c); err != nil {
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
				continue
			}
			return fmt.Errorf("register pipeline metrics: %w", err)
		}
	}
	return nil
}

// JetStreamState reads the state of streams and consumers.
// FromJetStream adapts a jetstream.JetStream; tests may fake it.
type JetStreamState interface {
	ConsumerInfo(ctx context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error)
	StreamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error)
}

// FromJetStream reads stream and consumer state through js; each call is
// one JetStream API request.
func FromJetStream(js jetstream.JetStream) JetStreamState { return jetStreamState{js} }

type jetStreamState struct{ js jetstream.JetStream }

func (s jetStreamState) ConsumerInfo(ctx context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	// Looking a consumer up fetches its info; the handle keeps it.
	c, err := s.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

func (s jetStreamState) StreamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
