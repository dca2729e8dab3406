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
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/query"
)

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
	cfg := query.ReadConfig(env)
	cfg.Concurrency = env.Int(boot.EnvConcurrency, 0)
	chatCfg, useLLM := llm.ReadConfig(env)
	stores := backends.ReadConfig(env, common.DataDir)
	dim := env.Int("KG_EMBED_DIM", hashembed.DefaultDim)
	embedCfg, useProvider := llm.ReadEmbedConfig(env)
	p, err := boot.Start(ctx, "query", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	deps := query.Deps{NC: p.NC, Logger: p.Log, Embed: hashembed.New(dim)}
	if useProvider || useLLM {
		metrics := llm.NewMetrics(p.Ops.Registry)
		embedCfg.Metrics, chatCfg.Metrics = metrics, metrics
	}
	if useProvider {
		if deps.Embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	if useLLM {
		chat, err := llm.NewChat(chatCfg)
		if err != nil {
			return fmt.Errorf("chat provider: %w", err)
		}
		deps.Chat = chat
	}
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	deps.Stores = set
	svc, err := query.Wire(ctx, cfg, deps)
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
	return p.Run(ctx, svc.Run)
}
