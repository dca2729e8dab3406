// Command projection runs kgraph's projection service as its own process,
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
	"github.com/kgraph-dev/kgraph/services/projection"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "projection:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg, cfgErr := projection.ReadConfig(env)
	cfg.Concurrency = env.Int(boot.EnvConcurrency, cfg.Concurrency)
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "projection", common, errors.Join(env.Err(), cfgErr, stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	svc, err := projection.Wire(ctx, cfg, p.Bus, p.NC, set)
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
	return p.Run(ctx, svc.Run)
}
