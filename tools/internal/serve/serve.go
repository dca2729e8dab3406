// Package serve composes every kgraph service in one process around an
// embedded nats-server and the embedded stores: the `kg serve` mode. The
// services are the same code the separate binaries run; only the wiring
// differs.
package serve

import (
	"cmp"
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
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	"github.com/kgraph-dev/kgraph/services/dedup"
	"github.com/kgraph-dev/kgraph/services/extractor"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/services/projection"
	"github.com/kgraph-dev/kgraph/services/query"
	vectorindexer "github.com/kgraph-dev/kgraph/services/vector-indexer"
)

// Config of the one-process mode.
type Config struct {
	// DataDir holds everything: JetStream files, graph.db, vectors.db.
	DataDir string
	// HTTPAddr of the REST edge (port 0 picks one).
	HTTPAddr string
	// NATSListen lets outside systems publish events ("" = no TCP listener).
	NATSListen string
	Bus        bus.Settings
	Extractor  extractor.Config
	// LLM selects LLM extraction; nil means the offline extractor.
	LLM *extractor.LLMConfig
	// Embed selects a provider's embeddings; nil means hashed embeddings of
	// EmbedDim dimensions.
	Embed    *llm.EmbedConfig
	EmbedDim int
	// Edge configures the REST edge: limits, API keys, CORS, approval.
	Edge ingestapi.Config
	// Projection configures job state: the scheduler's period, approval
	// expiry and retention.
	Projection projection.Config
	// GraphWriter configures communities: clustering, summaries, and how
	// rebuilds are coalesced while a namespace ingests. Its LLM is set
	// from LLM.
	GraphWriter graphwriter.Config
	// Stores selects the graph, vector and KV stores, as KG_GRAPH_STORE,
	// KG_VECTOR_STORE and KG_KV_STORE do for the service binaries
	// (backends.ReadConfig). Empty fields take the embedded stores in
	// DataDir.
	Stores backends.Config
	// ShutdownTimeout bounds the drain at shutdown.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("http address is required"))
	}
	if c.EmbedDim == 0 {
		c.EmbedDim = 256
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("a logger is required"))
	}
	c.Stores.DataDir = cmp.Or(c.Stores.DataDir, c.DataDir)
	c.Stores.Graph = cmp.Or(c.Stores.Graph, backends.Embedded)
	c.Stores.Vector = cmp.Or(c.Stores.Vector, backends.Embedded)
	c.Stores.KV = cmp.Or(c.Stores.KV, backends.Embedded)
	c.Stores.GraphPath = cmp.Or(c.Stores.GraphPath, filepath.Join(c.DataDir, "graph.db"))
	c.Stores.VectorPath = cmp.Or(c.Stores.VectorPath, filepath.Join(c.DataDir, "vectors.db"))
	if err := c.Stores.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Bus.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Extractor.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Edge.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

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
	var closers []func() error
	// The stores are the ones the service binaries open, chosen the same
	// way; each comes with its health check.
	var checks []backends.Check
	openKV := func(bucket string) (backends.KVStore, error) {
		store, check, closeStore, err := backends.OpenKV(ctx, cfg.Stores, b.JS, bucket)
		if err != nil {
			return nil, err
		}
		closers = append(closers, closeStore)
		if bucket == bus.BucketJobs {
			checks = append(checks, check)
		}
		return store, nil
	}
	defer func() {
		for _, c := range slices.Backward(closers) {
			if err := c(); err != nil {
				log.Warn("close store", "err", err)
			}
		}
	}()
	jobs, err := openKV(bus.BucketJobs)
	if err != nil {
		return err
	}
	claims, err := openKV(bus.BucketDedup)
	if err != nil {
		return err
	}
	docs, err := natsdocs.Open(ctx, b.JS, bus.BucketDocuments)
	if err != nil {
		return err
	}
	graphStore, graphCheck, err := backends.OpenGraph(ctx, cfg.Stores)
	if err != nil {
		return err
	}
	closers = append(closers, graphStore.Close)
	vectors, vectorCheck, err := backends.OpenVectors(ctx, cfg.Stores)
	if err != nil {
		return err
	}
	closers = append(closers, vectors.Close)
	checks = append(checks, graphCheck, vectorCheck)
	limiter, closeLimiter, err := backends.OpenLimiter(ctx, cfg.Stores)
	if err != nil {
		return err
	}
	closers = append(closers, closeLimiter)
	if cfg.Embed != nil {
		embedCfg := *cfg.Embed
		cfg.Embed = &embedCfg
	}
	if cfg.LLM != nil {
		llmCfg := *cfg.LLM
		cfg.LLM = &llmCfg
	}
	// One registry for every service of the process, served by the edge
	// at /api/v1/metrics.
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := ingestapi.RegisterPipelineMetrics(registry, b.JS, jobs); err != nil {
		return err
	}
	llmMetrics := llm.NewMetrics(registry)
	if cfg.LLM != nil {
		cfg.LLM.Chat.Metrics = llmMetrics
	}
	if cfg.Embed != nil {
		cfg.Embed.Metrics = llmMetrics
	}
	var embed embedder = hashembed.New(cfg.EmbedDim)
	if cfg.Embed != nil {
		if embed, err = llm.NewEmbedder(*cfg.Embed); err != nil {
			return fmt.Errorf("embedding provider: %w", err)
		}
	}
	var extraction extractor.Extraction
	graphWriterCfg := cfg.GraphWriter
	queryCache, err := openKV(bus.BucketQueryCache)
	if err != nil {
		return err
	}
	queryOpts := []query.Option{query.WithCache(queryCache)}
	queryCfg := query.Config{}
	if cfg.LLM != nil {
		cache, err := openKV(bus.BucketLLMCache)
		if err != nil {
			return err
		}
		if extraction, err = extractor.NewLLMExtraction(*cfg.LLM, cache); err != nil {
			return err
		}
		// The same LLM writes description summaries and community reports.
		chat, err := llm.NewChat(cfg.LLM.Chat)
		if err != nil {
			return fmt.Errorf("llm provider: %w", err)
		}
		graphWriterCfg.Chat, graphWriterCfg.Cache, graphWriterCfg.Prices = chat, cache, cfg.LLM.Chat.Prices
		queryOpts = append(queryOpts, query.WithChat(chat))
		queryCfg.Timeout = 2 * time.Minute // map-reduce over reports takes several LLM calls
	}
	if cfg.Edge.QueryTimeout > 0 {
		queryCfg.Timeout = cfg.Edge.QueryTimeout // KG_QUERY_TIMEOUT: the edge and the service agree
	}
	ext, err := extractor.New(cfg.Extractor, withLog(b, log, "extractor"), jobs, docs, extraction)
	if err != nil {
		return err
	}
	runners := map[string]func(context.Context) error{
		"dedup":          dedup.New(dedup.Config{}, withLog(b, log, "dedup"), claims, jobs, docs).Run,
		"extractor":      ext.Run,
		"graph-writer":   graphwriter.New(graphWriterCfg, withLog(b, log, "graph-writer"), graphStore).Run,
		"vector-indexer": vectorindexer.New(vectorindexer.Config{}, withLog(b, log, "vector-indexer"), embed, vectors).Run,
		"projection":     projection.New(cfg.Projection, withLog(b, log, "projection"), jobs, nc).Run,
		"query":          query.New(queryCfg, nc, log.With("component", "query"), embed, vectors, graphStore, queryOpts...).Run,
	}
	edgeCfg := cfg.Edge
	if edgeCfg.QueryTimeout == 0 {
		edgeCfg.QueryTimeout = queryCfg.Timeout
	}
	chunks, err := chunk.New(chunk.Config{MaxTokens: cfg.Extractor.ChunkTokens, OverlapTokens: cfg.Extractor.OverlapTokens})
	if err != nil {
		return err
	}
	edgeCfg.Estimate.ChunkTokens = chunks.ChunkTokens
	if cfg.LLM != nil {
		edgeCfg.Estimate.Model = cfg.LLM.Chat.Model
	}
	edgeCfg.Info = ingestapi.ServiceInfo{Version: boot.Version, Mode: "embedded", GraphStore: storeName(cfg.Stores.Graph, "sqlite"),
		VectorStore: storeName(cfg.Stores.Vector, "sqlite"), KVStore: storeName(cfg.Stores.KV, "nats"),
		Extractor: ext.ExtractorName(), Embedder: "hashed"}
	if cfg.Embed != nil {
		edgeCfg.Info.Embedder = cfg.Embed.Model
	}
	edge := ingestapi.New(edgeCfg, ingestapi.Deps{
		Publisher: b.Pub, Documents: docs, Jobs: jobs, Claims: claims, Query: nc, QueryStream: nc, Logger: log.With("component", "ingest-api"),
		Limiter: limiter, DeadLetters: bus.NewDeadLetterStore(b.JS), Metrics: registry,
		Health: healthChecks(nc, checks),
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	httpSrv := &http.Server{Handler: edge.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	g, gctx := errgroup.WithContext(ctx)
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	runners["edge-answer-cache"] = func(ctx context.Context) error { return edge.WatchGraphChanges(ctx, nc) }
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

// healthChecks are the edge's: the NATS connection, then each store's.
func healthChecks(nc *nats.Conn, stores []backends.Check) []ingestapi.HealthCheck {
	checks := []ingestapi.HealthCheck{{Name: "nats", Check: func(context.Context) error { return natsHealth(nc) }}}
	for _, c := range stores {
		checks = append(checks, ingestapi.HealthCheck{Name: c.Name, Check: c.Check})
	}
	return checks
}

// storeName is what /admin/info calls a backend: the embedded one by what
// it is built on.
func storeName(backend, embedded string) string {
	if backend == backends.Embedded {
		return embedded
	}
	return backend
}

// embedder is what the vector-indexer and the query service embed with.
type embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

func withLog(b bus.Bus, log *slog.Logger, service string) bus.Bus {
	b.Logger = log.With("component", service)
	return b
}

func natsHealth(nc *nats.Conn) error {
	if !nc.IsConnected() {
		return fmt.Errorf("nats connection is %s", nc.Status())
	}
	return nil
}
