package ingestapi

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/llm"
)

// Environment variables of the edge (the README's configuration table).
const (
	EnvAPIKeys            = "KG_API_KEYS"
	EnvAPIKeysFile        = "KG_API_KEYS_FILE"
	EnvAuthDisabled       = "KG_AUTH_DISABLED"
	EnvRateLimit          = "KG_RATE_LIMIT_PER_MINUTE"
	EnvCORSOrigins        = "KG_CORS_ORIGINS"
	EnvApprovalNamespaces = "KG_APPROVAL_NAMESPACES"
	EnvPriceTable         = "KG_PRICE_TABLE"
)

// ReadConfig reads the edge's settings from the environment. Key material
// comes from KG_API_KEYS (a JSON array) or the file KG_API_KEYS_FILE names;
// both hold only SHA-256 hashes of the secrets.
func ReadConfig(env *envconf.Reader) (Config, error) {
	cfg := Config{
		MaxBodyBytes:   int64(env.Int("KG_MAX_BODY_BYTES", 8<<20)),
		MaxUploadBytes: int64(env.Int("KG_MAX_UPLOAD_BYTES", 16<<20)),
		// 0: 30s, or what the composition sets (2 min with an LLM in kg serve).
		QueryTimeout:   env.Duration("KG_QUERY_TIMEOUT", 0),
		RequestTimeout: env.Duration("KG_REQUEST_TIMEOUT", 30*time.Second),
		CORSOrigins:    splitList(env.String(EnvCORSOrigins, "")),
		// A negative TTL or entry count switches the edge's answer cache off.
		AnswerCacheTTL:     env.Duration("KG_EDGE_CACHE_TTL", 10*time.Second),
		AnswerCacheEntries: env.Int("KG_EDGE_CACHE_ENTRIES", 4096),
	}
	cfg.Auth.Disabled = env.Bool(EnvAuthDisabled, false)
	cfg.Auth.DefaultRateLimit = env.Int(EnvRateLimit, 600)
	cfg.ApprovalNamespaces = splitList(env.String(EnvApprovalNamespaces, ""))
	keys := env.String(EnvAPIKeys, "")
	if file := env.String(EnvAPIKeysFile, ""); file != "" {
		if keys != "" {
			return Config{}, fmt.Errorf("set %s or %s, not both", EnvAPIKeys, EnvAPIKeysFile)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvAPIKeysFile, err)
		}
		keys = string(raw)
	}
	if strings.TrimSpace(keys) != "" {
		parsed, err := ParseAPIKeys([]byte(keys))
		if err != nil {
			return Config{}, err
		}
		cfg.Auth.Keys = parsed
	}
	cfg.Estimate = EstimateConfig{
		Gleanings:       max(env.Int("KG_GLEANING", 1), 0),
		PromptTokens:    env.Int("KG_ESTIMATE_PROMPT_TOKENS", 1800),
		OutputRatioLow:  env.Float("KG_ESTIMATE_OUTPUT_RATIO_LOW", 0.15),
		OutputRatioHigh: env.Float("KG_ESTIMATE_OUTPUT_RATIO_HIGH", 0.6),
		Prices:          DefaultPrices(),
	}
	if llmCfg, ok := llm.ReadConfig(env); ok {
		cfg.Estimate.Model = llmCfg.Model
		for model, p := range llmCfg.Prices {
			cfg.Estimate.Prices[model] = p
		}
	}
	if table := env.String(EnvPriceTable, ""); table != "" {
		var extra map[string]struct {
			Prompt     float64 `json:"prompt"`
			Completion float64 `json:"completion"`
		}
		if err := json.Unmarshal([]byte(table), &extra); err != nil {
			return Config{}, fmt.Errorf("%s must be a JSON object like {\"gpt-4o\":{\"prompt\":2.5,\"completion\":10}} (USD per million tokens): %w", EnvPriceTable, err)
		}
		for model, p := range extra {
			cfg.Estimate.Prices[model] = llm.Price{PromptPerMillion: p.Prompt, CompletionPerMillion: p.Completion}
		}
	}
	// The edge estimates a job's chunks as the extractor will cut them.
	cfg.Chunks = chunk.ReadConfig(env)
	if err := cfg.Chunks.Validate(); err != nil {
		return Config{}, fmt.Errorf("KG_CHUNK_TOKENS, KG_CHUNK_OVERLAP: %w", err)
	}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
