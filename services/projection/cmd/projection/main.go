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
	"github.com/kgraph-dev/kgraph/libs/bus"
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
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "projection", common, errors.Join(env.Err(), cfgErr, stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	jobs, check, closeJobs, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketJobs)
	if err != nil {
		return err
	}
	defer closeJobs()
	p.Ops.AddCheck(check.Name, check.Check)
	return p.Run(ctx, projection.New(cfg, p.Bus, jobs, p.NC).Run)
}
