package llm_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

func newEmbedder(t *testing.T, f *fakeAPI, change func(*llm.EmbedConfig), opts ...llm.Option) *llm.Embedder {
	t.Helper()
	cfg := llm.EmbedConfig{BaseURL: f.baseURL(), Model: "embed-model", MaxRetries: 2, Timeout: 5 * time.Second}
	if change != nil {
		change(&cfg)
	}
	e, err := llm.NewEmbedder(cfg, opts...)
	require.NoError(t, err)
	return e
}

// texts returns n texts whose lengths are 1..n, so the fake's vectors,
// which start with the text's length, say which text they belong to.
func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("x", i+1)
	}
	return out
}

func TestEmbedBatchesAndKeepsOrder(t *testing.T) {
	f := newFakeAPI(t)
	e := newEmbedder(t, f, func(cfg *llm.EmbedConfig) {
		cfg.BatchSize = 64
		cfg.Prices = llm.PriceTable{"embed-model": {PromptPerMillion: 0.02}}
	})

	in := texts(150)
	vecs, err := e.Embed(t.Context(), in)
	require.NoError(t, err)
	require.Len(t, vecs, 150)
	for i, v := range vecs {
		require.Equal(t, []float32{float32(i + 1), 0, 0, 0.5}, v, "vector %d", i)
	}
	require.Equal(t, 4, e.Dim(), "learned from the reply")

	reqs := f.embeds()
	require.Len(t, reqs, 3)
	var sizes []int
	var sent []string
	for _, r := range reqs {
		require.Equal(t, "embed-model", r.Model)
		require.Nil(t, r.Dimensions, "no dimensions parameter unless configured")
		sizes = append(sizes, len(r.Input))
		sent = append(sent, r.Input...)
	}
	slices.Sort(sizes)
	require.Equal(t, []int{22, 64, 64}, sizes)
	slices.SortFunc(sent, func(a, b string) int { return len(a) - len(b) })
	require.Equal(t, in, sent, "every text sent once")

	s := e.Stats()
	require.EqualValues(t, 3, s.Calls)
	tokens := int64(150 * 151 / 2) // the fake reports one token per byte
	require.Equal(t, tokens, s.PromptTokens)
	require.Equal(t, tokens, s.Stages["embed"].PromptTokens)
	require.InDelta(t, float64(tokens)*0.02/1e6, s.Cost, 1e-15)
}

func TestEmbedNothing(t *testing.T) {
	f := newFakeAPI(t)
	e := newEmbedder(t, f, nil)
	vecs, err := e.Embed(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, vecs)
	require.Empty(t, f.embeds())
}

func TestEmbedSendsAndChecksTheConfiguredDimension(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.embedDim = 8 })
	e := newEmbedder(t, f, func(cfg *llm.EmbedConfig) { cfg.Dim = 8 })

	vecs, err := e.Embed(t.Context(), texts(3))
	require.NoError(t, err)
	require.Len(t, vecs[2], 8)
	reqs := f.embeds()
	require.NotNil(t, reqs[0].Dimensions)
	require.Equal(t, 8, *reqs[0].Dimensions)

	f.set(func(f *fakeAPI) { f.embedDim = 4 })
	_, err = e.Embed(t.Context(), texts(3))
	require.ErrorContains(t, err, "4 dimensions, want 8")
}

func TestEmbedRejectsADimensionChange(t *testing.T) {
	f := newFakeAPI(t)
	e := newEmbedder(t, f, nil)
	_, err := e.Embed(t.Context(), texts(2))
	require.NoError(t, err)

	f.set(func(f *fakeAPI) { f.embedDim = 6 })
	_, err = e.Embed(t.Context(), texts(2))
	require.ErrorContains(t, err, "6 dimensions, want 4")
}

func TestEmbedRejectsAWrongCountWithoutRetrying(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.embedShortBy = 1 })
	clock := newFakeClock()
	e := newEmbedder(t, f, nil, llm.WithClock(clock))

	vecs, err := e.Embed(t.Context(), texts(5))
	require.Nil(t, vecs)
	require.ErrorContains(t, err, "4 vectors for 5 texts")
	apiErr := requireAPIError(t, err)
	require.False(t, apiErr.Retryable)
	require.Len(t, f.embeds(), 1)
	require.EqualValues(t, 1, e.Stats().Errors)
}

func TestEmbedRetriesRateLimits(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.embedScript = []reply{{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "3"}, body: `{"error":{"message":"slow down"}}`}}
	})
	clock := newFakeClock()
	e := newEmbedder(t, f, nil, llm.WithClock(clock))

	vecs, err := e.Embed(t.Context(), texts(3))
	require.NoError(t, err)
	require.Len(t, vecs, 3)
	require.Equal(t, []time.Duration{3 * time.Second}, clock.slept())
	s := e.Stats()
	require.EqualValues(t, 1, s.RateLimited)
	require.EqualValues(t, 1, s.Retries)
}

func TestEmbedFailsWhenABatchFails(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.embedScript = []reply{{status: http.StatusBadRequest, body: `{"error":{"message":"input too long"}}`}}
	})
	e := newEmbedder(t, f, func(cfg *llm.EmbedConfig) {
		cfg.BatchSize = 2
		cfg.MaxConcurrency = 1
	})

	_, err := e.Embed(t.Context(), texts(6))
	apiErr := requireAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Equal(t, "input too long", apiErr.Message)
}

func TestEmbedCapsConcurrency(t *testing.T) {
	f := newFakeAPI(t)
	e := newEmbedder(t, f, func(cfg *llm.EmbedConfig) {
		cfg.BatchSize = 1
		cfg.MaxConcurrency = 3
	})
	vecs, err := e.Embed(t.Context(), texts(40))
	require.NoError(t, err)
	require.Len(t, vecs, 40)
	require.LessOrEqual(t, f.peakInFlight(), 3)
	require.LessOrEqual(t, e.Stats().MaxInFlight, 3)
}
