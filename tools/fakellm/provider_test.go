package fakellm_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/tools/fakellm"
)

// kgraph's LLM provider against the fake server: it honours 429 with
// Retry-After, its concurrency limit and its token budget.
func newChat(t *testing.T, fake *fakellm.Server, cfg llm.Config) *llm.Chat {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg.BaseURL, cfg.APIKey, cfg.Model = srv.URL+"/v1", "test", "fakellm"
	chat, err := llm.NewChat(cfg)
	require.NoError(t, err)
	return chat
}

func extractionRequest(i int) llm.ChatRequest {
	text := "Ada Lovelace met Charles Babbage in London. The Analytical Engine impressed Mary Somerville."
	if i%2 == 1 {
		text += " George Boole wrote to Augustus De Morgan."
	}
	return llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: prompts.EntityExtraction(text, nil)}}, Stage: "extract"}
}

func TestProviderHonoursRetryAfter(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Rate429: 0.5, RetryAfter: time.Second, Seed: 7})
	require.NoError(t, err)
	chat := newChat(t, fake, llm.Config{MaxConcurrency: 4, MaxRetries: 10})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := chat.Complete(context.Background(), extractionRequest(i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "every call succeeds once the 429s are waited out")
	}
	st := chat.Stats()
	require.Positive(t, st.RateLimited, "the fake answered some calls with 429")
	require.Equal(t, st.RateLimited, st.Retries, "each 429 was retried")
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was honoured")
	require.EqualValues(t, st.RateLimited, fake.Stats().Injected429)
}

func TestProviderConcurrencyLimit(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Latency: 50 * time.Millisecond, Seed: 1})
	require.NoError(t, err)
	chat := newChat(t, fake, llm.Config{MaxConcurrency: 3})
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := chat.Complete(context.Background(), extractionRequest(i))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, 3, fake.Stats().MaxConcurrency, "the fake saw at most (and exactly) the provider's limit in flight")
	require.Equal(t, 3, chat.Stats().MaxInFlight)
}

func TestProviderTokenBudget(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Seed: 1})
	require.NoError(t, err)
	req := extractionRequest(0)
	// Budget of about two calls a second: five calls take about two seconds.
	perCall := len(req.Messages[0].Content)/4 + 300
	chat := newChat(t, fake, llm.Config{MaxConcurrency: 8, TokensPerMinute: perCall * 120})
	start := time.Now()
	for range 5 {
		_, err := chat.Complete(context.Background(), req)
		require.NoError(t, err)
	}
	// Unpaced, five calls take milliseconds; a one-second burst allowance
	// leaves three calls to be paced at about half a second each.
	require.GreaterOrEqual(t, time.Since(start), time.Second, "the token budget paced the calls")
}
