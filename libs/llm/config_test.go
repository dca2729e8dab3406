package llm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
)

func TestConfigValidate(t *testing.T) {
	valid := llm.Config{BaseURL: "http://localhost:11434/v1", Model: "llama3.1"}
	tests := []struct {
		name   string
		change func(*llm.Config)
		want   []string // substrings of the error; none for a valid config
	}{
		{"local server without key", func(*llm.Config) {}, nil},
		{"everything set", func(c *llm.Config) {
			*c = llm.Config{BaseURL: "https://api.openai.com/v1", APIKey: "sk-x", Model: "gpt-4o-mini", MaxConcurrency: 2,
				RequestsPerMinute: 500, TokensPerMinute: 100000, MaxRetries: -1, Timeout: time.Minute}
		}, nil},
		{"nothing set", func(c *llm.Config) { *c = llm.Config{} }, []string{"KG_LLM_BASE_URL", "KG_LLM_MODEL"}},
		{"not a URL", func(c *llm.Config) { c.BaseURL = "localhost:11434" }, []string{"KG_LLM_BASE_URL", "not an http(s) URL"}},
		{"ftp URL", func(c *llm.Config) { c.BaseURL = "ftp://example.com/v1" }, []string{"KG_LLM_BASE_URL"}},
		{"OpenAI without key", func(c *llm.Config) { c.BaseURL = "https://api.openai.com/v1" }, []string{"KG_LLM_API_KEY"}},
		{"negative limits", func(c *llm.Config) {
			c.MaxConcurrency, c.RequestsPerMinute, c.TokensPerMinute, c.Timeout = -1, -2, -3, -time.Second
		}, []string{"KG_LLM_MAX_CONCURRENCY", "KG_LLM_RPM", "KG_LLM_TPM", "KG_LLM_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			_, newErr := llm.NewChat(cfg)
			require.ErrorContains(t, newErr, tt.want[0])
		})
	}
}

func TestEmbedConfigValidateNamesEmbedVariables(t *testing.T) {
	require.NoError(t, llm.EmbedConfig{BaseURL: "http://localhost:11434/v1", Model: "nomic-embed-text"}.Validate())

	err := llm.EmbedConfig{Dim: -1, BatchSize: -1, RequestsPerMinute: -1}.Validate()
	for _, w := range []string{"KG_EMBED_BASE_URL", "KG_EMBED_MODEL", "KG_EMBED_DIM", "KG_EMBED_BATCH_SIZE", "KG_EMBED_RPM"} {
		require.ErrorContains(t, err, w)
	}
	require.NotContains(t, err.Error(), "KG_LLM_")
	_, err = llm.NewEmbedder(llm.EmbedConfig{})
	require.ErrorContains(t, err, "KG_EMBED_MODEL")
}

func TestPriceTable(t *testing.T) {
	prices := llm.PriceTable{
		"gpt-4o":      {PromptPerMillion: 2.5, CompletionPerMillion: 10},
		"gpt-4o-mini": {PromptPerMillion: 0.15, CompletionPerMillion: 0.6},
	}
	u := llm.Usage{PromptTokens: 2_000_000, CompletionTokens: 500_000}
	tests := []struct {
		model string
		want  float64
	}{
		{"gpt-4o", 2*2.5 + 0.5*10},
		{"gpt-4o-2024-08-06", 2*2.5 + 0.5*10},
		{"gpt-4o-mini", 2*0.15 + 0.5*0.6},
		{"gpt-4o-mini-2024-07-18", 2*0.15 + 0.5*0.6}, // the longest prefix wins
		{"llama3.1", 0},
		{"", 0},
	}
	for _, tt := range tests {
		require.InDelta(t, tt.want, prices.Cost(tt.model, u), 1e-12, tt.model)
	}
	require.Zero(t, llm.PriceTable(nil).Cost("gpt-4o", u))
}
