package ingestapi

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
)

// Modes of GET /api/v1/info: which host the edge runs in.
const (
	ModeServices = "services" // its own binary, cmd/ingest-api
	ModeEmbedded = "embedded" // kg serve, every service in one process
)

// DefaultLLMQueryTimeout is the query timeout when an LLM answers: the query
// service's DefaultLLMTimeout, since a global query maps over reports with
// several calls (tools/internal/serve tests that the two agree).
const DefaultLLMQueryTimeout = 2 * time.Minute

// Stores opens the stores the edge uses (a backends.Set), and names the
// health checks of those opened so far.
type Stores interface {
	KV(ctx context.Context, bucket string) (kv.Store, error)
	Documents(ctx context.Context) (*natsdocs.Store, error)
	Limiter(ctx context.Context) (backends.Limiter, error)
	Checks() []backends.Check
}

// WireDeps are what the edge is built over besides its config.
type WireDeps struct {
	Bus bus.Bus
	// NC carries the queries and the graph-change notices.
	NC     *nats.Conn
	Stores Stores
	Logger *slog.Logger
	// Metrics is the registry the edge serves at /api/v1/metrics: a
	// binary's own, or the one kg serve shares among its services.
	Metrics *prometheus.Registry
	// Mode (ModeServices or ModeEmbedded), Backends and Embedder (the
	// embedding model, "" for hashed) are reported by GET /api/v1/info.
	Mode     string
	Backends backends.Config
	Embedder string
}

// Wire builds the edge from its config and its dependencies: the one
// composition both hosts (cmd/ingest-api and kg serve) use. Its health
// checks are the NATS connection and every store opened in deps.Stores by
// then, so kg serve, which wires the edge last, checks every store of the
// process.
func Wire(ctx context.Context, cfg Config, deps WireDeps) (*Server, error) {
	jobs, err := deps.Stores.KV(ctx, bus.BucketJobs)
	if err != nil {
		return nil, err
	}
	claims, err := deps.Stores.KV(ctx, bus.BucketDedup)
	if err != nil {
		return nil, err
	}
	docs, err := deps.Stores.Documents(ctx)
	if err != nil {
		return nil, err
	}
	limiter, err := deps.Stores.Limiter(ctx)
	if err != nil {
		return nil, err
	}
	chunks, err := chunk.New(cmp.Or(cfg.Chunks, chunk.DefaultConfig()))
	if err != nil {
		return nil, fmt.Errorf("chunker: %w", err)
	}
	cfg.Estimate.ChunkTokens = chunks.ChunkTokens
	if cfg.QueryTimeout <= 0 && cfg.Estimate.Model != "" {
		cfg.QueryTimeout = DefaultLLMQueryTimeout
	}
	cfg.Info = NewServiceInfo(deps.Mode, deps.Backends, cfg.Estimate.Model, deps.Embedder)
	if err := RegisterPipelineMetrics(deps.Metrics, deps.Bus.JS, jobs); err != nil {
		return nil, err
	}
	nc := deps.NC
	health := []HealthCheck{{Name: "nats", Check: func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats connection is %s", nc.Status())
		}
		return nil
	}}}
	for _, c := range deps.Stores.Checks() {
		health = append(health, HealthCheck{Name: c.Name, Check: c.Check})
	}
	// In its own binary the edge opens only the KV store; the graph and
	// vector stores are the query service's, which it asks.
	var remote RemoteHealth
	if deps.Mode == ModeServices {
		remote = AskQueryHealth(nc)
	}
	return New(cfg, Deps{
		Publisher: deps.Bus.Pub, Documents: docs, Jobs: jobs, Claims: claims, Query: nc, QueryStream: nc,
		Logger: deps.Logger, Limiter: limiter, DeadLetters: bus.NewDeadLetterStore(deps.Bus.JS),
		Metrics: deps.Metrics, Health: health, RemoteHealth: remote,
	}), nil
}

// NewServiceInfo is what GET /api/v1/info reports: the embedded stores by
// what they are built on, the extractor as jobs name it ("offline" or
// "llm:<model>"), the embedder by its model or "hashed".
func NewServiceInfo(mode string, stores backends.Config, llmModel, embedModel string) ServiceInfo {
	extractor := "offline"
	if llmModel != "" {
		extractor = "llm:" + llmModel
	}
	return ServiceInfo{Version: boot.Version, Mode: mode, GraphStore: storeName(stores.Graph, "sqlite"),
		VectorStore: storeName(stores.Vector, "sqlite"), KVStore: storeName(stores.KV, "nats"),
		Extractor: extractor, Embedder: cmp.Or(embedModel, "hashed")}
}

func storeName(backend, embedded string) string {
	if backend == backends.Embedded || backend == "" {
		return embedded
	}
	return backend
}
