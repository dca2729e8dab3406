package llmcall

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
)

// scriptedChat answers with its answers in turn and records the requests.
type scriptedChat struct {
	answers  []string
	err      error
	requests []llm.ChatRequest
}

func (c *scriptedChat) Model() string { return "m" }

func (c *scriptedChat) Complete(_ context.Context, req llm.ChatRequest) (llm.ChatResponse, error) {
	c.requests = append(c.requests, req)
	if c.err != nil {
		return llm.ChatResponse{}, c.err
	}
	answer := c.answers[min(len(c.requests), len(c.answers))-1]
	return llm.ChatResponse{Content: answer, Usage: llm.Usage{PromptTokens: 1000, CompletionTokens: 100}}, nil
}

type mapCache map[string][]byte

func (m mapCache) Get(_ context.Context, key string) ([]byte, uint64, error) {
	v, ok := m[key]
	if !ok {
		return nil, 0, kv.ErrNotFound
	}
	return v, 1, nil
}

func (m mapCache) Put(_ context.Context, key string, value []byte) (uint64, error) {
	m[key] = value
	return 1, nil
}

func request(prompt string) llm.ChatRequest {
	return llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}, JSON: true, Stage: "report"}
}

func accept(answer string) bool { return answer == "good" }

func TestCompleteCachesAcceptedAnswers(t *testing.T) {
	chat := &scriptedChat{answers: []string{"good"}}
	cache := mapCache{}
	c := New(chat, cache, llm.PriceTable{"m": {PromptPerMillion: 1, CompletionPerMillion: 10}})
	var usage events.Usage
	answer, ok, err := c.Complete(t.Context(), request("p"), 2, accept, &usage)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "good", answer)
	require.Equal(t, events.Usage{Calls: 1, PromptTokens: 1000, CompletionTokens: 100, CostUSD: 0.002}, usage)
	require.Len(t, cache, 1)
	require.NotNil(t, chat.requests[0].Temperature)
	require.Zero(t, *chat.requests[0].Temperature)

	answer, ok, err = c.Complete(t.Context(), request("p"), 2, accept, &usage)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "good", answer)
	require.Len(t, chat.requests, 1, "answered from the cache")
	require.Equal(t, 1, usage.CachedCalls)

	other := request("p")
	other.JSON = false
	_, _, err = c.Complete(t.Context(), other, 2, accept, &usage)
	require.NoError(t, err)
	require.Len(t, chat.requests, 2, "another request is another key")
}

func TestCompleteRetriesUnacceptedAnswers(t *testing.T) {
	chat := &scriptedChat{answers: []string{"bad", "good"}}
	cache := mapCache{}
	c := New(chat, cache, nil)
	var usage events.Usage
	answer, ok, err := c.Complete(t.Context(), request("p"), 2, accept, &usage)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "good", answer)
	require.Len(t, chat.requests, 2)
	require.Nil(t, chat.requests[1].Temperature, "the retry leaves the temperature to the server")
	require.Equal(t, events.Usage{Calls: 2, PromptTokens: 2000, CompletionTokens: 200, SkippedRecords: 1}, usage)

	chat = &scriptedChat{answers: []string{"bad"}}
	cache = mapCache{}
	c = New(chat, cache, nil)
	answer, ok, err = c.Complete(t.Context(), request("p"), 2, accept, &usage)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, "bad", answer, "the last answer, for logging")
	require.Len(t, chat.requests, 2)
	require.Empty(t, cache, "unaccepted answers are not cached")

	// A cached answer that is no longer accepted is asked again.
	cache[llm.CacheKey("m", request("q"))] = []byte(`{"content":"stale","model":"m"}`)
	chat = &scriptedChat{answers: []string{"good"}}
	c = New(chat, cache, nil)
	answer, ok, err = c.Complete(t.Context(), request("q"), 1, accept, &usage)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "good", answer)
	require.Len(t, chat.requests, 1)
}

func TestCompleteReturnsCallErrors(t *testing.T) {
	failure := &llm.APIError{Status: 400, Message: "too long"}
	c := New(&scriptedChat{err: failure}, nil, nil)
	var usage events.Usage
	_, ok, err := c.Complete(t.Context(), request("p"), 2, accept, &usage)
	require.False(t, ok)
	var apiErr *llm.APIError
	require.True(t, errors.As(err, &apiErr))
	require.Zero(t, usage.Calls)
}
