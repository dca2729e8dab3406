// Package serve composes every kgraph service in one process around an
// embedded nats-server and the embedded stores: the `kg serve` mode. The
// services are the same code the separate binaries run; only the wiring
// differs.
package serve

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	"github.com/kgraph-dev/kgraph/services/dedup"
	"github.com/kgraph-dev/kgraph/services/extractor"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/services/projection"
	"github.com/kgraph-dev/kgraph/services/query"
	vectorindexer "github.com/kgraph-dev/kgraph/services/vector-indexer"
)

// Ready describes the running process.
type Ready struct {
	HTTPAddr  string
	NATSURL   string
	Extractor string
}

// Run starts everything, calls ready once it serves, and runs until ctx
// ends; then it drains in order: HTTP first (no new submissions), then the
// consumers (in-flight events finish and are acked, the rest stay in the
// stream), then the NATS connection and server, then the stores.
func Run(ctx context.Context, cfg Config, ready func(Ready)) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("serve config: %w", err)
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("kg-serve")
	if err != nil {
		return err
	}
	defer nc.Close()
	b, err := boot.NewBus(ctx, nc, cfg.Bus, log)
	if err != nil {
		return err
	}
	// One set of stores for the seven services, opened as the binaries
	// open theirs: one SQLite graph and vector file, one client per KV
	// bucket, however many services use it.
	stores := backends.NewSet(cfg.Stores, b.JS)
	defer func() {
		if err := stores.Close(); err != nil {
			log.Warn("close stores", "err", err)
		}
	}()
	// One registry for every service of the process, served by the edge
	// at /api/v1/metrics.
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	llmMetrics := llm.NewMetrics(registry)
	// One embedder for the vector-indexer and the query service.
	var embed embedder = hashembed.New(cfg.EmbedDim)
	if cfg.Embed != nil {
		embedCfg := *cfg.Embed
		embedCfg.Metrics = llmMetrics
		if embed, err = llm.NewEmbedder(embedCfg); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	gwDeps := graphwriter.Deps{Bus: withLog(b, log, "graph-writer"), Stores: stores}
	queryDeps := query.Deps{NC: nc, Logger: log.With("component", "query"), Stores: stores, Embed: embed}
	svc := serviceConfigs(cfg)
	if cfg.LLM != nil {
		// One client, and so one limit on concurrent calls, writes the
		// graph-writer's summaries and reports and the query answers; the
		// extractor builds its own from the same config.
		chatCfg := cfg.LLM.Chat
		chatCfg.Metrics = llmMetrics
		chat, err := llm.NewChat(chatCfg)
		if err != nil {
			return fmt.Errorf("llm provider: %w", err)
		}
		gwDeps.Chat, gwDeps.Prices = chat, cfg.LLM.Chat.Prices
		queryDeps.Chat = chat
	}
	dd, err := dedup.Wire(ctx, svc.dedup, withLog(b, log, "dedup"), stores)
	if err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	ext, err := extractor.Wire(ctx, svc.extractor, extractor.Deps{Bus: withLog(b, log, "extractor"), Stores: stores, LLMMetrics: llmMetrics})
	if err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	gw, err := graphwriter.Wire(ctx, svc.graphWriter, gwDeps)
	if err != nil {
		return fmt.Errorf("graph-writer: %w", err)
	}
	vi, err := vectorindexer.Wire(ctx, svc.vectorIndexer, withLog(b, log, "vector-indexer"), embed, stores)
	if err != nil {
		return fmt.Errorf("vector-indexer: %w", err)
	}
	proj, err := projection.Wire(ctx, svc.projection, withLog(b, log, "projection"), nc, stores)
	if err != nil {
		return fmt.Errorf("projection: %w", err)
	}
	qs, err := query.Wire(ctx, svc.query, queryDeps)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	var embedModel string
	if cfg.Embed != nil {
		embedModel = cfg.Embed.Model
	}
	// The edge is wired last: its health checks are those of every store
	// opened by then, the whole process's.
	edge, err := ingestapi.Wire(ctx, svc.edge, ingestapi.WireDeps{Bus: b, NC: nc, Stores: stores, Logger: log.With("component", "ingest-api"),
		Metrics: registry, Mode: ingestapi.ModeEmbedded, Backends: cfg.Stores, Embedder: embedModel})
	if err != nil {
		return fmt.Errorf("ingest-api: %w", err)
	}
	runners := map[string]func(context.Context) error{
		"dedup":             dd.Run,
		"extractor":         ext.Run,
		"graph-writer":      gw.Run,
		"vector-indexer":    vi.Run,
		"projection":        proj.Run,
		"query":             qs.Run,
		"edge-answer-cache": func(ctx context.Context) error { return edge.WatchGraphChanges(ctx, nc) },
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	httpSrv := &http.Server{Handler: edge.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	g, gctx := errgroup.WithContext(ctx)
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	for name, run := range runners {
		g.Go(func() error {
			if err := run(svcCtx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: draining HTTP, then consumers")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		err := httpSrv.Shutdown(sctx)
		stopServices()
		return err
	})
	if ready != nil {
		ready(Ready{HTTPAddr: ln.Addr().String(), NATSURL: srv.ClientURL(), Extractor: ext.ExtractorName()})
	}
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("drain nats connection", "err", derr)
	}
	return err
}

// embedder is what the vector-indexer and the query service embed with.
type embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

func withLog(b bus.Bus, log *slog.Logger, service string) bus.Bus {
	b.Logger = log.With("component", service)
	return b
}
