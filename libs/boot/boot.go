// Package boot holds the start-up steps every service binary shares: the
// common settings from the environment, the JSON logger, the NATS connection
// and the bus with its topology ensured.
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
)

// Common are the settings every service binary reads.
type Common struct {
	NATSURL string
	// MetricsAddr serves /health/live, /health/ready and /metrics
	// (KG_METRICS_ADDR, default :9090; "off" disables it).
	MetricsAddr string
	LogLevel    slog.Level
	DataDir     string
	Bus         bus.Settings
}

// ReadCommon reads NATS_URL, KG_LOG_LEVEL, KG_DATA_DIR and the bus settings
// (KG_ACK_WAIT, KG_MAX_DELIVER, KG_NATS_REPLICAS).
func ReadCommon(r *envconf.Reader) Common {
	c := Common{Bus: bus.DefaultSettings()}
	c.NATSURL = r.String("NATS_URL", nats.DefaultURL)
	c.MetricsAddr = r.String("KG_METRICS_ADDR", ":9090")
	if c.MetricsAddr == "off" {
		c.MetricsAddr = ""
	}
	c.DataDir = r.String("KG_DATA_DIR", "data")
	c.Bus.AckWait = r.Duration("KG_ACK_WAIT", c.Bus.AckWait)
	c.Bus.MaxDeliver = r.Int("KG_MAX_DELIVER", c.Bus.MaxDeliver)
	c.Bus.Replicas = r.Int("KG_NATS_REPLICAS", c.Bus.Replicas)
	level := r.String("KG_LOG_LEVEL", "info")
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		c.LogLevel = slog.LevelInfo
	}
	return c
}

// Validate checks the common settings.
func (c Common) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		errs = append(errs, fmt.Errorf("NATS_URL=%q must start with nats:// or tls://", c.NATSURL))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("KG_DATA_DIR must not be empty"))
	}
	if err := c.Bus.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DataPath returns a file under the data directory.
func (c Common) DataPath(name string) string { return filepath.Join(c.DataDir, name) }

// Logger returns the JSON logger of a service.
func Logger(w io.Writer, service string, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", service)
}

// Connect connects to NATS, retrying until ctx ends, so services may start
// before the server. The connection reconnects forever afterwards.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, error) {
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
			nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }))
		if err == nil {
			return nc, nil
		}
		log.Warn("nats not reachable yet", "url", url, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 3*time.Second)):
		}
	}
}

// NewBus ensures the topology and returns the bus of a service.
func NewBus(ctx context.Context, nc *nats.Conn, s bus.Settings, log *slog.Logger) (bus.Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return bus.Bus{}, fmt.Errorf("jetstream: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopology(tctx, js, s); err != nil {
		return bus.Bus{}, err
	}
	v, err := events.NewValidator()
	if err != nil {
		return bus.Bus{}, err
	}
	// Every host (a service binary, kg serve) gets the same outage
	// classifier: a store that cannot be reached is retried for as long
	// as it is down, in either mode, instead of dead-lettering events.
	return bus.Bus{JS: js, Pub: bus.NewPublisher(js), Validator: v, Settings: s, Logger: log,
		Unavailable: backends.IsUnavailable}, nil
}

// Process is what a service binary has after the shared start-up steps.
type Process struct {
	Log         *slog.Logger
	NC          *nats.Conn
	Bus         bus.Bus
	Ops         *Ops
	metricsAddr string
}

// Run runs the service with its ops endpoint beside it; ready while the
// NATS connection is up.
func (p *Process) Run(ctx context.Context, run func(context.Context) error) error {
	return p.Ops.Run(ctx, p.metricsAddr, run)
}

// Start runs the shared start-up steps of a service binary: it validates
// the common settings (with the service's own config errors, so one message
// names every problem), builds the logger, connects to NATS and ensures the
// topology. Close the process when done.
func Start(ctx context.Context, service string, c Common, configErr error, stdout io.Writer) (*Process, error) {
	if err := errors.Join(configErr, c.Validate()); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := Logger(stdout, service, c.LogLevel)
	nc, err := Connect(ctx, c.NATSURL, "kgraph-"+service, log)
	if err != nil {
		return nil, err
	}
	b, err := NewBus(ctx, nc, c.Bus, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	log.Info("started", "nats", c.NATSURL, "data_dir", c.DataDir, "metrics_addr", c.MetricsAddr)
	ops := NewOps(func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats connection is %s", nc.Status())
		}
		return nil
	})
	return &Process{Log: log, NC: nc, Bus: b, Ops: ops, metricsAddr: c.MetricsAddr}, nil
}

// Close drains the NATS connection: pending publishes are flushed.
func (p *Process) Close() {
	if err := p.NC.Drain(); err != nil {
		p.Log.Warn("drain nats connection", "err", err)
	}
	p.Log.Info("stopped")
}

// EnvConcurrency is how many events a service binary handles at once. It
// is a process's setting: kg serve, one process of seven services, does not
// read it (its extractor reads KG_EXTRACT_CONCURRENCY).
const EnvConcurrency = "KG_CONCURRENCY"

// AddChecks adds the stores' health checks to the readiness probe.
func (p *Process) AddChecks(checks []backends.Check) {
	for _, c := range checks {
		p.Ops.AddCheck(c.Name, c.Check)
	}
}

// Version is kgraph's version, reported by `kg version` and GET /api/v1/info.
const Version = "0.2.0"
