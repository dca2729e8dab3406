package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgraph-dev/kgraph/libs/bus"
)

// Defaults of ConsumerLagConfig.
const (
	DefaultLagCacheFor = 5 * time.Second
	DefaultLagTimeout  = 2 * time.Second
)

// ConsumerLagConfig tunes ConsumerLag; zero fields take the defaults.
type ConsumerLagConfig struct {
	// CacheFor is how long one reading serves scrapes (default 5 s).
	CacheFor time.Duration
	// Timeout bounds one reading of every consumer and the dead letters
	// (default 2 s).
	Timeout time.Duration
	// Logger receives failed readings; nil discards them.
	Logger *slog.Logger
}

// ConsumerLag is a Prometheus collector of the backlog of every durable
// consumer of the bus topology and of the dead-letter count.
type ConsumerLag struct {
	src       JetStreamState
	consumers []string
	logger    *slog.Logger
	reading   *cachedReading[lagReading]

	pending, ackPending, redelivered, deadLetters, up *prometheus.Desc
}

type consumerState struct {
	name                             string
	pending, ackPending, redelivered float64
}

type lagReading struct {
	consumers   []consumerState
	deadLetters float64
	hasDead     bool
	ok          bool
}

// NewConsumerLag returns the collector for the consumers in bus.Consumers().
func NewConsumerLag(src JetStreamState, cfg ConsumerLagConfig) *ConsumerLag {
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = DefaultLagCacheFor
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultLagTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &ConsumerLag{
		src:    src,
		logger: cfg.Logger,
		pending: prometheus.NewDesc("kgraph_consumer_pending_messages",
			"Events on a durable consumer's subjects not yet delivered to it: its backlog.", []string{"consumer"}, nil),
		ackPending: prometheus.NewDesc("kgraph_consumer_ack_pending_messages",
			"Events delivered to a durable consumer and not yet acknowledged: in progress, or held by a crashed handler until the ack wait ends.", []string{"consumer"}, nil),
		redelivered: prometheus.NewDesc("kgraph_consumer_redelivered_messages",
			"Events delivered to a durable consumer more than once and not yet acknowledged.", []string{"consumer"}, nil),
		deadLetters: prometheus.NewDesc("kgraph_deadletter_messages",
			"Messages in the DEADLETTER stream.", nil, nil),
		up: prometheus.NewDesc("kgraph_consumer_lag_up",
			"1 when the last reading of consumer and dead-letter state succeeded; 0 when a part failed, whose series are then left out.", nil, nil),
	}
	for _, spec := range bus.Consumers() {
		c.consumers = append(c.consumers, spec.Name)
	}
	c.reading = &cachedReading[lagReading]{ttl: cfg.CacheFor, timeout: cfg.Timeout, now: time.Now, read: c.read}
	return c
}

// Describe implements prometheus.Collector.
func (c *ConsumerLag) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.deadLetters, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ConsumerLag) Collect(ch chan<- prometheus.Metric) {
	r := c.reading.get()
	for _, s := range r.consumers {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, s.pending, s.name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, s.ackPending, s.name)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, s.redelivered, s.name)
	}
	if r.hasDead {
		ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, r.deadLetters)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolGauge(r.ok))
}

func (c *ConsumerLag) read(ctx context.Context) lagReading {
	r := lagReading{ok: true}
	for _, name := range c.consumers {
		info, err := c.src.ConsumerInfo(ctx, bus.StreamEvents, name)
		if err != nil {
			r.ok = false
			c.logger.WarnContext(ctx, "read consumer state for metrics", "consumer", name, "err", err)
			continue
		}
		r.consumers = append(r.consumers, consumerState{name: name, pending: float64(info.NumPending),
			ackPending: float64(info.NumAckPending), redelivered: float64(info.NumRedelivered)})
	}
	info, err := c.src.StreamInfo(ctx, bus.StreamDeadLetter)
	if err != nil {
		r.ok = false
		c.logger.WarnContext(ctx, "read stream state for metrics", "stream", bus.StreamDeadLetter, "err", err)
		return r
	}
	r.deadLetters, r.hasDead = float64(info.State.Msgs), true
	return r
}
