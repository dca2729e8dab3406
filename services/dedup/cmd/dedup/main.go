// Command dedup runs kgraph's dedup service as its own process, configured
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
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/services/dedup"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dedup:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg := dedup.Config{Concurrency: env.Int("KG_CONCURRENCY", 4)}
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "dedup", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	claims, check, closeClaims, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketDedup)
	if err != nil {
		return err
	}
	defer closeClaims()
	p.Ops.AddCheck(check.Name, check.Check)
	// Job records tell dedup which submissions were cancelled or expired
	// and where a cancelled job's claim is.
	jobs, _, closeJobs, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketJobs)
	if err != nil {
		return err
	}
	defer closeJobs()
	docs, err := natsdocs.Open(ctx, p.Bus.JS, bus.BucketDocuments)
	if err != nil {
		return err
	}
	return p.Run(ctx, dedup.New(cfg, p.Bus, claims, jobs, docs).Run)
}
