package query

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// ReadConfig reads the service's settings from the environment: KG_QUERY_*
// and the LLM's prices. Zero values take the defaults when the service is
// built. The concurrency is the host's to read (KG_CONCURRENCY in the
// binary; kg serve takes the default).
func ReadConfig(env *envconf.Reader) Config {
	cfg := Config{
		Timeout:                  env.Duration("KG_QUERY_TIMEOUT", 0),
		EntityTopK:               env.Int("KG_QUERY_ENTITY_TOP_K", DefaultEntityTopK),
		ChunkTopK:                env.Int("KG_QUERY_CHUNK_TOP_K", DefaultChunkTopK),
		ResponseType:             env.String("KG_QUERY_RESPONSE_TYPE", DefaultResponseType),
		MaxTokensTextUnit:        env.Int("KG_QUERY_MAX_TOKENS_TEXT_UNIT", DefaultMaxTokensTextUnit),
		MaxTokensLocalContext:    env.Int("KG_QUERY_MAX_TOKENS_LOCAL_CONTEXT", DefaultMaxTokensLocalContext),
		MaxTokensCommunityReport: env.Int("KG_QUERY_MAX_TOKENS_COMMUNITY_REPORT", DefaultMaxTokensCommunityReport),
		GlobalMaxTokensReport:    env.Int("KG_QUERY_GLOBAL_MAX_TOKENS_REPORT", DefaultGlobalMaxTokensReport),
		NaiveMaxTokens:           env.Int("KG_QUERY_NAIVE_MAX_TOKENS", DefaultNaiveMaxTokens),
		Level:                    env.Int("KG_QUERY_LEVEL", DefaultLevel),
		MapConcurrency:           env.Int("KG_QUERY_MAP_CONCURRENCY", DefaultMapConcurrency),
		DisableCache:             !env.Bool("KG_QUERY_CACHE", true),
	}
	if chatCfg, ok := llm.ReadConfig(env); ok {
		cfg.Prices = chatCfg.Prices
	}
	return cfg
}

// Stores opens the stores the service uses (a backends.Set).
type Stores interface {
	Graph(ctx context.Context) (graph.Store, error)
	Vectors(ctx context.Context) (vector.Store, error)
	KV(ctx context.Context, bucket string) (kv.Store, error)
	// Checks are the health checks of the stores opened so far.
	Checks() []backends.Check
}

// Deps are what the service is built over besides its config.
type Deps struct {
	// NC is the connection the service answers requests on.
	NC     *nats.Conn
	Logger *slog.Logger
	Stores Stores
	// Embed embeds the questions as the vector-indexer embedded the
	// texts; kg serve shares one embedder between the two.
	Embed Embedder
	// Chat writes the answers; nil means extractive answers. The host
	// builds it because kg serve shares one client (and its limit on
	// concurrent calls) with the graph-writer.
	Chat Chat
}

// Wire builds the service from its config and its dependencies: the one
// composition both hosts (cmd/query and kg serve) use.
func Wire(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	graphStore, err := deps.Stores.Graph(ctx)
	if err != nil {
		return nil, err
	}
	vectors, err := deps.Stores.Vectors(ctx)
	if err != nil {
		return nil, err
	}
	var opts []Option
	if deps.Chat != nil {
		opts = append(opts, WithChat(deps.Chat))
	}
	if !cfg.DisableCache {
		cache, err := deps.Stores.KV(ctx, bus.BucketQueryCache)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithCache(cache))
	}
	var checks []StoreCheck
	for _, c := range deps.Stores.Checks() {
		checks = append(checks, StoreCheck{Name: c.Name, Check: c.Check})
	}
	opts = append(opts, WithHealthChecks(checks))
	return New(cfg, deps.NC, deps.Logger, deps.Embed, vectors, graphStore, opts...), nil
}
