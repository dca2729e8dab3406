package llm_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

func newChat(t *testing.T, f *fakeAPI, change func(*llm.Config), opts ...llm.Option) *llm.Chat {
	t.Helper()
	cfg := llm.Config{BaseURL: f.baseURL(), APIKey: "test-key", Model: "test-model", MaxRetries: 3, Timeout: 5 * time.Second}
	if change != nil {
		change(&cfg)
	}
	c, err := llm.NewChat(cfg, opts...)
	require.NoError(t, err)
	return c
}

func userRequest(stage, text string) llm.ChatRequest {
	return llm.ChatRequest{Stage: stage, Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

func requireAPIError(t *testing.T, err error) *llm.APIError {
	t.Helper()
	var apiErr *llm.APIError
	require.ErrorAs(t, err, &apiErr)
	return apiErr
}

func TestCompleteSendsTheRequestAndReadsTheReply(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.model = "test-model-2026-01-01" })
	c := newChat(t, f, nil)
	temp := 0.0

	resp, err := c.Complete(t.Context(), llm.ChatRequest{
		Stage: "extract",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "You extract entities."},
			{Role: llm.RoleUser, Content: "Alice met Bob."},
			{Role: llm.RoleAssistant, Content: "{}"},
			{Role: llm.RoleUser, Content: "More."},
		},
		Temperature: &temp,
		MaxTokens:   256,
		JSON:        true,
	})
	require.NoError(t, err)
	require.Equal(t, llm.ChatResponse{
		Content: "echo: More.",
		Usage:   llm.Usage{PromptTokens: 11, CompletionTokens: 7},
		Model:   "test-model-2026-01-01",
	}, resp)

	reqs := f.chats()
	require.Len(t, reqs, 1)
	got := reqs[0]
	require.Equal(t, "test-model", got.Model)
	require.Len(t, got.Messages, 4)
	for i, want := range []string{"system", "user", "assistant", "user"} {
		require.Equal(t, want, got.Messages[i].Role)
	}
	require.Equal(t, "Alice met Bob.", got.Messages[1].Content)
	require.NotNil(t, got.Temperature)
	require.Zero(t, *got.Temperature)
	require.NotNil(t, got.MaxTokens)
	require.Equal(t, 256, *got.MaxTokens)
	require.NotNil(t, got.ResponseFormat)
	require.Equal(t, "json_object", got.ResponseFormat.Type)
	require.False(t, got.Stream)
	require.Equal(t, []string{"Bearer test-key"}, f.authHeaders)
}

func TestCompleteLeavesOptionalParametersOut(t *testing.T) {
	f := newFakeAPI(t)
	c := newChat(t, f, func(cfg *llm.Config) { cfg.APIKey = "" })

	_, err := c.Complete(t.Context(), userRequest("", "hi"))
	require.NoError(t, err)
	got := f.chats()[0]
	require.Nil(t, got.Temperature)
	require.Nil(t, got.MaxTokens)
	require.Nil(t, got.ResponseFormat)
	require.Equal(t, []string{""}, f.authHeaders, "no key, no Authorization header (Ollama, llama.cpp)")
}

func TestCompleteIgnoresOpenAIEnvironmentVariables(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_API_KEY", "key-from-env")
	t.Setenv("OPENAI_ORG_ID", "org-from-env")
	t.Setenv("OPENAI_PROJECT_ID", "project-from-env")
	f := newFakeAPI(t)
	c := newChat(t, f, nil)

	_, err := c.Complete(t.Context(), userRequest("", "hi"))
	require.NoError(t, err)
	require.Equal(t, []string{"Bearer test-key"}, f.authHeaders)
	require.Equal(t, []string{""}, f.orgHeaders)
}

func TestCompleteRejectsBadRequestsBeforeSending(t *testing.T) {
	f := newFakeAPI(t)
	c := newChat(t, f, nil)
	for name, req := range map[string]llm.ChatRequest{
		"no messages":   {Stage: "extract"},
		"unknown role":  {Messages: []llm.Message{{Role: "tool", Content: "x"}}},
		"negative max":  {Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}, MaxTokens: -1},
		"empty role":    {Messages: []llm.Message{{Content: "x"}}},
		"assistant bad": {Messages: []llm.Message{{Role: "Assistant", Content: "x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Complete(t.Context(), req)
			require.Error(t, err)
		})
	}
	require.Empty(t, f.chats())
}

func TestCompleteHonoursRetryAfterOn429(t *testing.T) {
	f := newFakeAPI(t)
	tooMany := reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "1"},
		body: `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`}
	f.set(func(f *fakeAPI) { f.chatScript = []reply{tooMany, tooMany} })
	clock := newFakeClock()
	c := newChat(t, f, nil, llm.WithClock(clock))

	resp, err := c.Complete(t.Context(), userRequest("extract", "hello"))
	require.NoError(t, err)
	require.Equal(t, "echo: hello", resp.Content)
	require.Len(t, f.chats(), 3)
	require.Equal(t, []time.Duration{time.Second, time.Second}, clock.slept())

	s := c.Stats()
	require.EqualValues(t, 1, s.Calls)
	require.EqualValues(t, 3, s.Attempts)
	require.EqualValues(t, 2, s.Retries)
	require.EqualValues(t, 2, s.RateLimited)
	require.Zero(t, s.Errors)
}

func TestCompleteHonoursRetryAfterMsAndDates(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"retry-after-ms": "1500"}, 1500 * time.Millisecond},
		{map[string]string{"Retry-After": "2.5"}, 2500 * time.Millisecond},
		{map[string]string{"Retry-After": clock.Now().Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{map[string]string{"retry-after-ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		f := newFakeAPI(t)
		f.set(func(f *fakeAPI) {
			f.chatScript = []reply{{status: http.StatusServiceUnavailable, header: tt.header, body: `{"error":{"message":"busy"}}`}}
		})
		clock := newFakeClock()
		c := newChat(t, f, nil, llm.WithClock(clock))
		_, err := c.Complete(t.Context(), userRequest("", "x"))
		require.NoError(t, err)
		require.Equal(t, []time.Duration{tt.want}, clock.slept(), "headers %v", tt.header)
	}
}

func TestCompleteGivesUpWhenRetryAfterIsTooLong(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.chatScript = []reply{{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "86400"},
			body: `{"error":{"message":"daily quota exceeded"}}`}}
	})
	clock := newFakeClock()
	c := newChat(t, f, nil, llm.WithClock(clock))

	_, err := c.Complete(t.Context(), userRequest("", "x"))
	apiErr := requireAPIError(t, err)
	require.Equal(t, http.StatusTooManyRequests, apiErr.Status)
	require.True(t, apiErr.Retryable)
	require.Contains(t, apiErr.Message, "daily quota exceeded")
	require.Empty(t, clock.slept())
	require.Len(t, f.chats(), 1)
}

func TestCompleteRetriesServerErrorsWithBackoff(t *testing.T) {
	tests := map[string]reply{
		"500 json":       {status: http.StatusInternalServerError, body: `{"error":{"message":"boom"}}`},
		"502 plain text": {status: http.StatusBadGateway, body: "upstream connect error"},
		"408":            {status: http.StatusRequestTimeout, body: `{"error":{"message":"slow"}}`},
		"409":            {status: http.StatusConflict, body: `{"error":{"message":"conflict"}}`},
	}
	for name, first := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.set(func(f *fakeAPI) { f.chatScript = []reply{first} })
			clock := newFakeClock()
			c := newChat(t, f, nil, llm.WithClock(clock))

			resp, err := c.Complete(t.Context(), userRequest("", "again"))
			require.NoError(t, err)
			require.Equal(t, "echo: again", resp.Content)
			require.Len(t, f.chats(), 2)
			slept := clock.slept()
			require.Len(t, slept, 1)
			// First backoff: 500 ms with the upper half jittered.
			require.GreaterOrEqual(t, slept[0], 250*time.Millisecond)
			require.LessOrEqual(t, slept[0], 500*time.Millisecond)
			require.EqualValues(t, 1, c.Stats().Retries)
		})
	}
}

func TestCompleteBackoffGrowsUntilRetriesRunOut(t *testing.T) {
	f := newFakeAPI(t)
	fail := reply{status: http.StatusInternalServerError, body: `{"error":{"message":"still broken"}}`}
	f.set(func(f *fakeAPI) { f.chatScript = []reply{fail, fail, fail, fail, fail} })
	clock := newFakeClock()
	c := newChat(t, f, func(cfg *llm.Config) { cfg.MaxRetries = 3 }, llm.WithClock(clock))

	_, err := c.Complete(t.Context(), userRequest("glean", "x"))
	apiErr := requireAPIError(t, err)
	require.Equal(t, http.StatusInternalServerError, apiErr.Status)
	require.Equal(t, "still broken", apiErr.Message)
	require.True(t, apiErr.Retryable)
	require.Equal(t, 4, apiErr.Attempts)
	require.Len(t, f.chats(), 4)

	slept := clock.slept()
	require.Len(t, slept, 3)
	for i, base := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		require.GreaterOrEqual(t, slept[i], base/2, "retry %d", i+1)
		require.LessOrEqual(t, slept[i], base, "retry %d", i+1)
	}
	s := c.Stats()
	require.EqualValues(t, 3, s.Retries)
	require.EqualValues(t, 1, s.Errors)
	require.EqualValues(t, 1, s.Stages["glean"].Errors)
}

func TestCompleteDoesNotRetryClientErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusUnprocessableEntity} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newFakeAPI(t)
			f.set(func(f *fakeAPI) {
				f.chatScript = []reply{{status: status, body: `{"error":{"message":"model 'nope' not found","type":"invalid_request_error"}}`}}
			})
			clock := newFakeClock()
			c := newChat(t, f, nil, llm.WithClock(clock))

			_, err := c.Complete(t.Context(), userRequest("extract", "x"))
			apiErr := requireAPIError(t, err)
			require.Equal(t, status, apiErr.Status)
			require.Equal(t, "model 'nope' not found", apiErr.Message)
			require.False(t, apiErr.Retryable)
			require.Equal(t, 1, apiErr.Attempts)
			require.Contains(t, err.Error(), "chat extract")
			require.Len(t, f.chats(), 1)
			require.Empty(t, clock.slept())
			s := c.Stats()
			require.Zero(t, s.Retries)
			require.EqualValues(t, 1, s.Errors)
		})
	}
}

func TestCompleteReportsNonJSONErrorBodies(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.chatScript = []reply{{status: http.StatusForbidden, body: "<html><body>Forbidden by proxy</body></html>"}}
	})
	c := newChat(t, f, nil, llm.WithClock(newFakeClock()))

	_, err := c.Complete(t.Context(), userRequest("", "x"))
	apiErr := requireAPIError(t, err)
	require.Equal(t, http.StatusForbidden, apiErr.Status)
	require.Equal(t, "<html><body>Forbidden by proxy</body></html>", apiErr.Message)
	require.False(t, apiErr.Retryable)
}

func TestCompleteRetriesTimeoutsThenFails(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.hold = 10 * time.Second })
	clock := newFakeClock()
	c := newChat(t, f, func(cfg *llm.Config) {
		cfg.Timeout = 100 * time.Millisecond
		cfg.MaxRetries = 2
	}, llm.WithClock(clock))

	start := time.Now()
	_, err := c.Complete(t.Context(), userRequest("", "slow"))
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, err, llm.ErrTimeout)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "a provider timeout is not the caller's deadline")
	apiErr := requireAPIError(t, err)
	require.Zero(t, apiErr.Status)
	require.True(t, apiErr.Retryable)
	require.Equal(t, 3, apiErr.Attempts)
	require.Len(t, f.chats(), 3)

	s := c.Stats()
	require.EqualValues(t, 3, s.Timeouts)
	require.EqualValues(t, 2, s.Retries)
	require.EqualValues(t, 1, s.Errors)
	require.Zero(t, s.Canceled)
}

func TestCompleteTimeoutThenSuccess(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.chatScript = []reply{{delay: 10 * time.Second}} })
	c := newChat(t, f, func(cfg *llm.Config) { cfg.Timeout = 100 * time.Millisecond }, llm.WithClock(newFakeClock()))

	resp, err := c.Complete(t.Context(), userRequest("", "second time lucky"))
	require.NoError(t, err)
	require.Equal(t, "echo: second time lucky", resp.Content)
	require.EqualValues(t, 1, c.Stats().Timeouts)
}

func TestCompleteRetriesConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	clock := newFakeClock()
	c, err := llm.NewChat(llm.Config{BaseURL: "http://" + addr + "/v1", Model: "m", MaxRetries: 2}, llm.WithClock(clock))
	require.NoError(t, err)

	_, err = c.Complete(t.Context(), userRequest("", "x"))
	apiErr := requireAPIError(t, err)
	require.Zero(t, apiErr.Status)
	require.True(t, apiErr.Retryable)
	require.Equal(t, 3, apiErr.Attempts)
	require.Error(t, apiErr.Err)
	require.Len(t, clock.slept(), 2)
}

func TestCompleteReportsCancellationSeparately(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.hold = 10 * time.Second })
	c := newChat(t, f, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()

	_, err := c.Complete(ctx, userRequest("answer", "x"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, llm.ErrTimeout)
	var apiErr *llm.APIError
	require.False(t, errors.As(err, &apiErr), "cancellation is not a provider error")
	s := c.Stats()
	require.EqualValues(t, 1, s.Canceled)
	require.Zero(t, s.Errors)
	require.Zero(t, s.Retries)
}

func TestCompleteCancelledWhileWaitingToRetry(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.chatScript = []reply{{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "30"}, body: `{"error":{"message":"slow down"}}`}}
	})
	c := newChat(t, f, nil) // real clock: the 30 s wait must end with the context
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err := c.Complete(ctx, userRequest("", "x"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.EqualValues(t, 1, c.Stats().Canceled)
}

func TestCompleteCapsConcurrency(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) { f.hold = 30 * time.Millisecond })
	c := newChat(t, f, func(cfg *llm.Config) { cfg.MaxConcurrency = 4 })

	const calls = 50
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			_, err := c.Complete(t.Context(), userRequest("extract", "x"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, f.chats(), calls)
	require.Equal(t, 4, f.peakInFlight(), "the server sees at most 4 requests at once, and 50 calls do fill 4 slots")
	s := c.Stats()
	require.Equal(t, 4, s.MaxInFlight)
	require.EqualValues(t, calls, s.Calls)
	require.EqualValues(t, calls, s.Stages["extract"].Calls)
}

func TestCompleteKeepsToRequestsPerMinute(t *testing.T) {
	f := newFakeAPI(t)
	c := newChat(t, f, func(cfg *llm.Config) { cfg.RequestsPerMinute = 120 })

	// 2 a second with a one-second burst: two calls at once, then one every
	// 500 ms, so the sixth goes out at 2 s.
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			_, err := c.Complete(t.Context(), userRequest("", "x"))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, 1900*time.Millisecond)
	require.Less(t, elapsed, 6*time.Second)
}

func TestCompleteKeepsToTokensPerMinuteSettlingWithRealUsage(t *testing.T) {
	// 600 TPM is 10 tokens a second, at most 10 in the bucket. Each call is
	// estimated at 10 tokens (24 bytes → 6, plus 4 for the message) and
	// settled with what the server reports.
	tests := []struct {
		name               string
		prompt, completion int
		want               []time.Duration
	}{
		// Reported 20: a 10-token debt after each call, 2 s per later call.
		{"usage above estimate", 10, 10, []time.Duration{2 * time.Second, 2 * time.Second}},
		// Reported as estimated: 1 s per later call.
		{"usage as estimated", 6, 4, []time.Duration{time.Second, time.Second}},
		// Reported 4: 6 tokens back after each call, 400 ms per later call.
		{"usage below estimate", 2, 2, []time.Duration{400 * time.Millisecond, 400 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.set(func(f *fakeAPI) { f.promptTokens, f.completionTokens = tt.prompt, tt.completion })
			clock := newFakeClock()
			c := newChat(t, f, func(cfg *llm.Config) { cfg.TokensPerMinute = 600 }, llm.WithClock(clock))
			for range 3 {
				_, err := c.Complete(t.Context(), userRequest("", "exactly twenty-four byte"))
				require.NoError(t, err)
			}
			slept := clock.slept()
			require.Len(t, slept, len(tt.want))
			for i := range tt.want {
				require.InDelta(t, tt.want[i].Seconds(), slept[i].Seconds(), 0.001, "wait %d", i)
			}
		})
	}
}

func TestCompleteEstimatesUsageWhenNotReported(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.omitUsage = true
		f.content = "twelve bytes"
	})
	c := newChat(t, f, nil)

	resp, err := c.Complete(t.Context(), userRequest("", "sixteen bytes!!!"))
	require.NoError(t, err)
	require.Equal(t, llm.Usage{PromptTokens: 4 + 4, CompletionTokens: 3, Estimated: true}, resp.Usage)
	require.EqualValues(t, 1, c.Stats().EstimatedUsage)
}

func TestStatsAggregateTokensAndCostPerStage(t *testing.T) {
	f := newFakeAPI(t)
	f.set(func(f *fakeAPI) {
		f.model = "gpt-test-2026-01-01" // priced through the "gpt-test" prefix
		f.promptTokens, f.completionTokens = 1000, 200
	})
	prices := llm.PriceTable{
		"gpt-test":      {PromptPerMillion: 2.5, CompletionPerMillion: 10},
		"gpt-test-mini": {PromptPerMillion: 0.15, CompletionPerMillion: 0.6},
	}
	c := newChat(t, f, func(cfg *llm.Config) {
		cfg.Model = "gpt-test"
		cfg.Prices = prices
	})
	for _, stage := range []string{"extract", "extract", "extract", "answer"} {
		_, err := c.Complete(t.Context(), userRequest(stage, "x"))
		require.NoError(t, err)
	}

	perCall := (1000*2.5 + 200*10) / 1e6
	s := c.Stats()
	require.EqualValues(t, 4, s.Calls)
	require.EqualValues(t, 4000, s.PromptTokens)
	require.EqualValues(t, 800, s.CompletionTokens)
	require.InDelta(t, 4*perCall, s.Cost, 1e-12)
	require.Equal(t, map[string]llm.StageStats{
		"extract": {Calls: 3, PromptTokens: 3000, CompletionTokens: 600, Cost: 3 * perCall},
		"answer":  {Calls: 1, PromptTokens: 1000, CompletionTokens: 200, Cost: perCall},
	}, s.Stages)

	// Stats is a snapshot: changing it does not change the provider's.
	s.Stages["extract"] = llm.StageStats{}
	require.EqualValues(t, 3, c.Stats().Stages["extract"].Calls)
}
