package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

func TestParseFlags(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := parseFlags(nil, io.Discard)
		require.NoError(t, err)
		require.Equal(t, "bin/kg", c.KGPath)
		require.Equal(t, 100, c.Connections)
		require.Equal(t, 0, c.MaxRate)
		require.Equal(t, 10*time.Second, c.Duration)
		require.Equal(t, 0.5, c.TargetRatio)
		require.Equal(t, 5*time.Millisecond, c.TargetP95)
		require.Empty(t, c.ServeArgs)
		require.Equal(t, authGenerate, c.Auth)
	})
	t.Run("serve args are split on spaces", func(t *testing.T) {
		c, err := parseFlags([]string{"-serve-args", " --no-auth  --pprof 127.0.0.1:6060 ", "-auth", "none", "-api-key", "k1", "-duration", "3s"}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, []string{"--no-auth", "--pprof", "127.0.0.1:6060"}, c.ServeArgs)
		require.Equal(t, "k1", c.APIKey)
		require.Equal(t, "X-API-Key", c.APIKeyHeader)
		require.Equal(t, 3*time.Second, c.Duration)
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no connections", []string{"-connections", "0"}, "-connections"},
		{"zero duration", []string{"-duration", "0s"}, "-duration"},
		{"negative rate", []string{"-paced-rate", "-1"}, "rates"},
		{"tiny corpus", []string{"-corpus-tokens", "10"}, "-corpus-tokens"},
		{"key without header", []string{"-auth", "none", "-api-key", "k", "-api-key-header", ""}, "-api-key-header"},
		{"key with a generated key", []string{"-api-key", "k"}, "-auth none"},
		{"unknown auth mode", []string{"-auth", "maybe"}, "-auth must be"},
		{"zero key rate", []string{"-key-rate-limit", "0"}, "-key-rate-limit"},
		{"stray argument", []string{"extra"}, "unexpected arguments: extra"},
		{"unknown flag", []string{"-nope"}, "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestGeneratedKey checks the generated KG_API_KEYS value against the
// edge's own parser and validation.
func TestGeneratedKey(t *testing.T) {
	keys, secret, err := generatedKey(-1)
	require.NoError(t, err)
	parsed, err := ingestapi.ParseAPIKeys([]byte(keys))
	require.NoError(t, err)
	auth := ingestapi.AuthConfig{Keys: parsed}
	require.NoError(t, auth.Validate())
	require.Len(t, parsed, 1)
	require.Equal(t, ingestapi.HashAPIKey(secret), parsed[0].SHA256)
	require.Equal(t, ingestapi.RoleAdmin, parsed[0].Role)
	require.Equal(t, []string{ingestapi.AllNamespaces}, parsed[0].Namespaces)
	require.Equal(t, -1, parsed[0].RateLimit)
	_, other, err := generatedKey(-1)
	require.NoError(t, err)
	require.NotEqual(t, secret, other)
}

func TestWithoutAuthEnv(t *testing.T) {
	env := []string{"PATH=/bin", "KG_API_KEYS=[]", "KG_API_KEYS_FILE=/k", "KG_AUTH_DISABLED=true", "KG_API_KEYS_X=1"}
	require.Equal(t, []string{"PATH=/bin", "KG_API_KEYS_X=1"}, withoutAuthEnv(env))
	require.Len(t, env, 5, "the input is not modified")
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 1 * time.Millisecond},
		{0.07, 7 * time.Millisecond}, // 0.07 × 100 is 7.000000000000001 in floating point
		{0.5, 50 * time.Millisecond},
		{0.95, 95 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
	} {
		require.Equal(t, tc.want, percentile(hundred, tc.q), "q=%v", tc.q)
	}
	require.Equal(t, 7, percentile([]int{7}, 0.99))
	require.Equal(t, 2, percentile([]int{1, 2, 3}, 0.5))
	require.Zero(t, percentile([]int(nil), 0.5))
}

func TestLatencies(t *testing.T) {
	lat := []time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := latencies(lat)
	require.Equal(t, latencySummary{P50: 2, P95: 4, P99: 4, Max: 4, Mean: 2.5}, s)
	require.Equal(t, latencySummary{}, latencies(nil))
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tkg\nVmPeak:\t 2000000 kB\nVmHWM:\t  90000 kB\nVmRSS:\t   81920 kB\nThreads:\t12\n"
	n, err := parseVmRSS([]byte(status))
	require.NoError(t, err)
	require.Equal(t, int64(81920)<<10, n)

	_, err = parseVmRSS([]byte("Name:\tkg\n"))
	require.ErrorContains(t, err, "no VmRSS")
	_, err = parseVmRSS([]byte("VmRSS:\t 12 MB\n"))
	require.ErrorContains(t, err, "unit")
}

func TestSummarizeRSS(t *testing.T) {
	r := summarizeRSS([]int64{30 << 20, 10 << 20, 20 << 20})
	require.Equal(t, rssReport{PeakMiB: 30, MedianMiB: 20, Samples: 3}, r)
	require.Equal(t, rssReport{}, summarizeRSS(nil))
}

func TestEvaluate(t *testing.T) {
	phases := []phaseResult{
		{Name: phaseChi, Rate: "max", Connections: 100, Throughput: 10000, Success: 1, Requests: 1, Latency: latencySummary{P95: 12}},
		{Name: phaseChiSized, Rate: "max", Connections: 100, Throughput: 5000, Success: 1, Requests: 1},
		{Name: phaseHealth, Rate: "max", Connections: 100, Throughput: 6000, Success: 1, Requests: 1, Latency: latencySummary{P95: 4.9}},
		{Name: phaseQueryCached, Rate: "max", Connections: 100, Throughput: 4000, Success: 0.5, Requests: 2,
			StatusCodes: map[string]int{"200": 1, "503": 1}, Latency: latencySummary{P95: 5}},
		{Name: phaseChiPaced, Rate: "500/s", Connections: 100, Success: 1, Requests: 1, Latency: latencySummary{P95: 0.3}},
		{Name: phaseHealthPaced, Rate: "500/s", Connections: 100, Success: 1, Requests: 1, Latency: latencySummary{P95: 1}},
	}
	rs, checks := evaluate(phases, 0.5, 5*time.Millisecond)
	require.InDelta(t, 0.6, rs.HealthToChi, 1e-9)
	require.InDelta(t, 0.4, rs.QueryCachedToChi, 1e-9)
	require.InDelta(t, 0.8, rs.QueryCachedToChiSized, 1e-9)
	got := map[string]check{}
	for _, c := range checks {
		got[c.Name] = c
	}
	require.Len(t, got, 7)
	require.True(t, got["query-cached throughput >= 0.50 x chi-sized"].Pass)
	require.True(t, got["health throughput >= 0.50 x chi"].Pass)
	require.False(t, got["query-cached throughput >= 0.50 x chi"].Pass)
	require.Equal(t, "0.40 x (4,000 vs 10,000 req/s at 100 connections)", got["query-cached throughput >= 0.50 x chi"].Detail)
	require.True(t, got["health p95 < 5ms"].Pass)
	require.False(t, got["query-cached p95 < 5ms"].Pass, "5 ms is not under 5 ms")
	require.Equal(t, "p95 1.00ms at 100 connections, rate 500/s (chi p95 0.30ms)", got["health-paced p95 < 5ms"].Detail)
	require.False(t, got["no failed requests"].Pass)
	require.Equal(t, "query-cached 0.5000 succeeded (200:1 503:1)", got["no failed requests"].Detail)
}

func TestWriteText(t *testing.T) {
	phases := []phaseResult{
		{Name: phaseChi, Method: "GET", URL: "http://x/health", Rate: "max", Connections: 100, Throughput: 15549.4, Success: 1, Requests: 155671,
			StatusCodes: map[string]int{"200": 155671}, Latency: latencySummary{P50: 2.81, P95: 14.8, P99: 24.6, Max: 71.4}},
		{Name: phaseHealth, Method: "GET", URL: "http://y/api/v1/health", Rate: "max", Connections: 100, Throughput: 1585, Success: 15000.0 / 15984, Requests: 15984,
			StatusCodes: map[string]int{"200": 15000, "503": 984}, Latency: latencySummary{P50: 50.8, P95: 158, P99: 224, Max: 453},
			RSS: &rssReport{PeakMiB: 81, MedianMiB: 78, Samples: 100}, ServeCPUPerRequestMS: 0.73, ServeCores: 1.16, rssSamples: []int64{81 << 20}},
	}
	rep := report{Date: time.Date(2026, 11, 22, 4, 50, 0, 0, time.UTC), Command: "kgload -kg bin/kg", Note: sharedCoresNote,
		Machine: machineInfo{CPUModel: "AMD EPYC", Cores: 2, GOMAXPROCS: 2, ServeGOMAXPROCS: "2 (default)", GoVersion: "go1.26.8"},
		Phases:  phases, LoadRSS: loadRSS(phases)}
	rep.Ratios, rep.Checks = evaluate(phases, 0.5, 5*time.Millisecond)
	var out bytes.Buffer
	writeText(&out, rep)
	text := out.String()
	for _, want := range []string{
		"command:  kgload -kg bin/kg",
		"date:     2026-11-22T04:50:00Z",
		"share this machine's cores",
		"15,549",
		"200:15000 503:984",
		"0.73ms",
		"81/78 MiB",
		"throughput ratio to chi: health 0.10",
		"kg serve RSS under load: peak 81.0 MiB",
		"MISS  health throughput >= 0.50 x chi: 0.10 x (1,585 vs 15,549 req/s at 100 connections)",
		"MISS  health p95 < 5ms: p95 158ms at 100 connections, rate max (chi p95 14.8ms)",
		"MISS  no failed requests: health 0.9384 succeeded (200:15000 503:984)",
	} {
		require.Contains(t, text, want)
	}
	out.Reset()
	require.NoError(t, writeJSON(&out, rep))
	require.Contains(t, out.String(), `"health_to_chi": 0.10`)
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 999.6: "1,000", 1234567: "1,234,567", 100000: "100,000"} {
		require.Equal(t, want, thousands(in), "%v", in)
	}
}

func TestCommandLine(t *testing.T) {
	require.Equal(t, `kgload -kg bin/kg -serve-args '--pprof 127.0.0.1:6060' -api-key ''`,
		commandLine([]string{"/tmp/go-build/exe/kgload", "-kg", "bin/kg", "-serve-args", "--pprof 127.0.0.1:6060", "-api-key", ""}))
}

// TestRunPhase drives a short attack against a local handler, which checks
// the vegeta wiring: the connection limit, the status codes and the
// counting of cached replies.
func TestRunPhase(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		if r.Header.Get("X-API-Key") != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"cached":true}`))
	}))
	defer srv.Close()
	cfg := config{Connections: 4, Duration: 300 * time.Millisecond, Timeout: 5 * time.Second}
	p := phase{Name: "test", Description: "test handler", CountCached: true,
		Targets: []vegeta.Target{{Method: http.MethodGet, URL: srv.URL, Header: http.Header{"X-API-Key": {"k"}}}}}
	res, err := runPhase(context.Background(), cfg, p)
	require.NoError(t, err)
	require.Positive(t, res.Requests)
	require.Equal(t, 1.0, res.Success)
	require.Equal(t, map[string]int{"200": int(res.Requests)}, res.StatusCodes)
	require.NotNil(t, res.CachedReplies)
	require.Equal(t, int(res.Requests), *res.CachedReplies)
	require.Equal(t, "max", res.Rate)
	require.GreaterOrEqual(t, res.Latency.P50, 2.0)
	require.LessOrEqual(t, peak.Load(), int64(4), "more requests in flight than connections")
	require.Equal(t, int64(4), peak.Load(), "the connections were not all used")
	require.True(t, strings.HasPrefix(res.URL, "http://127.0.0.1"))
}
