package graphwriter

import (
	"context"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
)

// Stores opens the stores the service uses (a backends.Set).
type Stores interface {
	Graph(ctx context.Context) (graph.Store, error)
	KV(ctx context.Context, bucket string) (kv.Store, error)
}

// Deps are what the service is built over besides its config.
type Deps struct {
	Bus    bus.Bus
	Stores Stores
	// Chat, with the prices of its model, writes description summaries
	// and community reports; nil means extractive reports. The host builds
	// the client because kg serve shares one (and its limit on concurrent
	// calls) with the query service.
	Chat   Chat
	Prices llm.PriceTable
}

// Wire builds the service from its config and its dependencies: the one
// composition both hosts (cmd/graph-writer and kg serve) use. cfg.Chat,
// cfg.Cache and cfg.Prices are set here from deps.
func Wire(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	store, err := deps.Stores.Graph(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Chat, cfg.Cache, cfg.Prices = nil, nil, nil
	if deps.Chat != nil {
		cache, err := deps.Stores.KV(ctx, bus.BucketLLMCache)
		if err != nil {
			return nil, err
		}
		cfg.Chat, cfg.Cache, cfg.Prices = deps.Chat, cache, deps.Prices
	}
	return New(cfg, deps.Bus, store), nil
}
