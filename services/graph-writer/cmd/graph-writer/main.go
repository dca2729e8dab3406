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
	cfg.Concurrency = env.Int(boot.EnvConcurrency, cfg.Concurrency)
	stores := backends.ReadConfig(env, common.DataDir)
	// With KG_LLM_BASE_URL set, an LLM writes description summaries and
	// community reports; without, reports are extractive.
	llmCfg, useLLM := llm.ReadConfig(env)
	p, err := boot.Start(ctx, "graph-writer", common, errors.Join(env.Err(), cfgErr, stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	deps := graphwriter.Deps{Bus: p.Bus}
	if useLLM {
		llmCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		chat, err := llm.NewChat(llmCfg)
		if err != nil {
			return fmt.Errorf("llm provider: %w", err)
		}
		deps.Chat, deps.Prices = chat, llmCfg.Prices
	}
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	deps.Stores = set
	svc, err := graphwriter.Wire(ctx, cfg, deps)
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
	return p.Run(ctx, svc.Run)
}
