// Command extractor runs kgraph's extractor service as its own process,
// configured from the environment (see the README's configuration table).
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
	"github.com/kgraph-dev/kgraph/services/extractor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "extractor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg := extractor.ReadConfig(env)
	// 0: the default, the LLM's concurrent calls with one.
	cfg.ChunkConcurrency = env.Int(boot.EnvConcurrency, 0)
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "extractor", common, errors.Join(env.Err(), cfg.Validate(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	svc, err := extractor.Wire(ctx, cfg, extractor.Deps{Bus: p.Bus, Stores: set, LLMMetrics: llm.NewMetrics(p.Ops.Registry)})
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
	p.Log.Info("extraction", "extractor", svc.ExtractorName())
	return p.Run(ctx, svc.Run)
}
