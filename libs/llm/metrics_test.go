package llm_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

// series gathers reg into "name{label=value,...}" → value, where a
// histogram contributes name_count and name_sum.
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+key] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// nonZero keeps the series of s with a value, so tests can compare what
// happened without listing every zero-initialised series.
func nonZero(s map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func withMetrics(m *llm.Metrics) func(*llm.Config) {
	return func(cfg *llm.Config) { cfg.Metrics = m }
}

func TestMetricsCountASuccessfulCompletion(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	c := newChat(t, f, withMetrics(llm.NewMetrics(reg)), llm.WithClock(newFakeClock()))

	_, err := c.Complete(t.Context(), userRequest("extract", "hello"))
	require.NoError(t, err)

	got := series(t, reg)
	require.Equal(t, map[string]float64{
		"kgraph_llm_requests_total{kind=chat,model=test-model,outcome=ok}":         1,
		"kgraph_llm_tokens_total{direction=prompt,kind=chat,model=test-model}":     11,
		"kgraph_llm_tokens_total{direction=completion,kind=chat,model=test-model}": 7,
		"kgraph_llm_request_duration_seconds_count{kind=chat,model=test-model}":    1,
	}, nonZero(got))
	// Failure series exist at zero before any failure.
	require.Contains(t, got, "kgraph_llm_requests_total{kind=chat,model=test-model,outcome=error}")
	require.Contains(t, got, "kgraph_llm_errors_total{kind=chat,model=test-model,reason=rate_limited}")
	require.Contains(t, got, "kgraph_llm_retries_total{kind=chat,model=test-model,reason=server}")
}

func TestMetricsCountRetriesAndErrorsByReason(t *testing.T) {
	tooMany := reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "1"},
		body: `{"error":{"message":"Rate limit reached"}}`}
	boom := reply{status: http.StatusInternalServerError, body: `{"error":{"message":"boom"}}`}
	bad := reply{status: http.StatusBadRequest, body: `{"error":{"message":"bad request"}}`}
	tests := []struct {
		name    string
		script  []reply
		retries int // Config.MaxRetries
		wantErr bool
		want    map[string]float64
	}{
		{
			name: "rate limited then ok", script: []reply{tooMany, tooMany}, retries: 3,
			want: map[string]float64{
				"kgraph_llm_requests_total{kind=chat,model=test-model,outcome=ok}":         1,
				"kgraph_llm_retries_total{kind=chat,model=test-model,reason=rate_limited}": 2,
				"kgraph_llm_tokens_total{direction=prompt,kind=chat,model=test-model}":     11,
				"kgraph_llm_tokens_total{direction=completion,kind=chat,model=test-model}": 7,
				"kgraph_llm_request_duration_seconds_count{kind=chat,model=test-model}":    1,
				"kgraph_llm_request_duration_seconds_sum{kind=chat,model=test-model}":      2, // two Retry-After waits on the fake clock
			},
		},
		{
			name: "server errors until retries run out", script: []reply{boom, boom, boom}, retries: 2, wantErr: true,
			want: map[string]float64{
				"kgraph_llm_requests_total{kind=chat,model=test-model,outcome=error}": 1,
				"kgraph_llm_errors_total{kind=chat,model=test-model,reason=server}":   1,
				"kgraph_llm_retries_total{kind=chat,model=test-model,reason=server}":  2,
			},
		},
		{
			name: "client error is not retried", script: []reply{bad}, retries: 3, wantErr: true,
			want: map[string]float64{
				"kgraph_llm_requests_total{kind=chat,model=test-model,outcome=error}": 1,
				"kgraph_llm_errors_total{kind=chat,model=test-model,reason=client}":   1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			f := newFakeAPI(t)
			f.set(func(f *fakeAPI) { f.chatScript = tt.script })
			c := newChat(t, f, func(cfg *llm.Config) { cfg.Metrics, cfg.MaxRetries = llm.NewMetrics(reg), tt.retries },
				llm.WithClock(newFakeClock()))

			_, err := c.Complete(t.Context(), userRequest("", "x"))
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			got := nonZero(series(t, reg))
			// Backoff waits are jittered; only their presence is checked.
			if tt.wantErr {
				require.Equal(t, 1.0, got["kgraph_llm_request_duration_seconds_count{kind=chat,model=test-model}"])
				delete(got, "kgraph_llm_request_duration_seconds_count{kind=chat,model=test-model}")
				delete(got, "kgraph_llm_request_duration_seconds_sum{kind=chat,model=test-model}")
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMetricsCountTimeouts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.chatScript = []reply{{delay: 10 * time.Second}, {delay: 10 * time.Second}} })
	c := newChat(t, f, func(cfg *llm.Config) {
		cfg.Metrics, cfg.MaxRetries, cfg.Timeout = llm.NewMetrics(reg), 1, 50*time.Millisecond
	}, llm.WithClock(newFakeClock()))

	_, err := c.Complete(t.Context(), userRequest("", "x"))
	require.ErrorIs(t, err, llm.ErrTimeout)
	got := series(t, reg)
	require.Equal(t, 1.0, got["kgraph_llm_errors_total{kind=chat,model=test-model,reason=timeout}"])
	require.Equal(t, 1.0, got["kgraph_llm_retries_total{kind=chat,model=test-model,reason=timeout}"])
}

func TestMetricsCountCancellationApart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	c := newChat(t, f, withMetrics(llm.NewMetrics(reg)), llm.WithClock(newFakeClock()))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := c.Complete(ctx, userRequest("", "x"))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, map[string]float64{
		"kgraph_llm_requests_total{kind=chat,model=test-model,outcome=canceled}": 1,
	}, nonZero(series(t, reg)), "a caller's cancellation is neither an error nor a latency sample")
}

func TestMetricsCountStreams(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.pieces = []string{"a", "b"} })
	c := newChat(t, f, withMetrics(llm.NewMetrics(reg)), llm.WithClock(newFakeClock()))

	_, err := c.Stream(t.Context(), userRequest("answer", "x"), func(string) error { return nil })
	require.NoError(t, err)
	got := series(t, reg)
	require.Equal(t, 1.0, got["kgraph_llm_requests_total{kind=chat,model=test-model,outcome=ok}"])
	require.Equal(t, 7.0, got["kgraph_llm_tokens_total{direction=completion,kind=chat,model=test-model}"])
}

func TestMetricsCountEmbeddingBatches(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	e := newEmbedder(t, f, func(cfg *llm.EmbedConfig) { cfg.Metrics, cfg.BatchSize = llm.NewMetrics(reg), 2 },
		llm.WithClock(newFakeClock()))

	_, err := e.Embed(t.Context(), texts(3)) // batches [1 2] and [3]: 3 and 3 tokens at the fake's byte count
	require.NoError(t, err)
	got := series(t, reg)
	require.Equal(t, map[string]float64{
		"kgraph_llm_requests_total{kind=embed,model=embed-model,outcome=ok}":      2,
		"kgraph_llm_tokens_total{direction=prompt,kind=embed,model=embed-model}":  6,
		"kgraph_llm_request_duration_seconds_count{kind=embed,model=embed-model}": 2,
	}, nonZero(got))
	require.NotContains(t, got, "kgraph_llm_tokens_total{direction=completion,kind=embed,model=embed-model}",
		"embeddings have no completion tokens")
}

func TestMetricsAreSharedAcrossProvidersAndRegistrations(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	first := llm.NewMetrics(reg)
	second := llm.NewMetrics(reg) // a second service in one process, same registry
	a := newChat(t, f, withMetrics(first), llm.WithClock(newFakeClock()))
	b := newChat(t, f, func(cfg *llm.Config) { cfg.Metrics, cfg.Model = second, "other-model" }, llm.WithClock(newFakeClock()))

	for _, c := range []*llm.Chat{a, a, b} {
		_, err := c.Complete(t.Context(), userRequest("", "x"))
		require.NoError(t, err)
	}
	got := series(t, reg)
	require.Equal(t, 2.0, got["kgraph_llm_requests_total{kind=chat,model=test-model,outcome=ok}"])
	require.Equal(t, 1.0, got["kgraph_llm_requests_total{kind=chat,model=other-model,outcome=ok}"])
}

func TestMetricsCountCacheLookups(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := llm.NewMetrics(reg)
	m.CacheHit(llm.MetricsKindChat, "gpt")
	m.CacheHit(llm.MetricsKindChat, "gpt")
	m.CacheMiss(llm.MetricsKindChat, "gpt")

	got := series(t, reg)
	require.Equal(t, 2.0, got["kgraph_llm_cache_requests_total{kind=chat,model=gpt,result=hit}"])
	require.Equal(t, 1.0, got["kgraph_llm_cache_requests_total{kind=chat,model=gpt,result=miss}"])

	var off *llm.Metrics
	require.NotPanics(t, func() { off.CacheHit(llm.MetricsKindChat, "gpt"); off.CacheMiss(llm.MetricsKindChat, "gpt") })
}

func TestChatCountsItsCallersCacheLookups(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	c := newChat(t, f, withMetrics(llm.NewMetrics(reg)))
	c.CacheHit()
	c.CacheMiss()
	c.CacheMiss()

	got := series(t, reg)
	require.Equal(t, 1.0, got["kgraph_llm_cache_requests_total{kind=chat,model=test-model,result=hit}"])
	require.Equal(t, 2.0, got["kgraph_llm_cache_requests_total{kind=chat,model=test-model,result=miss}"])

	off := newChat(t, f, nil)
	require.NotPanics(t, func() { off.CacheHit(); off.CacheMiss() }, "a chat without metrics records nothing")
}

func TestMetricsLintClean(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFakeAPI(t)
	c := newChat(t, f, withMetrics(llm.NewMetrics(reg)), llm.WithClock(newFakeClock()))
	_, err := c.Complete(t.Context(), userRequest("", "x"))
	require.NoError(t, err)

	families, err := reg.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
}
