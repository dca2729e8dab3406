package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Ops is a service's operations endpoint: /health/live, /health/ready and
// /metrics on their own address (KG_METRICS_ADDR), apart from any API.
type Ops struct {
	Registry *prometheus.Registry
	ready    func(context.Context) error
	checks   []namedCheck
	stopping atomic.Bool
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// AddCheck makes readiness also depend on a backend's check: a worker whose
// store is unreachable is not ready. Call it before Run.
func (o *Ops) AddCheck(name string, check func(context.Context) error) {
	o.checks = append(o.checks, namedCheck{name, check})
}

// NewOps returns an ops endpoint whose readiness is ready's verdict.
func NewOps(ready func(context.Context) error) *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Ops{Registry: reg, ready: ready}
}

// Handler serves the three endpoints.
func (o *Ops) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		if o.stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := o.ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, c := range o.checks {
			if err := c.check(ctx); err != nil {
				http.Error(w, c.name+": "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Run serves the ops endpoint on addr (empty: not at all) while run runs.
// When ctx ends, readiness turns off first, then run drains, then the
// endpoint stops, so an orchestrator stops routing before work stops.
func (o *Ops) Run(ctx context.Context, addr string, run func(context.Context) error) error {
	if addr == "" {
		return run(ctx)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: o.Handler(), ReadHeaderTimeout: 5 * time.Second}
	g := new(errgroup.Group)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ops server: %w", err)
		}
		return nil
	})
	// The service sees its cancellation only after readiness is off.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		o.stopping.Store(true)
		cancelRun()
	})
	runErr := run(runCtx)
	stop()
	cancelRun()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return errors.Join(runErr, g.Wait())
}
