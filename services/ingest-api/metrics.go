package ingestapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	kgmetrics "github.com/kgraph-dev/kgraph/libs/metrics"
)

// metricsPath serves the Prometheus exposition of deps.Metrics.
const metricsPath = "/api/v1/metrics"

// queryModeLabel is the mode label of kgraph_query_requests_total: a known
// mode, or "other", so that a misbehaving query service cannot create
// series at will.
func queryModeLabel(mode string) string {
	switch mode {
	case "local", "global", "naive":
		return mode
	}
	return "other"
}

// metricsRoutes serves GET /api/v1/metrics: Prometheus text on the chi mux
// rather than a huma operation, since it is not JSON. The mux's middleware
// authenticates the key; any role may read metrics.
func (s *Server) metricsRoutes() {
	// The query series exist at zero from the start, so that a cache hit
	// ratio is defined before the first query.
	queries := s.queryRequests()
	for _, mode := range []string{"local", "global", "naive"} {
		queries.WithLabelValues(mode, "true")
		queries.WithLabelValues(mode, "false")
	}
	// A collector that fails (a backend down) loses its own series, not the
	// whole scrape.
	exposition := promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	s.mux.Get(metricsPath, s.serveMetrics(exposition))
}

// serveMetrics checks the key's role, then serves the exposition.
func (s *Server) serveMetrics(exposition http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if se := s.allowAny(r.Context(), RoleRead); se != nil {
			writeProblem(w, se.GetStatus(), se.Error())
			return
		}
		exposition.ServeHTTP(w, r)
	}
}

// queryRequests returns kgraph_query_requests_total, registering it on
// first use; later calls get the registered collector back.
func (s *Server) queryRequests() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kgraph_query_requests_total",
		Help: "Queries answered by the query service, by mode and by whether the answer came from its cache.",
	}, []string{"mode", "cached"})
	err := s.deps.Metrics.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	if err != nil {
		// Another metric of this name with other labels: a programming
		// error, caught by the tests.
		panic(fmt.Sprintf("register kgraph_query_requests_total: %v", err))
	}
	return c
}

// observeQuery counts an answered query (QueryReply.Mode and .Cached).
func (s *Server) observeQuery(mode string, cached bool) {
	// Registered once in New: an answer from the edge's cache takes tens of
	// microseconds, and a registry lookup per call showed in profiles.
	s.queryCounter.WithLabelValues(queryModeLabel(mode), strconv.FormatBool(cached)).Inc()
}

// RegisterPipelineMetrics adds the pipeline's state to reg (the registry
// Deps.Metrics names): consumer lag and dead letters read from js, and jobs
// by status counted from the job records (the jobs bucket). Both are read
// when scraped, cached for a few seconds. Registering twice on one registry
// keeps the first collectors.
func RegisterPipelineMetrics(reg *prometheus.Registry, js jetstream.JetStream, jobs Records) error {
	return kgmetrics.RegisterPipeline(reg, kgmetrics.FromJetStream(js), jobs, nil)
}
