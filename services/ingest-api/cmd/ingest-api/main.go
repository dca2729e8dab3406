// Command ingest-api runs kgraph's REST edge as its own process, configured
// from the environment (see the README's configuration table).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/kgraph-dev/kgraph/libs/chunk"
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
	cfg, cfgErr := ingestapi.ReadConfig(env)
	stores := backends.ReadConfig(env, common.DataDir)
	chunks, chunkErr := chunk.New(chunk.Config{MaxTokens: env.Int("KG_CHUNK_TOKENS", 1200), OverlapTokens: env.Int("KG_CHUNK_OVERLAP", 100)})
	if chunkErr == nil {
		cfg.Estimate.ChunkTokens = chunks.ChunkTokens
	}
	cfg.Info = ingestapi.ServiceInfo{Version: boot.Version, Mode: "services", GraphStore: stores.Graph, VectorStore: stores.Vector, KVStore: stores.KV,
		Extractor: cmp.Or(cfg.Estimate.Model, "offline"), Embedder: cmp.Or(env.String("KG_EMBED_MODEL", ""), "hashed")}
	var validateErr error
	if cfgErr == nil {
		validateErr = cfg.Validate()
	}
	p, err := boot.Start(ctx, "ingest-api", common, errors.Join(env.Err(), stores.Validate(), cfgErr, chunkErr, validateErr), stdout)
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
	limiter, closeLimiter, err := backends.OpenLimiter(ctx, stores)
	if err != nil {
		return err
	}
	defer closeLimiter()
	if cfg.Auth.Disabled {
		p.Log.Warn("AUTHENTICATION IS OFF (KG_AUTH_DISABLED=true): anyone who reaches this port can read, write and administer every namespace")
	}
	edge := ingestapi.New(cfg, ingestapi.Deps{
		Publisher: p.Bus.Pub, Documents: docs, Jobs: jobs, Claims: claims, Query: p.NC, QueryStream: p.NC, Logger: p.Log,
		Limiter: limiter, Metrics: p.Ops.Registry, DeadLetters: bus.NewDeadLetterStore(p.Bus.JS),
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
	if err := ingestapi.RegisterPipelineMetrics(p.Ops.Registry, p.Bus.JS, jobs); err != nil {
		return err
	}
	srv := &http.Server{Addr: addr, Handler: edge.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return p.Run(ctx, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		p.Log.Info("listening", "addr", addr)
		watchErr := make(chan error, 1)
		go func() { watchErr <- edge.WatchGraphChanges(ctx, p.NC) }()
		select {
		case err := <-errc:
			return fmt.Errorf("http: %w", err)
		case err := <-watchErr:
			if err != nil {
				return err
			}
			<-ctx.Done()
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
