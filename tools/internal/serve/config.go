package serve

import (
	"cmp"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/llm"
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
	// LLM is the process's LLM: it extracts (it replaces Extractor.LLM),
	// writes the graph-writer's summaries and reports, and answers
	// queries. Nil means the offline extractor and extractive answers.
	LLM *extractor.LLMConfig
	// Embed selects a provider's embeddings; nil means hashed embeddings of
	// EmbedDim dimensions.
	Embed    *llm.EmbedConfig
	EmbedDim int
	// Edge configures the REST edge: limits, API keys, CORS, approval.
	Edge ingestapi.Config
	// Query configures the query service (query.ReadConfig); its prices
	// are set from LLM when empty.
	Query query.Config
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
		c.EmbedDim = hashembed.DefaultDim
	}
	c.Extractor.LLM = c.LLM
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

// ReadConfig reads the services' settings from the environment with each
// service's own ReadConfig, as its binary does, so the two hosts cannot
// read them differently. The one difference is the concurrency:
// KG_CONCURRENCY is one binary's setting, so kg serve does not read it; its
// extractor takes KG_EXTRACT_CONCURRENCY, every other service its default.
// The host's own settings (DataDir, HTTPAddr, NATSListen, Bus, Logger) are
// left to the caller.
func ReadConfig(env *envconf.Reader, dataDir string) (Config, error) {
	var errs []error
	edge, err := ingestapi.ReadConfig(env)
	errs = append(errs, err)
	proj, err := projection.ReadConfig(env)
	errs = append(errs, err)
	gw, err := graphwriter.ReadConfig(env)
	errs = append(errs, err)
	cfg := Config{
		Edge: edge, Projection: proj, GraphWriter: gw,
		Extractor: extractor.ReadConfig(env),
		Query:     query.ReadConfig(env),
		// KG_GRAPH_STORE=neo4j, KG_VECTOR_STORE=qdrant and KG_KV_STORE=redis
		// (with their URLs) put kg serve on the production stores.
		Stores:   backends.ReadConfig(env, dataDir),
		EmbedDim: env.Int("KG_EMBED_DIM", hashembed.DefaultDim),
	}
	cfg.Extractor.ChunkConcurrency = env.Int("KG_EXTRACT_CONCURRENCY", 0) // 0: the extractor's default
	cfg.LLM = cfg.Extractor.LLM
	if embedCfg, ok := llm.ReadEmbedConfig(env); ok {
		cfg.Embed = &embedCfg
	}
	errs = append(errs, env.Err())
	return cfg, errors.Join(errs...)
}

// services are the configs kg serve wires its services with.
type services struct {
	dedup         dedup.Config
	extractor     extractor.Config
	graphWriter   graphwriter.Config
	vectorIndexer vectorindexer.Config
	projection    projection.Config
	query         query.Config
	edge          ingestapi.Config
}

// serviceConfigs derives each service's config from the validated Config.
// Where a binary reads a setting from the environment, kg serve takes it
// from the one place in the process that holds it: the LLM from LLM, the
// edge's chunk sizes from the extractor's, one query timeout for the edge
// and the query service.
func serviceConfigs(cfg Config) services {
	s := services{extractor: cfg.Extractor, graphWriter: cfg.GraphWriter, projection: cfg.Projection,
		query: cfg.Query, edge: cfg.Edge}
	// The graph-writer's LLM comes with its Deps; the query's timeout
	// defaults to the edge's when only that is set.
	s.query.Timeout = cmp.Or(s.query.Timeout, s.edge.QueryTimeout)
	s.edge.QueryTimeout = cmp.Or(s.edge.QueryTimeout, s.query.Timeout)
	s.edge.Chunks = chunk.Config{MaxTokens: cfg.Extractor.ChunkTokens, OverlapTokens: cfg.Extractor.OverlapTokens}
	if cfg.LLM != nil {
		s.edge.Estimate.Model = cfg.LLM.Chat.Model
		if s.query.Prices == nil {
			s.query.Prices = cfg.LLM.Chat.Prices
		}
	}
	return s
}
