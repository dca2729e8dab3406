package llm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

func TestCacheKeySeparatesWhatDecidesTheAnswer(t *testing.T) {
	zero, one := 0.0, 1.0
	base := llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "s"}, {Role: llm.RoleUser, Content: "q"}}}
	with := func(f func(r *llm.ChatRequest)) llm.ChatRequest {
		r := base
		r.Messages = append([]llm.Message(nil), base.Messages...)
		f(&r)
		return r
	}
	key := llm.CacheKey("m", base)
	for _, tc := range []struct {
		name  string
		model string
		req   llm.ChatRequest
		same  bool
	}{
		{"another model", "m2", base, false},
		{"JSON mode", "m", with(func(r *llm.ChatRequest) { r.JSON = true }), false},
		{"a completion cap", "m", with(func(r *llm.ChatRequest) { r.MaxTokens = 500 }), false},
		{"another message", "m", with(func(r *llm.ChatRequest) { r.Messages[1].Content = "q2" }), false},
		{"one more message", "m", with(func(r *llm.ChatRequest) {
			r.Messages = append(r.Messages, llm.Message{Role: llm.RoleUser, Content: ""})
		}), false},
		{"the temperature", "m", with(func(r *llm.ChatRequest) { r.Temperature = &one }), true},
		{"another temperature", "m", with(func(r *llm.ChatRequest) { r.Temperature = &zero }), true},
		{"the stage", "m", with(func(r *llm.ChatRequest) { r.Stage = "glean" }), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.same, llm.CacheKey(tc.model, tc.req) == key)
		})
	}
	require.NotEqual(t, llm.CacheKey("m", with(func(r *llm.ChatRequest) { r.MaxTokens = 500 })),
		llm.CacheKey("m", with(func(r *llm.ChatRequest) { r.MaxTokens = 501 })))
}

// The two schemes the cache had before one (the extractor's without a cap,
// the graph-writer's with one) keep their keys: a user's cache stays warm.
func TestCacheKeyKeepsTheKeysAlreadyWritten(t *testing.T) {
	msgs := []llm.Message{{Role: llm.RoleSystem, Content: "extract"}, {Role: llm.RoleUser, Content: "Ada met Charles."}}
	old := func(prefix string) string {
		h := sha256.New()
		h.Write([]byte(prefix))
		for _, m := range msgs {
			fmt.Fprintf(h, "\x00%s\x00%s", m.Role, m.Content)
		}
		return "llm." + hex.EncodeToString(h.Sum(nil))
	}
	require.Equal(t, old("gpt-4o\x00true"), llm.CacheKey("gpt-4o", llm.ChatRequest{Messages: msgs, JSON: true}))
	require.Equal(t, old("gpt-4o\x00false\x00800"), llm.CacheKey("gpt-4o", llm.ChatRequest{Messages: msgs, MaxTokens: 800}))
}
