package extractor

import (
	"fmt"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/extractor/internal/llmextract"
)

// LLMConfig configures extraction with an LLM.
type LLMConfig struct {
	Chat llm.Config
	// EntityTypes asked for (default organization, person, geo, event).
	EntityTypes []string
	// Gleaning rounds (default 1; -1 for none).
	Gleaning int
	// Format is "tuples" (GraphRAG records, default) or "json".
	Format string
}

// ReadLLMConfig reads KG_LLM_* (see libs/llm), KG_ENTITY_TYPES (comma
// separated), KG_GLEANING and KG_EXTRACTION_FORMAT; ok is false when no LLM
// is configured.
func ReadLLMConfig(r *envconf.Reader) (cfg LLMConfig, ok bool) {
	cfg.Chat, ok = llm.ReadConfig(r)
	if types := r.String("KG_ENTITY_TYPES", ""); types != "" {
		for _, t := range strings.Split(types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.EntityTypes = append(cfg.EntityTypes, t)
			}
		}
	}
	cfg.Gleaning = r.Int("KG_GLEANING", 1)
	if cfg.Gleaning == 0 {
		cfg.Gleaning = -1 // 0 in the environment means none
	}
	cfg.Format = r.String("KG_EXTRACTION_FORMAT", llmextract.FormatTuples)
	return cfg, ok
}

// Cache stores LLM responses keyed on model and prompt.
type Cache = llmextract.Cache

// ChunkConcurrency is the number of chunks to extract at once so that every
// one of the provider's concurrent calls is used: one chunk has at most one
// call in flight (extraction, then each gleaning round, in turn).
func (c LLMConfig) ChunkConcurrency() int {
	if c.Chat.MaxConcurrency > 0 {
		return c.Chat.MaxConcurrency
	}
	return llm.DefaultMaxConcurrency
}

// NewLLMExtraction builds the LLM extraction step.
func NewLLMExtraction(cfg LLMConfig, cache Cache) (Extraction, error) {
	chat, err := llm.NewChat(cfg.Chat)
	if err != nil {
		return nil, fmt.Errorf("llm provider: %w", err)
	}
	x, err := llmextract.New(chat, cache, llmextract.Config{EntityTypes: cfg.EntityTypes, Gleaning: cfg.Gleaning, Format: cfg.Format, Prices: cfg.Chat.Prices, Metrics: cfg.Chat.Metrics})
	if err != nil {
		return nil, err
	}
	return x, nil
}
