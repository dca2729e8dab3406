// Command query runs kgraph's query service as its own process, configured
// from the environment (see the README's configuration table).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/query"
)

// bus.BucketQueryCache is the JetStream KV bucket of the response cache.

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg := query.Config{
		Concurrency:              env.Int("KG_CONCURRENCY", query.DefaultConcurrency),
		Timeout:                  env.Duration("KG_QUERY_TIMEOUT", 0),
		EntityTopK:               env.Int("KG_QUERY_ENTITY_TOP_K", query.DefaultEntityTopK),
		ChunkTopK:                env.Int("KG_QUERY_CHUNK_TOP_K", query.DefaultChunkTopK),
		ResponseType:             env.String("KG_QUERY_RESPONSE_TYPE", query.DefaultResponseType),
		MaxTokensTextUnit:        env.Int("KG_QUERY_MAX_TOKENS_TEXT_UNIT", query.DefaultMaxTokensTextUnit),
		MaxTokensLocalContext:    env.Int("KG_QUERY_MAX_TOKENS_LOCAL_CONTEXT", query.DefaultMaxTokensLocalContext),
		MaxTokensCommunityReport: env.Int("KG_QUERY_MAX_TOKENS_COMMUNITY_REPORT", query.DefaultMaxTokensCommunityReport),
		GlobalMaxTokensReport:    env.Int("KG_QUERY_GLOBAL_MAX_TOKENS_REPORT", query.DefaultGlobalMaxTokensReport),
		NaiveMaxTokens:           env.Int("KG_QUERY_NAIVE_MAX_TOKENS", query.DefaultNaiveMaxTokens),
		Level:                    env.Int("KG_QUERY_LEVEL", query.DefaultLevel),
		MapConcurrency:           env.Int("KG_QUERY_MAP_CONCURRENCY", query.DefaultMapConcurrency),
	}
	useCache := env.Bool("KG_QUERY_CACHE", true)
	chatCfg, useLLM := llm.ReadConfig(env)
	cfg.Prices = chatCfg.Prices
	stores := backends.ReadConfig(env, common.DataDir)
	dim := env.Int("KG_EMBED_DIM", 256)
	embedCfg, useProvider := llm.ReadEmbedConfig(env)
	p, err := boot.Start(ctx, "query", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	graphStore, graphCheck, err := backends.OpenGraph(ctx, stores)
	if err != nil {
		return err
	}
	defer graphStore.Close()
	p.Ops.AddCheck(graphCheck.Name, graphCheck.Check)
	vectors, vectorCheck, err := backends.OpenVectors(ctx, stores)
	if err != nil {
		return err
	}
	defer vectors.Close()
	p.Ops.AddCheck(vectorCheck.Name, vectorCheck.Check)
	var embed query.Embedder = hashembed.New(dim)
	if useProvider {
		embedCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		if embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	var opts []query.Option
	if useLLM {
		chatCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		chat, err := llm.NewChat(chatCfg)
		if err != nil {
			return fmt.Errorf("chat provider: %w", err)
		}
		opts = append(opts, query.WithChat(chat))
	}
	if useCache {
		cache, _, closeCache, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketQueryCache)
		if err != nil {
			return fmt.Errorf("response cache: %w", err)
		}
		defer closeCache()
		opts = append(opts, query.WithCache(cache))
	}
	return p.Run(ctx, query.New(cfg, p.NC, p.Log, embed, vectors, graphStore, opts...).Run)
}
