// Command graph-writer runs kgraph's graph-writer service as its own
// process, configured from the environment (see the README's configuration
// table).
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
	"github.com/kgraph-dev/kgraph/libs/llm"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "graph-writer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg, cfgErr := graphwriter.ReadConfig(env)
	cfg.Concurrency = env.Int("KG_CONCURRENCY", graphwriter.DefaultConcurrency)
	stores := backends.ReadConfig(env, common.DataDir)
	// With KG_LLM_BASE_URL set, an LLM writes description summaries and
	// community reports; without, reports are extractive.
	llmCfg, useLLM := llm.ReadConfig(env)
	p, err := boot.Start(ctx, "graph-writer", common, errors.Join(env.Err(), cfgErr, stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	if useLLM {
		llmCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		chat, err := llm.NewChat(llmCfg)
		if err != nil {
			return fmt.Errorf("llm provider: %w", err)
		}
		cache, _, closeCache, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketLLMCache)
		if err != nil {
			return err
		}
		defer closeCache()
		cfg.Chat, cfg.Cache, cfg.Prices = chat, cache, llmCfg.Prices
	}
	store, check, err := backends.OpenGraph(ctx, stores)
	if err != nil {
		return err
	}
	defer store.Close()
	p.Ops.AddCheck(check.Name, check.Check)
	return p.Run(ctx, graphwriter.New(cfg, p.Bus, store).Run)
}
