// Package llmextract is the LLM extraction step: the GraphRAG entity and
// relationship prompt, gleaning rounds, a tolerant parse of whatever the
// model returns, and a response cache keyed on model and prompt, so that a
// redelivered or re-run chunk costs no call.
package llmextract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/extractparse"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
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

// Format of the extraction output asked of the model.
const (
	FormatTuples = "tuples" // GraphRAG's ("entity"<|>…) records
	FormatJSON   = "json"   // a strict JSON object
)

// Config of the extraction.
type Config struct {
	EntityTypes []string
	// Gleaning is the number of "many entities were missed" rounds (default 1;
	// -1 for none).
	Gleaning int
	Format   string
	Prices   llm.PriceTable
	// Metrics counts LLM cache hits and misses (nil: not counted).
	Metrics *llm.Metrics
}

// Extractor extracts with an LLM.
type Extractor struct {
	chat  Chat
	cache Cache
	cfg   Config
}

// New returns the extractor.
func New(chat Chat, cache Cache, cfg Config) (*Extractor, error) {
	if len(cfg.EntityTypes) == 0 {
		cfg.EntityTypes = prompts.DefaultEntityTypes()
	}
	switch {
	case cfg.Gleaning == 0:
		cfg.Gleaning = 1
	case cfg.Gleaning < 0:
		cfg.Gleaning = 0
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatTuples
	case FormatTuples, FormatJSON:
	default:
		return nil, fmt.Errorf("extraction format %q: use %s or %s", cfg.Format, FormatTuples, FormatJSON)
	}
	return &Extractor{chat: chat, cache: cache, cfg: cfg}, nil
}

// Name names the extractor in chunk.extracted events.
func (e *Extractor) Name() string { return "llm:" + e.chat.Model() }

// Extract runs the extraction prompt and the gleaning rounds on one chunk.
func (e *Extractor) Extract(ctx context.Context, text string) ([]events.Entity, []events.Relation, events.Usage, error) {
	var usage events.Usage
	prompt := prompts.EntityExtraction(text, e.cfg.EntityTypes)
	if e.cfg.Format == FormatJSON {
		prompt = prompts.EntityExtractionJSON(text, e.cfg.EntityTypes)
	}
	history := []llm.Message{{Role: llm.RoleUser, Content: prompt}}
	first, err := e.complete(ctx, history, "extract", e.cfg.Format == FormatJSON, &usage)
	if err != nil {
		return nil, nil, usage, err
	}
	outputs := []string{first}
	history = append(history, llm.Message{Role: llm.RoleAssistant, Content: first})
	for round := range e.cfg.Gleaning {
		history = append(history, llm.Message{Role: llm.RoleUser, Content: prompts.GleanContinue()})
		more, err := e.complete(ctx, history, "glean", e.cfg.Format == FormatJSON, &usage)
		if err != nil {
			return nil, nil, usage, err
		}
		outputs = append(outputs, more)
		history = append(history, llm.Message{Role: llm.RoleAssistant, Content: more})
		if round == e.cfg.Gleaning-1 {
			break
		}
		again, err := e.complete(ctx, append(history, llm.Message{Role: llm.RoleUser, Content: prompts.GleanLoop()}), "glean", false, &usage)
		if err != nil {
			return nil, nil, usage, err
		}
		if !saysYes(again) {
			break
		}
	}
	var ents []events.Entity
	var rels []events.Relation
	for _, out := range outputs {
		var res extractparse.Result
		if e.cfg.Format == FormatJSON {
			if res, err = extractparse.ParseJSON(out); err != nil {
				usage.SkippedRecords++ // an answer with no JSON at all is one bad record
				continue
			}
		} else {
			res = extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
		}
		usage.SkippedRecords += res.Skipped
		ents = append(ents, res.Entities...)
		rels = append(rels, res.Relations...)
	}
	return ents, rels, usage, nil
}

func saysYes(s string) bool {
	return strings.EqualFold(strings.Trim(strings.TrimSpace(s), "\"'`.!* \n"), "yes")
}

func (e *Extractor) complete(ctx context.Context, msgs []llm.Message, stage string, jsonMode bool, usage *events.Usage) (string, error) {
	zero := 0.0
	req := llm.ChatRequest{Messages: msgs, Temperature: &zero, JSON: jsonMode, Stage: stage}
	key := llm.CacheKey(e.chat.Model(), req)
	if e.cache != nil {
		raw, _, err := e.cache.Get(ctx, key)
		switch {
		case err == nil:
			var c llm.CachedResponse
			if json.Unmarshal(raw, &c) == nil {
				usage.CachedCalls++
				e.cfg.Metrics.CacheHit(llm.MetricsKindChat, e.chat.Model())
				return c.Content, nil
			}
		case !errors.Is(err, kv.ErrNotFound):
			return "", fmt.Errorf("read llm cache: %w", err)
		}
		e.cfg.Metrics.CacheMiss(llm.MetricsKindChat, e.chat.Model())
	}
	resp, err := e.chat.Complete(ctx, req)
	if err != nil {
		return "", fmt.Errorf("llm %s call: %w", stage, err)
	}
	usage.Calls++
	usage.PromptTokens += resp.Usage.PromptTokens
	usage.CompletionTokens += resp.Usage.CompletionTokens
	model := resp.Model
	if model == "" {
		model = e.chat.Model()
	}
	usage.CostUSD += e.cfg.Prices.Cost(model, resp.Usage)
	if e.cache != nil {
		raw, err := json.Marshal(llm.CachedResponse{Content: resp.Content, Model: model})
		if err == nil {
			if _, err := e.cache.Put(ctx, key, raw); err != nil {
				return "", fmt.Errorf("write llm cache: %w", err)
			}
		}
	}
	return resp.Content, nil
}
