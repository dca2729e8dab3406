// Command query runs kgraph's query service as its own process, configured
// from the environment (see the README's configuration table).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
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
	cfg := query.Config{Concurrency: env.Int("KG_CONCURRENCY", 16), Timeout: env.Duration("KG_QUERY_TIMEOUT", 0)}
	graphPath := env.String("KG_GRAPH_PATH", common.DataPath("graph.db"))
	vectorPath := env.String("KG_VECTOR_PATH", common.DataPath("vectors.db"))
	dim := env.Int("KG_EMBED_DIM", 256)
	embedCfg, useProvider := llm.ReadEmbedConfig(env)
	p, err := boot.Start(ctx, "query", common, env.Err(), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	graphStore, err := sqlitegraph.Open(ctx, graphPath)
	if err != nil {
		return err
	}
	defer graphStore.Close()
	vectors, err := sqlitevec.Open(ctx, vectorPath)
	if err != nil {
		return err
	}
	defer vectors.Close()
	var embed query.Embedder = hashembed.New(dim)
	if useProvider {
		if embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	return p.Run(ctx, query.New(cfg, p.NC, p.Log, embed, vectors, graphStore).Run)
}
