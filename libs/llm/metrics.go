package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric kinds: the kind label of every LLM metric.
const (
	MetricsKindChat  = "chat"
	MetricsKindEmbed = "embed"
)

// Outcomes of a call (the outcome label of kgraph_llm_requests_total).
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeCanceled = "canceled"
)

// Reasons a call failed or an attempt was retried (the reason label).
const (
	ReasonRateLimited = "rate_limited"
	ReasonTimeout     = "timeout"
	ReasonServer      = "server"
	ReasonClient      = "client"
	ReasonOther       = "other"
)

// Metrics are the Prometheus metrics of LLM calls. One Metrics serves any
// number of providers (Config.Metrics, EmbedConfig.Metrics); series are
// labelled with the kind ("chat" or "embed") and the configured model. A nil
// *Metrics records nothing, so callers need no nil checks.
type Metrics struct {
	requests *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	errors   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	cache    *prometheus.CounterVec
}

// NewMetrics registers the LLM metrics on reg. Registering twice on one
// registry is fine: the second Metrics shares the first one's collectors.
// It panics when reg holds different metrics under the same names, as
// prometheus.MustRegister does: that is a programming error.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_llm_requests_total",
			Help: "LLM calls (a chat completion or an embedding batch, retries included) by outcome: ok, error, or canceled by the caller.",
		}, []string{"kind", "model", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_llm_tokens_total",
			Help: "Tokens of successful LLM calls as the provider reported them (estimated when it reported none).",
		}, []string{"kind", "model", "direction"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_llm_errors_total",
			Help: "LLM calls that failed once retries were exhausted or not allowed, by the reason of the last attempt.",
		}, []string{"kind", "model", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_llm_retries_total",
			Help: "LLM attempts that failed and were retried, by reason.",
		}, []string{"kind", "model", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kgraph_llm_request_duration_seconds",
			Help: "Time an LLM call took, including waits for rate budgets and retries (calls canceled by the caller excluded).",
			// From an embedding batch on a local server (tens of
			// milliseconds) to a long completion behind retries (minutes).
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"kind", "model"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_llm_cache_requests_total",
			Help: "Lookups of the LLM response cache: result hit (answered without a call) or miss.",
		}, []string{"kind", "model", "result"}),
	}
	m.requests = register(reg, m.requests)
	m.tokens = register(reg, m.tokens)
	m.errors = register(reg, m.errors)
	m.retries = register(reg, m.retries)
	m.duration = register(reg, m.duration)
	m.cache = register(reg, m.cache)
	return m
}

// register registers c, or returns the collector already registered in
// its place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("register llm metrics: %v", err))
}

// CacheHit counts a response served from a cache instead of a call.
func (m *Metrics) CacheHit(kind, model string) {
	if m != nil {
		m.cache.WithLabelValues(kind, model, "hit").Inc()
	}
}

// CacheMiss counts a cache lookup that found nothing, so a call follows.
func (m *Metrics) CacheMiss(kind, model string) {
	if m != nil {
		m.cache.WithLabelValues(kind, model, "miss").Inc()
	}
}

// CacheHit counts an answer the caller served from its response cache
// instead of calling c; it is CacheHit of Config.Metrics for c's model.
func (c *Chat) CacheHit() { c.metrics.cacheLookup(true) }

// CacheMiss counts a lookup of the caller's response cache that found
// nothing for c, so a call follows.
func (c *Chat) CacheMiss() { c.metrics.cacheLookup(false) }

// callMetrics are Metrics bound to one provider's kind and model. A nil
// *callMetrics records nothing.
type callMetrics struct {
	requests     map[string]prometheus.Counter // by outcome
	prompt       prometheus.Counter
	complete     prometheus.Counter
	errors       *prometheus.CounterVec
	retries      *prometheus.CounterVec
	duration     prometheus.Observer
	hits, misses prometheus.Counter
}

func (m *Metrics) bind(kind, model string) *callMetrics {
	if m == nil {
		return nil
	}
	c := &callMetrics{
		requests: map[string]prometheus.Counter{},
		prompt:   m.tokens.WithLabelValues(kind, model, "prompt"),
		errors:   m.errors.MustCurryWith(prometheus.Labels{"kind": kind, "model": model}),
		retries:  m.retries.MustCurryWith(prometheus.Labels{"kind": kind, "model": model}),
		duration: m.duration.WithLabelValues(kind, model),
	}
	if kind == MetricsKindChat {
		c.complete = m.tokens.WithLabelValues(kind, model, "completion")
		c.hits = m.cache.WithLabelValues(kind, model, "hit")
		c.misses = m.cache.WithLabelValues(kind, model, "miss")
	}
	// Series exist from the start at zero, so that rates and ratios over
	// them are defined before the first failure.
	for _, o := range []string{OutcomeOK, OutcomeError, OutcomeCanceled} {
		c.requests[o] = m.requests.WithLabelValues(kind, model, o)
	}
	for _, r := range []string{ReasonRateLimited, ReasonTimeout, ReasonServer, ReasonClient, ReasonOther} {
		c.errors.WithLabelValues(r)
		c.retries.WithLabelValues(r)
	}
	return c
}

// call records a finished call that started at start.
func (c *callMetrics) call(ctx context.Context, start, end time.Time, err error) {
	if c == nil {
		return
	}
	switch {
	case err == nil:
		c.requests[OutcomeOK].Inc()
	case isCancellation(ctx, err):
		c.requests[OutcomeCanceled].Inc()
		return
	default:
		c.requests[OutcomeError].Inc()
		c.errors.WithLabelValues(failureReason(err)).Inc()
	}
	c.duration.Observe(end.Sub(start).Seconds())
}

// usage records the tokens of a successful call.
func (c *callMetrics) usage(u Usage) {
	if c == nil {
		return
	}
	c.prompt.Add(float64(u.PromptTokens))
	if c.complete != nil {
		c.complete.Add(float64(u.CompletionTokens))
	}
}

func (c *callMetrics) cacheLookup(hit bool) {
	switch {
	case c == nil:
	case hit:
		c.hits.Inc()
	default:
		c.misses.Inc()
	}
}

// retry records an attempt that failed and is retried.
func (c *callMetrics) retry(err *APIError) {
	if c != nil {
		c.retries.WithLabelValues(failureReason(err)).Inc()
	}
}

// failureReason classifies a failed call or attempt.
func failureReason(err error) string {
	apiErr, ok := errors.AsType[*APIError](err)
	switch {
	case !ok:
		return ReasonOther
	case apiErr.Status == http.StatusTooManyRequests:
		return ReasonRateLimited
	case apiErr.Status == http.StatusRequestTimeout || errors.Is(apiErr, ErrTimeout):
		return ReasonTimeout
	case apiErr.Status >= 500:
		return ReasonServer
	case apiErr.Status >= 400:
		return ReasonClient
	}
	return ReasonOther
}
