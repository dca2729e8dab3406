// Package extractor is the extractor service. It splits an accepted
// document into token chunks and publishes one chunk.created per chunk; the
// chunks are then consumed in parallel (across goroutines and replicas) and
// each is run through the extraction step.
package extractor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/services/extractor/internal/offline"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/extractor"

// Extraction turns one chunk of text into entities and relations, and says
// what it cost.
type Extraction interface {
	Name() string
	Extract(ctx context.Context, text string) ([]events.Entity, []events.Relation, events.Usage, error)
}

// offlineExtraction adapts the built-in extractor, which costs nothing.
type offlineExtraction struct{ *offline.Extractor }

func (o offlineExtraction) Extract(ctx context.Context, text string) ([]events.Entity, []events.Relation, events.Usage, error) {
	ents, rels, err := o.Extractor.Extract(ctx, text)
	return ents, rels, events.Usage{}, err
}

// Documents reads document text from the object store.
type Documents interface {
	Get(ctx context.Context, name string) (string, error)
}

// Jobs is the store of the job records the projection writes (the jobs
// bucket); the service reads them through a jobstate.Repository.
type Jobs interface {
	jobstate.Records
}

// Config of the service.
type Config struct {
	// ChunkTokens and OverlapTokens size the chunks (defaults 1200 and 100).
	ChunkTokens   int
	OverlapTokens int
	// DocumentConcurrency and ChunkConcurrency are the events handled at once.
	DocumentConcurrency int
	ChunkConcurrency    int
	// StoppedJobs is how many stopped jobs the service remembers, so that
	// their remaining chunks are dropped without reading the job again
	// (default 4096).
	StoppedJobs int
	// LLM selects LLM extraction (Wire builds it); nil means the offline
	// extractor. With an LLM, ChunkConcurrency defaults to the number of
	// calls the provider takes at once.
	LLM *LLMConfig
}

// Defaults of Config.
const (
	DefaultDocumentConcurrency = 2
	DefaultChunkConcurrency    = 8
)

// ReadConfig reads the service's settings from the environment: the chunk
// sizes (KG_CHUNK_TOKENS, KG_CHUNK_OVERLAP, read as the edge reads them),
// KG_DOCUMENT_CONCURRENCY and the LLM (ReadLLMConfig). The chunk
// concurrency is the host's to read: a service binary takes KG_CONCURRENCY,
// kg serve KG_EXTRACT_CONCURRENCY (its other services do not share it).
func ReadConfig(env *envconf.Reader) Config {
	chunks := chunk.ReadConfig(env)
	cfg := Config{
		ChunkTokens:         chunks.MaxTokens,
		OverlapTokens:       chunks.OverlapTokens,
		DocumentConcurrency: env.Int("KG_DOCUMENT_CONCURRENCY", DefaultDocumentConcurrency),
	}
	if llmCfg, ok := ReadLLMConfig(env); ok {
		cfg.LLM = &llmCfg
	}
	return cfg
}

// Validate checks the config after defaults.
func (c *Config) Validate() error {
	if c.ChunkTokens == 0 {
		c.ChunkTokens = chunk.DefaultMaxTokens
	}
	if c.OverlapTokens == 0 {
		c.OverlapTokens = chunk.DefaultOverlapTokens
	}
	if c.DocumentConcurrency < 1 {
		c.DocumentConcurrency = DefaultDocumentConcurrency
	}
	if c.ChunkConcurrency < 1 {
		c.ChunkConcurrency = DefaultChunkConcurrency
		if c.LLM != nil {
			c.ChunkConcurrency = c.LLM.ChunkConcurrency()
		}
	}
	if c.StoppedJobs < 1 {
		c.StoppedJobs = 4096
	}
	return chunk.Config{MaxTokens: c.ChunkTokens, OverlapTokens: c.OverlapTokens}.Validate()
}

// Service is the extractor.
type Service struct {
	cfg     Config
	bus     bus.Bus
	jobs    *jobstate.Repository
	stops   *stoppedJobs
	docs    Documents
	chunker *chunk.Chunker
	extract Extraction
	now     func() time.Time
}

// New builds the service. jobs is read before each document and each chunk
// of a job not yet seen stopped, so that a cancelled job stops between
// chunks. A nil extraction selects the built-in offline
// extractor (deterministic heuristics, no network; lower quality, and every
// chunk.extracted says so in its extractor field).
func New(cfg Config, b bus.Bus, jobs Jobs, docs Documents, extract Extraction) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("extractor config: %w", err)
	}
	ch, err := chunk.New(chunk.Config{MaxTokens: cfg.ChunkTokens, OverlapTokens: cfg.OverlapTokens})
	if err != nil {
		return nil, fmt.Errorf("chunker: %w", err)
	}
	if extract == nil {
		extract = offlineExtraction{offline.New()}
	}
	return &Service{cfg: cfg, bus: b, jobs: jobstate.NewRepository(jobs), stops: newStoppedJobs(cfg.StoppedJobs),
		docs: docs, chunker: ch, extract: extract, now: time.Now}, nil
}

// ExtractorName names the extraction in use.
func (s *Service) ExtractorName() string { return s.extract.Name() }

// Run consumes accepted documents and created chunks until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	docs, err := s.bus.Consumer(bus.ConsumerExtractorDocuments, Source, s.cfg.DocumentConcurrency, bus.On(s.handleAccepted))
	if err != nil {
		return err
	}
	chunks, err := s.bus.Consumer(bus.ConsumerExtractorChunks, Source, s.cfg.ChunkConcurrency, bus.On(s.handleChunk))
	if err != nil {
		return err
	}
	// Either consumer failing stops the other.
	return bus.RunAll(ctx, docs, chunks)
}

// ChunkID is a chunk's stable id: the same document text always gives the
// same ids, whatever job carries it.
func ChunkID(namespace, docID string, index int, text string) string {
	return events.DerivedID(namespace, docID, fmt.Sprint(index), text)
}

// stopped reports whether the job has ended without completing (cancelled,
// expired or failed), so its remaining work is to be dropped. A job the
// projection has not recorded yet is not stopped.
//
// The job is read for each chunk until it is seen stopped, not once per
// job: the read is how a cancellation reaches the extractor (it has no
// consumer of job.cancelled), and a status remembered while the job runs
// would let a cancelled job go on extracting, at an LLM call a chunk. A
// stop is final, so it is remembered, and the chunks of a cancelled job
// left in the stream are dropped without a read each.
func (s *Service) stopped(ctx context.Context, jobID string) (bool, error) {
	if s.stops.has(jobID) {
		return true, nil
	}
	// Only the status matters here; decoding the rest of the record (its
	// bitsets grow with the document) would be wasted on every chunk.
	st, _, err := s.jobs.JobStatus(ctx, jobID)
	if errors.Is(err, jobstate.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch st {
	case jobstate.StatusCancelled, jobstate.StatusExpired, jobstate.StatusFailed:
		s.stops.add(jobID)
		return true, nil
	}
	return false, nil
}

func (s *Service) handleAccepted(ctx context.Context, e events.Event[events.DocumentAccepted]) error {
	d := e.Data
	if stop, err := s.stopped(ctx, d.JobID); err != nil || stop {
		if stop {
			s.bus.Logger.DebugContext(ctx, "job stopped, document not chunked", "job_id", d.JobID)
		}
		return err
	}
	text := d.Content
	if text == "" {
		var err error
		text, err = s.docs.Get(ctx, d.ContentRef)
		if errors.Is(err, kv.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("document text %q not found", d.ContentRef))
		}
		if err != nil {
			return fmt.Errorf("read document text %q: %w", d.ContentRef, err)
		}
	}
	chunks := s.chunker.Split(text)
	tokens := 0
	for _, c := range chunks {
		tokens += c.Tokens
	}
	chunked := events.DocumentChunked{JobRef: d.JobRef, ChunksTotal: len(chunks), TokensTotal: tokens}
	if err := bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, chunked, s.now())); err != nil {
		return err
	}
	// The chunks go out together and their acks are awaited together: one
	// round trip per document instead of one per chunk. Publishing all
	// chunks again after a crash halfway is harmless: the ids are derived
	// from the cause and the index, so the stream drops copies.
	created := make([]events.Event[events.ChunkCreated], 0, len(chunks))
	for _, c := range chunks {
		data := events.ChunkCreated{JobRef: d.JobRef, Text: c.Text, Tokens: c.Tokens, ChunkPosition: events.ChunkPosition{
			ChunkID: ChunkID(d.Namespace, d.DocID, c.Index, c.Text), Index: c.Index, ChunksTotal: len(chunks)}}
		created = append(created, events.Caused(e, Source, data, s.now(), fmt.Sprint(c.Index)))
	}
	return bus.PublishAll(ctx, s.bus.Pub, created)
}

func (s *Service) handleChunk(ctx context.Context, e events.Event[events.ChunkCreated]) error {
	d := e.Data
	if stop, err := s.stopped(ctx, d.JobID); err != nil || stop {
		if stop {
			s.bus.Logger.DebugContext(ctx, "job stopped, chunk not extracted", "job_id", d.JobID, "chunk_id", d.ChunkID)
		}
		return err
	}
	ents, rels, usage, err := s.extract.Extract(ctx, d.Text)
	if err != nil {
		return fmt.Errorf("extract chunk %s: %w", d.ChunkID, err)
	}
	if ents == nil {
		ents = []events.Entity{}
	}
	if rels == nil {
		rels = []events.Relation{}
	}
	out := events.ChunkExtracted{JobRef: d.JobRef, ChunkPosition: d.ChunkPosition, Text: d.Text, Tokens: d.Tokens,
		Entities: ents, Relations: rels, Extractor: s.extract.Name()}
	if usage != (events.Usage{}) {
		out.Usage = &usage
	}
	return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, out, s.now()))
}
