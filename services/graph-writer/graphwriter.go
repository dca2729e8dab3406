// Package graphwriter is the graph-writer service: it merges each chunk's
// entities and relations into the graph store. A merge replaces the chunk's
// previous contribution, so a redelivered chunk never counts twice.
package graphwriter

import (
	"context"
	"fmt"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/graph-writer"

// Merger merges one chunk's graph idempotently.
type Merger interface {
	MergeChunk(ctx context.Context, c graph.ChunkGraph) (graph.MergeResult, error)
}

// Config of the service.
type Config struct {
	Concurrency int
}

// Service is the graph-writer.
type Service struct {
	cfg   Config
	bus   bus.Bus
	graph Merger
	now   func() time.Time
}

// New builds the service.
func New(cfg Config, b bus.Bus, g Merger) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	return &Service{cfg: cfg, bus: b, graph: g, now: time.Now}
}

// Run consumes chunk.extracted until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerGraphWriter, Source, s.cfg.Concurrency, bus.On(s.handleExtracted))
	if err != nil {
		return err
	}
	return c.Run(ctx)
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
