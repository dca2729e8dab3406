package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/jobstate"
)

// Defaults of JobsConfig.
const (
	DefaultJobsCacheFor    = 10 * time.Second
	DefaultJobsTimeout     = 5 * time.Second
	DefaultJobsConcurrency = 8
)

// JobStore reads job records (the jobs bucket; a kv.Store serves).
type JobStore interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// JobsConfig tunes JobsByStatus; zero fields take the defaults.
type JobsConfig struct {
	// CacheFor is how long one count serves scrapes (default 10 s).
	CacheFor time.Duration
	// Timeout bounds one count (default 5 s). Counting reads every job
	// record, so a store with very many jobs needs more time, or a longer
	// CacheFor to keep the load down.
	Timeout time.Duration
	// Concurrency is the number of records read at once (default 8).
	Concurrency int
	// Logger receives failed counts; nil discards them.
	Logger *slog.Logger
}

// JobsByStatus is a Prometheus collector of the number of jobs by status and
// kind, counted from the job records.
type JobsByStatus struct {
	store       JobStore
	records     *jobstate.Repository
	concurrency int
	logger      *slog.Logger
	reading     *cachedReading[jobsReading]

	jobs, up *prometheus.Desc
}

type jobClass struct{ status, kind string }

type jobsReading struct {
	counts map[jobClass]int
	ok     bool
}

// NewJobsByStatus returns the collector over store.
func NewJobsByStatus(store JobStore, cfg JobsConfig) *JobsByStatus {
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = DefaultJobsCacheFor
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultJobsTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultJobsConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &JobsByStatus{
		store:       store,
		records:     jobstate.NewRepository(store),
		concurrency: cfg.Concurrency,
		logger:      cfg.Logger,
		jobs: prometheus.NewDesc("kgraph_jobs",
			"Jobs by status and kind (ingest or delete), counted from the job records.", []string{"status", "kind"}, nil),
		up: prometheus.NewDesc("kgraph_jobs_up",
			"1 when the last count of the job records succeeded; 0 when it failed, and kgraph_jobs is then left out.", nil, nil),
	}
	c.reading = &cachedReading[jobsReading]{ttl: cfg.CacheFor, timeout: cfg.Timeout, now: time.Now, read: c.read}
	return c
}

// Describe implements prometheus.Collector.
func (c *JobsByStatus) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.up
}

// Collect implements prometheus.Collector. Every known status and kind is
// reported, zeros included, so that a status nobody is in still has a
// series to alert on.
func (c *JobsByStatus) Collect(ch chan<- prometheus.Metric) {
	r := c.reading.get()
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolGauge(r.ok))
	if !r.ok {
		return
	}
	classes := make([]jobClass, 0, len(r.counts))
	for _, kind := range []string{jobstate.KindIngest, jobstate.KindDelete} {
		for _, status := range jobstate.Statuses() {
			classes = append(classes, jobClass{string(status), kind})
		}
	}
	for class := range r.counts {
		if !slices.Contains(classes, class) {
			classes = append(classes, class) // a status or kind newer than this build
		}
	}
	for _, class := range classes {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(r.counts[class]), class.status, class.kind)
	}
}

func (c *JobsByStatus) read(ctx context.Context) jobsReading {
	counts, err := c.count(ctx)
	if err != nil {
		c.logger.WarnContext(ctx, "count jobs for metrics", "err", err)
		return jobsReading{}
	}
	return jobsReading{counts: counts, ok: true}
}

// count reads every job record. A record deleted since the listing is
// skipped, and so is one that does not decode (the projection's problem, not
// a reason to lose the whole count).
func (c *JobsByStatus) count(ctx context.Context) (map[jobClass]int, error) {
	keys, err := c.store.Keys(ctx, jobstate.JobKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("list job records: %w", err)
	}
	classes := make([]jobClass, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for i, key := range keys {
		id, ok := jobstate.ParseJobKey(key)
		if !ok {
			continue
		}
		g.Go(func() error {
			status, kind, err := c.records.JobStatus(gctx, id)
			switch {
			case errors.Is(err, jobstate.ErrNotFound), errors.Is(err, jobstate.ErrCorrupt):
				return nil
			case err != nil:
				return err
			case status != "":
				classes[i] = jobClass{string(status), kind}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	counts := map[jobClass]int{}
	for _, class := range classes {
		if class.status != "" {
			counts[class]++
		}
	}
	return counts, nil
}
