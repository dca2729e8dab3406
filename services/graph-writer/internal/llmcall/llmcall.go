// Package llmcall asks the LLM for summaries and reports through a response
// cache keyed on model and prompt, accounting every call, so a rebuild that
// repeats a prompt (a redelivered build, a build retried after an outage)
// costs no call.
package llmcall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
)

// Chat is the LLM.
type Chat interface {
	Complete(ctx context.Context, req llm.ChatRequest) (llm.ChatResponse, error)
	Model() string
}

// Cache stores LLM responses (JetStream KV or Redis).
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// Client calls the chat through the cache. Cache may be nil.
type Client struct {
	chat   Chat
	cache  Cache
	prices llm.PriceTable
}

// New returns a client.
func New(chat Chat, cache Cache, prices llm.PriceTable) *Client {
	return &Client{chat: chat, cache: cache, prices: prices}
}

// Complete returns the first answer accept takes: from the cache, or from
// up to attempts calls of the chat. The first call runs at temperature 0;
// a retry leaves the temperature to the server, since asking a
// deterministic model the same question again would get the same unusable
// answer. Only accepted answers are cached. ok is false when no answer was
// accepted; err is set only when a call failed. Calls and cache hits are
// added to usage.
func (c *Client) Complete(ctx context.Context, req llm.ChatRequest, attempts int, accept func(string) bool, usage *events.Usage) (answer string, ok bool, err error) {
	key := llm.CacheKey(c.chat.Model(), req)
	if c.cache != nil {
		raw, _, err := c.cache.Get(ctx, key)
		switch {
		case err == nil:
			var cached llm.CachedResponse
			if json.Unmarshal(raw, &cached) == nil && accept(cached.Content) {
				usage.CachedCalls++
				return cached.Content, true, nil
			}
		case !errors.Is(err, kv.ErrNotFound):
			return "", false, fmt.Errorf("read llm cache: %w", err)
		}
	}
	zero := 0.0
	req.Temperature = &zero
	for attempt := range max(1, attempts) {
		if attempt > 0 {
			req.Temperature = nil
		}
		resp, err := c.chat.Complete(ctx, req)
		if err != nil {
			return "", false, fmt.Errorf("llm %s call: %w", req.Stage, err)
		}
		model := resp.Model
		if model == "" {
			model = c.chat.Model()
		}
		usage.Calls++
		usage.PromptTokens += resp.Usage.PromptTokens
		usage.CompletionTokens += resp.Usage.CompletionTokens
		usage.CostUSD += c.prices.Cost(model, resp.Usage)
		if !accept(resp.Content) {
			usage.SkippedRecords++
			answer = resp.Content
			continue
		}
		if c.cache != nil {
			raw, err := json.Marshal(llm.CachedResponse{Content: resp.Content, Model: model})
			if err == nil {
				if _, err := c.cache.Put(ctx, key, raw); err != nil {
					return "", false, fmt.Errorf("write llm cache: %w", err)
				}
			}
		}
		return resp.Content, true, nil
	}
	return answer, false, nil
}
