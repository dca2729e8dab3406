// Package graphwriter is the graph-writer service: it merges each chunk's
// entities and relations into the graph store, and after jobs complete it
// rebuilds the namespace's GraphRAG communities and their reports. A merge
// replaces the chunk's previous contribution, so a redelivered chunk never
// counts twice; a rebuild only runs when the graph changed since the last
// one, and only new or changed communities get a new report.
package graphwriter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/graph-writer/internal/llmcall"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/graph-writer"

// Defaults of Config.
const (
	DefaultConcurrency            = 4
	DefaultMaxClusterSize         = 10
	DefaultSummaryThresholdTokens = 500
	DefaultReportBudgetTokens     = 12000
	DefaultLLMConcurrency         = 4
	DefaultBuildTimeout           = 30 * time.Minute
	// DefaultQuietPeriod and DefaultMaxStaleness are the environment's
	// defaults (ReadConfig); a Config without them builds at once.
	DefaultQuietPeriod  = 5 * time.Second
	DefaultMaxStaleness = 10 * time.Minute
)

// Store is what the graph-writer needs of the graph store (a graph.Store;
// see graphtest for the contract): merging one chunk's graph
// idempotently, subtracting a deleted document (which must advance the
// namespace's generation, so query caches and communities notice), and
// what the community builder reads and writes.
type Store interface {
	MergeChunk(ctx context.Context, c graph.ChunkGraph) (graph.MergeResult, error)
	DeleteDocument(ctx context.Context, namespace, docID string) error
	Generation(ctx context.Context, namespace string) (uint64, error)
	EachEdge(ctx context.Context, namespace string, fn func(graph.Edge) error) error
	Entities(ctx context.Context, namespace string, keys []string) ([]graph.Entity, error)
	RelationsAmong(ctx context.Context, namespace string, keys []string) ([]graph.Relation, error)
	SetSummaries(ctx context.Context, namespace string, summaries []graph.Summary) error
	CommunitiesByID(ctx context.Context, namespace string, level int, ids []string) ([]graph.Community, error)
	CommunitiesBuilt(ctx context.Context, namespace string) (graph.CommunitiesBuild, error)
	ReplaceCommunities(ctx context.Context, namespace string, generation uint64, cs []graph.Community) error
}

// Chat is the LLM that writes description summaries and community reports
// (*llm.Chat).
type Chat = llmcall.Chat

// Cache stores LLM answers keyed on model and prompt (the kg_llm_cache
// bucket the extractor uses too).
type Cache = llmcall.Cache

// Config of the service.
type Config struct {
	// Concurrency is the number of chunks merged at once.
	Concurrency int
	// MaxClusterSize is the community size above which Leiden splits a
	// community again at the next level.
	MaxClusterSize int
	// SummaryThresholdTokens: an entity whose joined descriptions exceed
	// it (estimated at four bytes a token) gets an LLM summary.
	SummaryThresholdTokens int
	// ReportBudgetTokens bounds a community report's input tables.
	ReportBudgetTokens int
	// Seed of the clustering, which is deterministic for a seed.
	Seed uint64
	// LLMConcurrency bounds the summaries and reports asked at once.
	LLMConcurrency int
	// BuildTimeout bounds one rebuild of a namespace's communities.
	BuildTimeout time.Duration
	// QuietPeriod coalesces rebuilds while a namespace is ingesting: a
	// completed job rebuilds the communities (and writes the summaries and
	// reports) only once the namespace's graph has not changed for this
	// long, so a batch of documents costs one rebuild, not one per job.
	// Zero rebuilds at once.
	QuietPeriod time.Duration
	// MaxStaleness bounds the wait for quiet: a rebuild starts at the
	// latest this long after the job completed, even while more documents
	// keep arriving. Default DefaultMaxStaleness when QuietPeriod is set.
	MaxStaleness time.Duration
	// Chat writes summaries and reports. Nil means no LLM: no summaries,
	// and extractive reports.
	Chat Chat
	// Cache, optional, keeps the LLM's answers, so a rebuild that is
	// retried or repeats a prompt costs no call.
	Cache Cache
	// Prices of the chat model, for the usage communities.updated reports.
	Prices llm.PriceTable
}

func (c Config) withDefaults() Config {
	defaults := []struct {
		value *int
		def   int
	}{
		{&c.Concurrency, DefaultConcurrency},
		{&c.MaxClusterSize, DefaultMaxClusterSize},
		{&c.SummaryThresholdTokens, DefaultSummaryThresholdTokens},
		{&c.ReportBudgetTokens, DefaultReportBudgetTokens},
		{&c.LLMConcurrency, DefaultLLMConcurrency},
	}
	for _, d := range defaults {
		if *d.value < 1 {
			*d.value = d.def
		}
	}
	if c.BuildTimeout <= 0 {
		c.BuildTimeout = DefaultBuildTimeout
	}
	if c.QuietPeriod > 0 && c.MaxStaleness <= 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	return c
}

// ReadConfig reads the service's settings from the environment, as the
// graph-writer binary and kg serve both do.
func ReadConfig(env *envconf.Reader) (Config, error) {
	cfg := Config{
		MaxClusterSize:         env.Int("KG_COMMUNITY_MAX_SIZE", DefaultMaxClusterSize),
		SummaryThresholdTokens: env.Int("KG_SUMMARY_THRESHOLD_TOKENS", DefaultSummaryThresholdTokens),
		QuietPeriod:            env.Duration("KG_COMMUNITY_QUIET", DefaultQuietPeriod),
		MaxStaleness:           env.Duration("KG_COMMUNITY_MAX_STALENESS", DefaultMaxStaleness),
	}
	var errs []error
	if cfg.QuietPeriod < 0 {
		errs = append(errs, fmt.Errorf("KG_COMMUNITY_QUIET=%s must not be negative (0 rebuilds after every job)", cfg.QuietPeriod))
	}
	if cfg.MaxStaleness < cfg.QuietPeriod || cfg.MaxStaleness+DefaultBuildTimeout/2 > DefaultBuildTimeout {
		errs = append(errs, fmt.Errorf("KG_COMMUNITY_MAX_STALENESS=%s must be between KG_COMMUNITY_QUIET (%s) and %s",
			cfg.MaxStaleness, cfg.QuietPeriod, DefaultBuildTimeout/2))
	}
	return cfg, errors.Join(errs...)
}

// Service is the graph-writer.
type Service struct {
	cfg   Config
	bus   bus.Bus
	graph Store
	// llm is nil without a Chat.
	llm *llmcall.Client
	now func() time.Time
}

// New builds the service.
func New(cfg Config, b bus.Bus, g Store) *Service {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, bus: b, graph: g, now: time.Now}
	if cfg.Chat != nil {
		s.llm = llmcall.New(cfg.Chat, cfg.Cache, cfg.Prices)
	}
	return s
}

// Run consumes chunk.extracted, document.deleted and job.completed until ctx
// ends, then drains both consumers.
func (s *Service) Run(ctx context.Context) error {
	merges, err := s.bus.Consumer(bus.ConsumerGraphWriter, Source, s.cfg.Concurrency,
		bus.On(s.handleExtracted), bus.On(s.handleDeleted))
	if err != nil {
		return err
	}
	// A build can take many LLM calls; shutting down interrupts it rather
	// than waiting for it (the redelivered job.completed builds again, and
	// the LLM cache answers the calls already made).
	route := bus.On(func(hctx context.Context, e events.Event[events.JobCompleted]) error {
		hctx, cancel := context.WithCancel(hctx)
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		return s.handleCompleted(hctx, e)
	})
	// One build at a time: a build covers every change before it, so the
	// completions queued behind it find nothing left to do.
	communities, err := bus.NewConsumer(s.bus.JS, s.bus.Pub, bus.ConsumerConfig{
		Consumer: bus.ConsumerCommunities, Routes: []bus.Route{route}, Concurrency: 1,
		HandlerTimeout: s.cfg.BuildTimeout, Settings: s.bus.Settings, Source: Source,
		Logger: s.bus.Logger, Validator: s.bus.Validator, Unavailable: s.bus.Unavailable,
	})
	if err != nil {
		return err
	}

	// Either consumer failing stops the other.
	return bus.RunAll(ctx, merges, communities)
}

func (s *Service) handleExtracted(ctx context.Context, e events.Event[events.ChunkExtracted]) error {
	d := e.Data
	res, err := s.graph.MergeChunk(ctx, graph.ChunkGraph{
		Namespace: d.Namespace, DocID: d.DocID, JobID: d.JobID, ChunkID: d.ChunkID, Index: d.Index,
		Text: d.Text, Tokens: d.Tokens, Entities: d.Entities, Relations: d.Relations,
	})
	if err != nil {
		return fmt.Errorf("merge chunk %s: %w", d.ChunkID, err)
	}
	merged := events.ChunkMerged{JobRef: d.JobRef, ChunkPosition: d.ChunkPosition,
		Entities: res.Entities, Relations: res.Relations, DocEntities: res.DocEntities, DocRelations: res.DocRelations}
	return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, merged, s.now()))
}

// UnmergedID is the id of a deletion job's one document.unmerged: it depends
// on the job alone, so a redelivered or re-published deletion reports once.
func UnmergedID(deletionJobID string) string {
	return events.DerivedID(deletionJobID, string(events.TypeDocumentUnmerged))
}

// handleDeleted subtracts a deleted document from the graph: its chunks, its
// share of every description, and the entities and relations no other
// document mentions. The store bumps the generation, so the communities
// rebuilt after the deletion job completes cover the change.
func (s *Service) handleDeleted(ctx context.Context, e events.Event[events.DocumentDeleted]) error {
	d := e.Data
	if err := s.graph.DeleteDocument(ctx, d.Namespace, d.DocID); err != nil {
		return fmt.Errorf("delete document %s from the graph: %w", d.DocID, err)
	}
	out := events.New(UnmergedID(d.JobID), Source, events.DocumentUnmerged{JobRef: d.JobRef}, s.now())
	out.TraceParent = e.TraceParent
	return bus.Publish(ctx, s.bus.Pub, out)
}
