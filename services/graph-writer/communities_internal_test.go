package graphwriter

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/graph-writer/internal/community"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		maxTokens int
		want      string
	}{
		{"short enough", "  A short summary.  ", 10, "A short summary."},
		{"at a sentence end", "First sentence here. Second sentence that runs on and on.", 8, "First sentence here."},
		{"no sentence end in reach", strings.Repeat("x", 50), 5, strings.Repeat("x", 20)},
		{"never inside a rune", strings.Repeat("é", 20), 5, strings.Repeat("é", 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := clip(tc.text, tc.maxTokens)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, community.EstimateTokens(got), tc.maxTokens)
		})
	}
}

func TestParallel(t *testing.T) {
	var ran, inFlight, most atomic.Int64
	err := parallel(t.Context(), 50, 3, func(context.Context, int) error {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		ran.Add(1)
		inFlight.Add(-1)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(50), ran.Load())
	require.LessOrEqual(t, most.Load(), int64(3))

	boom := errors.New("boom")
	ran.Store(0)
	err = parallel(t.Context(), 1000, 1, func(_ context.Context, i int) error {
		ran.Add(1)
		if i == 2 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Less(t, ran.Load(), int64(1000), "an error stops the calls still to come")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, parallel(ctx, 10, 2, func(context.Context, int) error { return nil }), context.Canceled)
	require.NoError(t, parallel(t.Context(), 0, 2, func(context.Context, int) error { return boom }))
}

func TestLLMFailure(t *testing.T) {
	s := &Service{}
	refused := &llm.APIError{Status: 400, Message: "context too long"}
	require.NoError(t, s.llmFailure(t.Context(), refused), "a refused request falls back")

	down := &llm.APIError{Status: 503, Retryable: true}
	err := s.llmFailure(t.Context(), down)
	require.True(t, bus.IsUnavailable(err), "an outage retries the build")
	require.ErrorIs(t, err, down)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = s.llmFailure(ctx, refused)
	require.ErrorIs(t, err, refused)
	require.False(t, bus.IsUnavailable(err), "a cancelled build just ends")
}
