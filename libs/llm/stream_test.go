package llm_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

// collect returns an onDelta that appends to *deltas.
func collect(deltas *[]string) func(string) error {
	return func(d string) error {
		*deltas = append(*deltas, d)
		return nil
	}
}

func TestStreamDeliversDeltasInOrderWithUsageFromTheLastChunk(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.pieces = []string{"Alice", " knows", " Bob", "."}
		f.promptTokens, f.completionTokens = 12, 4
	})
	c := newChat(t, f, func(cfg *llm.Config) {
		cfg.Prices = llm.PriceTable{"test-model": {PromptPerMillion: 1, CompletionPerMillion: 2}}
	})

	var deltas []string
	resp, err := c.Stream(t.Context(), userRequest("answer", "who?"), collect(&deltas))
	require.NoError(t, err)
	require.Equal(t, []string{"Alice", " knows", " Bob", "."}, deltas)
	require.Equal(t, llm.ChatResponse{
		Content: "Alice knows Bob.",
		Usage:   llm.Usage{PromptTokens: 12, CompletionTokens: 4},
		Model:   "test-model",
	}, resp)

	got := f.chats()
	require.Len(t, got, 1)
	require.True(t, got[0].Stream)
	require.NotNil(t, got[0].StreamOptions)
	require.True(t, got[0].StreamOptions.IncludeUsage)

	s := c.Stats()
	require.EqualValues(t, 12, s.Stages["answer"].PromptTokens)
	require.EqualValues(t, 4, s.Stages["answer"].CompletionTokens)
	require.InDelta(t, (12*1+4*2)/1e6, s.Cost, 1e-15)
	require.Zero(t, s.EstimatedUsage)
}

func TestStreamEstimatesUsageWhenTheServerSendsNone(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.pieces = []string{"abc", "defgh"}
		f.omitUsage = true
	})
	c := newChat(t, f, nil)

	var deltas []string
	resp, err := c.Stream(t.Context(), userRequest("", "12345678"), collect(&deltas))
	require.NoError(t, err)
	require.Equal(t, "abcdefgh", resp.Content)
	require.Equal(t, llm.Usage{PromptTokens: 4 + 2, CompletionTokens: 2, Estimated: true}, resp.Usage)
	require.EqualValues(t, 1, c.Stats().EstimatedUsage)
}

func TestStreamRetriesFailuresBeforeTheFirstDelta(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.chatScript = []reply{{status: http.StatusServiceUnavailable, body: `{"error":{"message":"loading model"}}`}}
		f.pieces = []string{"one", "two"}
	})
	clock := newFakeClock()
	c := newChat(t, f, nil, llm.WithClock(clock))

	var deltas []string
	resp, err := c.Stream(t.Context(), userRequest("", "x"), collect(&deltas))
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two"}, deltas, "no content is delivered twice")
	require.Equal(t, "onetwo", resp.Content)
	require.Len(t, f.chats(), 2)
	require.EqualValues(t, 1, c.Stats().Retries)
}

func TestStreamDoesNotRetryClientErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.chatScript = []reply{{status: http.StatusBadRequest, body: `{"error":{"message":"context length exceeded"}}`}}
	})
	c := newChat(t, f, nil, llm.WithClock(newFakeClock()))

	_, err := c.Stream(t.Context(), userRequest("", "x"), func(string) error { return nil })
	apiErr := requireAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Equal(t, "context length exceeded", apiErr.Message)
	require.Len(t, f.chats(), 1)
}

func TestStreamCutShortAfterContentFailsWithoutRetry(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.pieces = []string{"partial", " answer"}
		f.truncateStream = true
	})
	clock := newFakeClock()
	c := newChat(t, f, nil, llm.WithClock(clock))

	var deltas []string
	_, err := c.Stream(t.Context(), userRequest("report", "x"), collect(&deltas))
	apiErr := requireAPIError(t, err)
	require.False(t, apiErr.Retryable)
	require.Contains(t, apiErr.Message, "stream")
	require.Equal(t, []string{"partial", " answer"}, deltas)
	require.Len(t, f.chats(), 1, "a retry would deliver the content twice")
	require.EqualValues(t, 1, c.Stats().Stages["report"].Errors)
}

func TestStreamTimingOutAfterContentFailsWithoutRetry(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.pieces = []string{"slow", " model"}
		f.stallStream = 10 * time.Second
	})
	c := newChat(t, f, func(cfg *llm.Config) { cfg.Timeout = 200 * time.Millisecond }, llm.WithClock(newFakeClock()))

	var deltas []string
	_, err := c.Stream(t.Context(), userRequest("", "x"), collect(&deltas))
	require.ErrorIs(t, err, llm.ErrTimeout)
	apiErr := requireAPIError(t, err)
	require.False(t, apiErr.Retryable)
	require.Equal(t, []string{"slow", " model"}, deltas)
	require.Len(t, f.chats(), 1)
	require.EqualValues(t, 1, c.Stats().Timeouts)
}

func TestStreamCutShortBeforeContentIsRetried(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.pieces = []string{}
		f.truncateStream = true
	})
	clock := newFakeClock()
	c := newChat(t, f, func(cfg *llm.Config) { cfg.MaxRetries = 2 }, llm.WithClock(clock))

	_, err := c.Stream(t.Context(), userRequest("", "x"), func(string) error { return nil })
	apiErr := requireAPIError(t, err)
	require.True(t, apiErr.Retryable)
	require.Len(t, f.chats(), 3)
}

func TestStreamStopsWhenTheHandlerFails(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.pieces = []string{"a", "b", "c"} })
	c := newChat(t, f, nil, llm.WithClock(newFakeClock()))
	stop := errors.New("client went away")

	var deltas []string
	_, err := c.Stream(t.Context(), userRequest("answer", "x"), func(d string) error {
		deltas = append(deltas, d)
		if len(deltas) == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	var apiErr *llm.APIError
	require.False(t, errors.As(err, &apiErr), "the handler's error is not the provider's")
	require.Equal(t, []string{"a", "b"}, deltas)
	require.Len(t, f.chats(), 1)
}
