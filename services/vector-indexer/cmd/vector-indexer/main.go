// Command vector-indexer runs kgraph's vector-indexer service as its own
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
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	vectorindexer "github.com/kgraph-dev/kgraph/services/vector-indexer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vector-indexer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg := vectorindexer.Config{Concurrency: env.Int(boot.EnvConcurrency, 0)}
	dim := env.Int("KG_EMBED_DIM", hashembed.DefaultDim)
	embedCfg, useProvider := llm.ReadEmbedConfig(env)
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "vector-indexer", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	var embed vectorindexer.Embedder = hashembed.New(dim)
	if useProvider {
		embedCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		if embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	svc, err := vectorindexer.Wire(ctx, cfg, p.Bus, embed, set)
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
	return p.Run(ctx, svc.Run)
}
