package llm

import "github.com/kgraph-dev/kgraph/libs/envconf"

// Price settings of the configured chat and embedding models, in US dollars
// per million tokens.
const (
	EnvLLMPricePrompt     = "KG_LLM_PRICE_PROMPT"
	EnvLLMPriceCompletion = "KG_LLM_PRICE_COMPLETION"
	EnvEmbedPrice         = "KG_EMBED_PRICE"
)

// ReadConfig reads the chat provider's settings; ok is false when
// KG_LLM_BASE_URL is unset, meaning no LLM is configured.
func ReadConfig(r *envconf.Reader) (cfg Config, ok bool) {
	cfg = Config{
		BaseURL:           r.String(EnvLLMBaseURL, ""),
		APIKey:            r.String(EnvLLMAPIKey, ""),
		Model:             r.String(EnvLLMModel, ""),
		MaxConcurrency:    r.Int(EnvLLMMaxConcurrency, DefaultMaxConcurrency),
		RequestsPerMinute: r.Int(EnvLLMRPM, 0),
		TokensPerMinute:   r.Int(EnvLLMTPM, 0),
		MaxRetries:        r.Int(EnvLLMMaxRetries, DefaultMaxRetries),
		Timeout:           r.Duration(EnvLLMTimeout, DefaultTimeout),
	}
	if p, c := r.Float(EnvLLMPricePrompt, 0), r.Float(EnvLLMPriceCompletion, 0); p > 0 || c > 0 {
		cfg.Prices = PriceTable{cfg.Model: {PromptPerMillion: p, CompletionPerMillion: c}}
	}
	return cfg, cfg.BaseURL != ""
}

// ReadEmbedConfig reads the embedding provider's settings; ok is false when
// KG_EMBED_BASE_URL is unset, meaning hashed offline embeddings are used.
func ReadEmbedConfig(r *envconf.Reader) (cfg EmbedConfig, ok bool) {
	cfg = EmbedConfig{
		BaseURL:           r.String(EnvEmbedBaseURL, ""),
		APIKey:            r.String(EnvEmbedAPIKey, ""),
		Model:             r.String(EnvEmbedModel, ""),
		Dim:               r.Int(EnvEmbedDim, 0),
		BatchSize:         r.Int(EnvEmbedBatchSize, DefaultBatchSize),
		MaxConcurrency:    r.Int(EnvEmbedMaxConcurrency, DefaultMaxConcurrency),
		RequestsPerMinute: r.Int(EnvEmbedRPM, 0),
		TokensPerMinute:   r.Int(EnvEmbedTPM, 0),
		MaxRetries:        r.Int(EnvEmbedMaxRetries, DefaultMaxRetries),
		Timeout:           r.Duration(EnvEmbedTimeout, DefaultTimeout),
	}
	if p := r.Float(EnvEmbedPrice, 0); p > 0 {
		cfg.Prices = PriceTable{cfg.Model: {PromptPerMillion: p}}
	}
	return cfg, cfg.BaseURL != ""
}
