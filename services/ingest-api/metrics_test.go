package ingestapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
)

const metricsReaderSecret = "metrics-reader-secret"

// metricsRecords is a map of job records.
type metricsRecords map[string]string

func (r metricsRecords) Get(_ context.Context, key string) ([]byte, uint64, error) {
	v, ok := r[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	return []byte(v), 1, nil
}

func (r metricsRecords) Keys(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	for k := range r {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (r metricsRecords) KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	keys, _ := r.Keys(ctx, prefix)
	slices.Sort(keys)
	keys = slices.DeleteFunc(keys, func(k string) bool { return k <= after })
	return keys[:min(limit, len(keys))], nil
}

// newMetricsServer is an edge with one read-only key whose metrics route is
// registered (by New once it calls metricsRoutes, else here).
func newMetricsServer(t *testing.T, reg *prometheus.Registry) *Server {
	t.Helper()
	cfg := Config{Auth: AuthConfig{Keys: []APIKey{{ID: "reader", SHA256: HashAPIKey(metricsReaderSecret),
		Namespaces: []string{"default"}, Role: RoleRead}}}}
	require.NoError(t, cfg.Validate())
	s := New(cfg, Deps{Jobs: metricsRecords{}, Claims: metricsRecords{}, Metrics: reg})
	if !s.mux.Match(chi.NewRouteContext(), http.MethodGet, metricsPath) {
		s.metricsRoutes()
	}
	return s
}

func scrape(t *testing.T, s *Server, secret string) *http.Response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, metricsPath, nil)
	if secret != "" {
		req.Header.Set("X-API-Key", secret)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func responseText(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func requireMetricsProblem(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(responseText(t, resp)), &p))
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Detail)
}

func TestMetricsEndpointServesPrometheusText(t *testing.T) {
	s := newMetricsServer(t, prometheus.NewRegistry())

	first := scrape(t, s, metricsReaderSecret)
	require.Equal(t, http.StatusOK, first.StatusCode)
	require.True(t, strings.HasPrefix(first.Header.Get("Content-Type"), "text/plain"), first.Header.Get("Content-Type"))
	require.Contains(t, responseText(t, first), `kgraph_query_requests_total{cached="true",mode="local"} 0`)

	// A request is counted once answered: the second scrape shows the first.
	text := responseText(t, scrape(t, s, metricsReaderSecret))
	require.Contains(t, text, `kgraph_http_requests_total{code="200",method="GET",route="/api/v1/metrics"} 1`)
	require.Contains(t, text, `kgraph_query_requests_total{cached="false",mode="naive"} 0`)
}

func TestMetricsEndpointNeedsAKeyWithARole(t *testing.T) {
	s := newMetricsServer(t, prometheus.NewRegistry())
	requireMetricsProblem(t, scrape(t, s, ""), http.StatusUnauthorized)
	requireMetricsProblem(t, scrape(t, s, "not-a-key"), http.StatusUnauthorized)

	// The handler checks the role itself too, whatever the middleware let
	// through.
	served := false
	h := s.serveMetrics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		status int
	}{
		{"no principal", t.Context(), http.StatusUnauthorized},
		{"no role", withPrincipal(t.Context(), Principal{KeyID: "k"}), http.StatusForbidden},
	} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequestWithContext(tc.ctx, http.MethodGet, metricsPath, nil))
		requireMetricsProblem(t, rec.Result(), tc.status)
	}
	require.False(t, served)

	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequestWithContext(withPrincipal(t.Context(), Principal{KeyID: "k", Role: RoleRead}), http.MethodGet, metricsPath, nil))
	require.True(t, served)
}

func TestMetricsCountQueriesByModeAndCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newMetricsServer(t, reg)
	s.observeQuery("local", true)
	s.observeQuery("local", true)
	s.observeQuery("local", false)
	s.observeQuery("global", false)
	s.observeQuery("made-up", true)

	text := responseText(t, scrape(t, s, metricsReaderSecret))
	for _, line := range []string{
		`kgraph_query_requests_total{cached="true",mode="local"} 2`,
		`kgraph_query_requests_total{cached="false",mode="local"} 1`,
		`kgraph_query_requests_total{cached="false",mode="global"} 1`,
		`kgraph_query_requests_total{cached="true",mode="other"} 1`,
		`kgraph_query_requests_total{cached="true",mode="naive"} 0`,
	} {
		require.Contains(t, text, line+"\n")
	}
	require.NotContains(t, text, "made-up")
}

// brokenCollector fails every collection.
type brokenCollector struct{ desc *prometheus.Desc }

func (c brokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c brokenCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("backend down"))
}

func TestMetricsEndpointSurvivesAFailingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(brokenCollector{prometheus.NewDesc("kgraph_broken", "Always fails.", nil, nil)}))
	s := newMetricsServer(t, reg)

	resp := scrape(t, s, metricsReaderSecret)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, responseText(t, resp), "kgraph_query_requests_total")
}

func TestMetricsIncludePipelineState(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	nc, err := srv.Connect("metrics-test")
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	set := bus.DefaultSettings()
	set.Storage = jetstream.MemoryStorage
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, bus.EnsureTopology(ctx, js, set))
	_, err = js.Publish(ctx, "kgraph.dlq.dedup", []byte("dead"))
	require.NoError(t, err)

	jobs := metricsRecords{
		jobstate.JobKey("a"): `{"job_id":"a","status":"processing","kind":"ingest"}`,
		jobstate.JobKey("b"): `{"job_id":"b","status":"processing"}`,
		jobstate.JobKey("c"): `{"job_id":"c","status":"completed","kind":"delete"}`,
	}
	reg := prometheus.NewRegistry()
	require.NoError(t, RegisterPipelineMetrics(reg, js, jobs))
	require.NoError(t, RegisterPipelineMetrics(reg, js, jobs), "registering twice keeps the first collectors")
	s := newMetricsServer(t, reg)

	text := responseText(t, scrape(t, s, metricsReaderSecret))
	for _, line := range []string{
		`kgraph_consumer_pending_messages{consumer="dedup"} 0`,
		`kgraph_consumer_ack_pending_messages{consumer="projection"} 0`,
		`kgraph_consumer_lag_up 1`,
		`kgraph_deadletter_messages 1`,
		`kgraph_jobs{kind="ingest",status="processing"} 2`,
		`kgraph_jobs{kind="delete",status="completed"} 1`,
		`kgraph_jobs{kind="ingest",status="awaiting_approval"} 0`,
		`kgraph_jobs_up 1`,
	} {
		require.Contains(t, text, line+"\n")
	}
}
