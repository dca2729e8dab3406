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
	cfg := vectorindexer.Config{Concurrency: env.Int("KG_CONCURRENCY", 4)}
	dim := env.Int("KG_EMBED_DIM", 256)
	embedCfg, useProvider := llm.ReadEmbedConfig(env)
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "vector-indexer", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	store, check, err := backends.OpenVectors(ctx, stores)
	if err != nil {
		return err
	}
	defer store.Close()
	p.Ops.AddCheck(check.Name, check.Check)
	var embed vectorindexer.Embedder = hashembed.New(dim)
	if useProvider {
		embedCfg.Metrics = llm.NewMetrics(p.Ops.Registry)
		if embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	return p.Run(ctx, vectorindexer.New(cfg, p.Bus, embed, store).Run)
}
