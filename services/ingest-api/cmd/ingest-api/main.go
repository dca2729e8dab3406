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
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/llm"
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
	// Info names the embedding model only when a provider embeds (as the
	// vector-indexer decides); without one the embeddings are hashed.
	var embedModel string
	if embedCfg, ok := llm.ReadEmbedConfig(env); ok {
		embedModel = embedCfg.Model
	}
	var validateErr error
	if cfgErr == nil {
		validateErr = cfg.Validate()
	}
	p, err := boot.Start(ctx, "ingest-api", common, errors.Join(env.Err(), stores.Validate(), cfgErr, validateErr), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	if cfg.Auth.Disabled {
		p.Log.Warn("AUTHENTICATION IS OFF (KG_AUTH_DISABLED=true): anyone who reaches this port can read, write and administer every namespace")
	}
	set := backends.NewSet(stores, p.Bus.JS)
	defer set.Close()
	edge, err := ingestapi.Wire(ctx, cfg, ingestapi.WireDeps{Bus: p.Bus, NC: p.NC, Stores: set, Logger: p.Log,
		Metrics: p.Ops.Registry, Mode: ingestapi.ModeServices, Backends: stores, Embedder: embedModel})
	if err != nil {
		return err
	}
	p.AddChecks(set.Checks())
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
