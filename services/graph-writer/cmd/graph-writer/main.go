// Command graph-writer runs kgraph's graph-writer service as its own
// process, configured from the environment (see the README's configuration
// table).
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
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
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
	cfg := graphwriter.Config{Concurrency: env.Int("KG_CONCURRENCY", 4)}
	graphPath := env.String("KG_GRAPH_PATH", common.DataPath("graph.db"))
	p, err := boot.Start(ctx, "graph-writer", common, env.Err(), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	store, err := sqlitegraph.Open(ctx, graphPath)
	if err != nil {
		return err
	}
	defer store.Close()
	return p.Run(ctx, graphwriter.New(cfg, p.Bus, store).Run)
}
