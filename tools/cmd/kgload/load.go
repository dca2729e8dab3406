package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// phase is one measured run against one endpoint.
type phase struct {
	Name        string
	Description string
	Targets     []vegeta.Target
	// Rate is requests/s; 0 sends as fast as the connections allow.
	Rate int
	// ServePID is the process serving the endpoint whose CPU and RSS are
	// sampled (0: the chi baseline, which lives in this process).
	ServePID int
	// PprofAddr, when set, serves the CPU profile taken during the run.
	PprofAddr string
	// CountCached counts the replies that say "cached": true.
	CountCached bool
}

// phaseResult is what one run measured.
type phaseResult struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Method      string         `json:"method"`
	URL         string         `json:"url"`
	Rate        string         `json:"rate"`
	Connections int            `json:"connections"`
	DurationS   float64        `json:"duration_s"`
	Requests    uint64         `json:"requests"`
	Throughput  float64        `json:"throughput_rps"`
	SentRate    float64        `json:"sent_rps"`
	Success     float64        `json:"success_ratio"`
	Latency     latencySummary `json:"latency_ms"`
	StatusCodes map[string]int `json:"status_codes"`
	ReplyBytes  float64        `json:"reply_bytes_mean"`
	Errors      []string       `json:"errors,omitempty"`
	// CachedReplies counts the replies answered from the response cache
	// (query runs only).
	CachedReplies *int `json:"cached_replies,omitempty"`
	// ServeCPUPerRequestMS is kg serve's CPU time per request; ServeCores and
	// GeneratorCores are the CPU each process used over the run, in cores.
	ServeCPUPerRequestMS float64 `json:"serve_cpu_per_request_ms,omitempty"`
	ServeCores           float64 `json:"serve_cores,omitempty"`
	GeneratorCores       float64 `json:"generator_cores"`
	// OtherCores is the CPU the rest of the machine used during the run:
	// work of other processes competes with both sides.
	OtherCores float64    `json:"other_cores"`
	RSS        *rssReport `json:"rss,omitempty"`

	rssSamples []int64
}

// latencySummary holds exact percentiles (nearest rank over every request)
// in milliseconds.
type latencySummary struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// newAttackClient is the HTTP client of one phase: keep-alive on, at most
// conns connections to the target, all of which stay idle between
// requests, so after the warm-up no request opens a connection.
func newAttackClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// runPhase warms the connections up for cfg.Warmup, then measures the
// phase for cfg.Duration.
func runPhase(ctx context.Context, cfg config, p phase) (phaseResult, error) {
	client := newAttackClient(cfg.Connections, cfg.Timeout)
	defer client.CloseIdleConnections()
	if cfg.Warmup > 0 {
		if _, _, err := attack(ctx, cfg, p, client, cfg.Warmup, nil); err != nil {
			return phaseResult{}, fmt.Errorf("%s warm-up: %w", p.Name, err)
		}
	}
	var sampler *rssSampler
	var serveCPU0 time.Duration
	if p.ServePID != 0 {
		sampler = startRSSSampler(p.ServePID, 100*time.Millisecond)
		serveCPU0 = processCPU(p.ServePID)
	}
	profiled := make(chan error, 1)
	if p.PprofAddr != "" && cfg.ProfileDir != "" {
		go func() {
			profiled <- profileCPU(ctx, p.PprofAddr, cfg.Duration, filepath.Join(cfg.ProfileDir, p.Name+".pprof"))
		}()
	} else {
		profiled <- nil
	}
	genCPU0, busy0 := selfCPU(), machineBusy()
	start := time.Now()
	m, lat, err := attack(ctx, cfg, p, client, cfg.Duration, func(r *vegeta.Result) bool { return p.CountCached && cachedReply(r.Body) })
	wall := time.Since(start)
	genCPU, busy := selfCPU()-genCPU0, machineBusy()-busy0
	var serveCPU time.Duration
	var rssSamples []int64
	if sampler != nil {
		serveCPU = processCPU(p.ServePID) - serveCPU0
		rssSamples = sampler.stop()
	}
	if perr := <-profiled; perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return phaseResult{}, fmt.Errorf("%s: %w", p.Name, err)
	}
	res := summarize(p, cfg, m.metrics, lat)
	res.GeneratorCores = genCPU.Seconds() / wall.Seconds()
	if p.CountCached {
		res.CachedReplies = &m.cached
	}
	if sampler != nil {
		res.rssSamples = rssSamples
		r := summarizeRSS(rssSamples)
		res.RSS = &r
		res.ServeCores = serveCPU.Seconds() / wall.Seconds()
		if res.Requests > 0 {
			res.ServeCPUPerRequestMS = float64(serveCPU.Microseconds()) / 1000 / float64(res.Requests)
		}
	}
	res.OtherCores = max(busy-genCPU-serveCPU, 0).Seconds() / wall.Seconds()
	return res, nil
}

type attackMetrics struct {
	metrics vegeta.Metrics
	cached  int
}

// attack runs one vegeta attack and collects its metrics and every latency.
func attack(ctx context.Context, cfg config, p phase, client *http.Client, d time.Duration, isCached func(*vegeta.Result) bool) (attackMetrics, []time.Duration, error) {
	n := uint64(cfg.Connections)
	a := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(n), vegeta.MaxWorkers(n), vegeta.KeepAlive(true))
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			a.Stop()
		case <-stopped:
		}
	}()
	var out attackMetrics
	lat := make([]time.Duration, 0, 1<<16)
	for r := range a.Attack(vegeta.NewStaticTargeter(p.Targets...), vegeta.Rate{Freq: p.Rate, Per: time.Second}, d, p.Name) {
		out.metrics.Add(r)
		lat = append(lat, r.Latency)
		if isCached != nil && isCached(r) {
			out.cached++
		}
	}
	out.metrics.Close()
	if err := ctx.Err(); err != nil {
		return attackMetrics{}, nil, err
	}
	return out, lat, nil
}

func summarize(p phase, cfg config, m vegeta.Metrics, lat []time.Duration) phaseResult {
	rate := "max"
	if p.Rate > 0 {
		rate = fmt.Sprintf("%d/s", p.Rate)
	}
	res := phaseResult{
		Name: p.Name, Description: p.Description, Method: p.Targets[0].Method, URL: p.Targets[0].URL,
		Rate: rate, Connections: cfg.Connections, DurationS: (m.Duration + m.Wait).Seconds(),
		Requests: m.Requests, Throughput: m.Throughput, SentRate: m.Rate, Success: m.Success,
		StatusCodes: m.StatusCodes, ReplyBytes: m.BytesIn.Mean, Latency: latencies(lat),
	}
	const maxErrors = 5
	res.Errors = m.Errors[:min(len(m.Errors), maxErrors)]
	return res
}

// latencies summarises request latencies (they are sorted in place).
func latencies(lat []time.Duration) latencySummary {
	if len(lat) == 0 {
		return latencySummary{}
	}
	slices.Sort(lat)
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	return latencySummary{
		P50: ms(percentile(lat, 0.50)), P95: ms(percentile(lat, 0.95)), P99: ms(percentile(lat, 0.99)),
		Max: ms(lat[len(lat)-1]), Mean: ms(total / time.Duration(len(lat))),
	}
}

// percentile is the nearest-rank q-quantile of sorted values: the smallest
// value that at least q of the values do not exceed.
func percentile[T any](sorted []T, q float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	// The epsilon keeps q·n = 7.000000000000001 (0.07 × 100) at rank 7.
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
