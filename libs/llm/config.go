package llm

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Environment variables a service's main reads into Config and EmbedConfig.
// Validate names them, so a start-up error tells the user what to set.
const (
	EnvLLMBaseURL        = "KG_LLM_BASE_URL"
	EnvLLMAPIKey         = "KG_LLM_API_KEY"
	EnvLLMModel          = "KG_LLM_MODEL"
	EnvLLMMaxConcurrency = "KG_LLM_MAX_CONCURRENCY"
	EnvLLMRPM            = "KG_LLM_RPM"
	EnvLLMTPM            = "KG_LLM_TPM"
	EnvLLMMaxRetries     = "KG_LLM_MAX_RETRIES"
	EnvLLMTimeout        = "KG_LLM_TIMEOUT"

	EnvEmbedBaseURL        = "KG_EMBED_BASE_URL"
	EnvEmbedAPIKey         = "KG_EMBED_API_KEY"
	EnvEmbedModel          = "KG_EMBED_MODEL"
	EnvEmbedDim            = "KG_EMBED_DIM"
	EnvEmbedBatchSize      = "KG_EMBED_BATCH_SIZE"
	EnvEmbedMaxConcurrency = "KG_EMBED_MAX_CONCURRENCY"
	EnvEmbedRPM            = "KG_EMBED_RPM"
	EnvEmbedTPM            = "KG_EMBED_TPM"
	EnvEmbedMaxRetries     = "KG_EMBED_MAX_RETRIES"
	EnvEmbedTimeout        = "KG_EMBED_TIMEOUT"
)

// Defaults applied to zero fields.
const (
	DefaultMaxConcurrency = 8
	DefaultMaxRetries     = 5
	DefaultTimeout        = 120 * time.Second
	DefaultBatchSize      = 64
)

// Config configures a Chat provider.
type Config struct {
	// BaseURL is the OpenAI-compatible API root, e.g.
	// https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama).
	BaseURL string
	// APIKey is sent as a bearer token; local servers usually need none.
	APIKey string
	Model  string
	// MaxConcurrency caps requests in flight to this provider (default 8).
	MaxConcurrency int
	// RequestsPerMinute and TokensPerMinute are budgets calls wait for;
	// 0 means unlimited. Tokens are estimated before a call (about four
	// bytes of prompt per token, plus MaxTokens) and settled with the
	// usage the server reports.
	RequestsPerMinute int
	TokensPerMinute   int
	// MaxRetries is the number of retries after the first attempt
	// (default 5 when 0; negative disables retries).
	MaxRetries int
	// Timeout bounds each attempt, streaming included (default 120 s).
	Timeout time.Duration
	// Prices turn token usage into dollars in Stats.
	Prices PriceTable
	// Metrics, when set, records every call in Prometheus metrics; one
	// Metrics may serve several providers.
	Metrics *Metrics
}

// Validate reports every problem in the configuration, naming the
// environment variable that sets each field.
func (c Config) Validate() error {
	return errors.Join(validateCommon(commonSettings{
		baseURL: c.BaseURL, apiKey: c.APIKey, model: c.Model,
		maxConcurrency: c.MaxConcurrency, rpm: c.RequestsPerMinute, tpm: c.TokensPerMinute,
		timeout: c.Timeout,
	}, envNames{
		baseURL: EnvLLMBaseURL, apiKey: EnvLLMAPIKey, model: EnvLLMModel,
		maxConcurrency: EnvLLMMaxConcurrency, rpm: EnvLLMRPM, tpm: EnvLLMTPM, timeout: EnvLLMTimeout,
	})...)
}

// EmbedConfig configures an Embedder.
type EmbedConfig struct {
	BaseURL string
	APIKey  string
	Model   string
	// Dim, when set, is sent as the dimensions parameter and every vector
	// must have that length. When 0 the server's dimension is used, and
	// every vector must match the first one received.
	Dim int
	// BatchSize is the number of texts per request (default 64).
	BatchSize         int
	MaxConcurrency    int
	RequestsPerMinute int
	TokensPerMinute   int
	MaxRetries        int
	Timeout           time.Duration
	Prices            PriceTable
	// Metrics, when set, records every batch in Prometheus metrics.
	Metrics *Metrics
}

// Validate reports every problem in the configuration, naming the
// environment variable that sets each field.
func (c EmbedConfig) Validate() error {
	errs := validateCommon(commonSettings{
		baseURL: c.BaseURL, apiKey: c.APIKey, model: c.Model,
		maxConcurrency: c.MaxConcurrency, rpm: c.RequestsPerMinute, tpm: c.TokensPerMinute,
		timeout: c.Timeout,
	}, envNames{
		baseURL: EnvEmbedBaseURL, apiKey: EnvEmbedAPIKey, model: EnvEmbedModel,
		maxConcurrency: EnvEmbedMaxConcurrency, rpm: EnvEmbedRPM, tpm: EnvEmbedTPM, timeout: EnvEmbedTimeout,
	})
	if c.Dim < 0 {
		errs = append(errs, fmt.Errorf("embedding dimension %d is negative: set %s to a positive number, or leave it unset to use the model's", c.Dim, EnvEmbedDim))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("embedding batch size %d is negative: set %s to a positive number (default %d)", c.BatchSize, EnvEmbedBatchSize, DefaultBatchSize))
	}
	return errors.Join(errs...)
}

type commonSettings struct {
	baseURL, apiKey, model string
	maxConcurrency         int
	rpm, tpm               int
	timeout                time.Duration
}

type envNames struct {
	baseURL, apiKey, model, maxConcurrency, rpm, tpm, timeout string
}

func validateCommon(s commonSettings, env envNames) []error {
	var errs []error
	if strings.TrimSpace(s.baseURL) == "" {
		errs = append(errs, fmt.Errorf("no provider URL: set %s to an OpenAI-compatible API root such as https://api.openai.com/v1 or http://localhost:11434/v1", env.baseURL))
	} else if u, err := url.Parse(s.baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("provider URL %q is not an http(s) URL: set %s to an API root such as http://localhost:11434/v1", s.baseURL, env.baseURL))
	} else if u.Hostname() == "api.openai.com" && s.apiKey == "" {
		errs = append(errs, fmt.Errorf("api.openai.com needs an API key: set %s", env.apiKey))
	}
	if strings.TrimSpace(s.model) == "" {
		errs = append(errs, fmt.Errorf("no model: set %s (e.g. gpt-4o-mini, llama3.1, nomic-embed-text)", env.model))
	}
	if s.maxConcurrency < 0 {
		errs = append(errs, fmt.Errorf("max concurrency %d is negative: set %s to a positive number (default %d)", s.maxConcurrency, env.maxConcurrency, DefaultMaxConcurrency))
	}
	if s.rpm < 0 {
		errs = append(errs, fmt.Errorf("requests per minute %d is negative: set %s to a positive number, or 0 for unlimited", s.rpm, env.rpm))
	}
	if s.tpm < 0 {
		errs = append(errs, fmt.Errorf("tokens per minute %d is negative: set %s to a positive number, or 0 for unlimited", s.tpm, env.tpm))
	}
	if s.timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative: set %s to a duration such as 120s", s.timeout, env.timeout))
	}
	return errs
}

// policyFor applies the defaults of the settings shared by chat and
// embeddings.
func policyFor(maxConcurrency, rpm, tpm, maxRetries int, timeout time.Duration) policy {
	p := policy{maxConcurrency: maxConcurrency, rpm: rpm, tpm: tpm, maxRetries: maxRetries, timeout: timeout}
	if p.maxConcurrency == 0 {
		p.maxConcurrency = DefaultMaxConcurrency
	}
	switch {
	case p.maxRetries == 0:
		p.maxRetries = DefaultMaxRetries
	case p.maxRetries < 0:
		p.maxRetries = 0
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	return p
}
