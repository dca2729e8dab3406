// Command ingest-api runs kgraph's REST edge as its own process, configured
// from the environment (see the README's configuration table).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	addr := env.String("KG_HTTP_ADDR", ":8080")
	cfg := ingestapi.Config{
		MaxBodyBytes: int64(env.Int("KG_MAX_BODY_BYTES", 8<<20)),
		QueryTimeout: env.Duration("KG_QUERY_TIMEOUT", 30*time.Second),
	}
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "ingest-api", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	jobs, jobsCheck, closeJobs, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketJobs)
	if err != nil {
		return err
	}
	defer closeJobs()
	claims, _, closeClaims, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketDedup)
	if err != nil {
		return err
	}
	defer closeClaims()
	docs, err := natsdocs.Open(ctx, p.Bus.JS, bus.BucketDocuments)
	if err != nil {
		return err
	}
	edge := ingestapi.New(cfg, ingestapi.Deps{
		Publisher: p.Bus.Pub, Documents: docs, Jobs: jobs, Claims: claims, Query: p.NC, QueryStream: p.NC, Logger: p.Log,
		Health: []ingestapi.HealthCheck{
			{Name: "nats", Check: func(context.Context) error {
				if !p.NC.IsConnected() {
					return fmt.Errorf("nats connection is %s", p.NC.Status())
				}
				return nil
			}},
			{Name: jobsCheck.Name, Check: jobsCheck.Check},
		},
	})
	srv := &http.Server{Addr: addr, Handler: edge.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return p.Run(ctx, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		p.Log.Info("listening", "addr", addr)
		select {
		case err := <-errc:
			return fmt.Errorf("http: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})
}
