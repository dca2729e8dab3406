package extractor

import (
	"context"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
)

// Stores opens the stores the service uses (a backends.Set).
type Stores interface {
	KV(ctx context.Context, bucket string) (kv.Store, error)
	Documents(ctx context.Context) (*natsdocs.Store, error)
}

// Deps are what the service is built over besides its config.
type Deps struct {
	Bus    bus.Bus
	Stores Stores
	// LLMMetrics count the LLM's calls, on the host's registry: a binary's
	// own, or the one kg serve shares among its services.
	LLMMetrics *llm.Metrics
}

// Wire builds the service from its config and its dependencies: the one
// composition both hosts (cmd/extractor and kg serve) use.
func Wire(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	docs, err := deps.Stores.Documents(ctx)
	if err != nil {
		return nil, err
	}
	// Job records tell the extractor which jobs were cancelled, so it stops
	// between chunks.
	jobs, err := deps.Stores.KV(ctx, bus.BucketJobs)
	if err != nil {
		return nil, err
	}
	var extraction Extraction // nil: the offline extractor
	if cfg.LLM != nil {
		cache, err := deps.Stores.KV(ctx, bus.BucketLLMCache)
		if err != nil {
			return nil, err
		}
		llmCfg := *cfg.LLM
		llmCfg.Chat.Metrics = deps.LLMMetrics
		if extraction, err = NewLLMExtraction(llmCfg, cache); err != nil {
			return nil, err
		}
	}
	return New(cfg, deps.Bus, jobs, docs, extraction)
}
