// Package vectorindexer is the vector-indexer service: it embeds each
// chunk's text and its entities' names and upserts them with deterministic
// ids (chunk id; entity key), so a redelivery overwrites instead of adding.
// A deleted document's chunk vectors are removed. Entity vectors are shared
// by every document that mentions the entity, so they stay: a local query
// resolves entity hits through the graph store, which no longer has an
// entity once no document mentions it, and reads more hits than it keeps,
// so such a vector is never answered nor takes a live entity's place.
package vectorindexer

import (
	"context"
	"fmt"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/vector-indexer"

// Vector kinds stored by this service; the query service searches them.
const (
	KindChunk  = "chunk"
	KindEntity = "entity"
)

// Embedder turns texts into vectors.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Vectors stores vectors and removes a document's.
type Vectors interface {
	Upsert(ctx context.Context, items []vector.Item) error
	DeleteDocument(ctx context.Context, namespace, docID string) error
}

// Config of the service.
type Config struct {
	Concurrency int
}

// Service is the vector-indexer.
type Service struct {
	cfg     Config
	bus     bus.Bus
	embed   Embedder
	vectors Vectors
	now     func() time.Time
}

// New builds the service.
func New(cfg Config, b bus.Bus, e Embedder, v Vectors) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	return &Service{cfg: cfg, bus: b, embed: e, vectors: v, now: time.Now}
}

// Run consumes chunk.extracted and document.deleted until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerVectorIndexer, Source, s.cfg.Concurrency,
		bus.On(s.handleExtracted), bus.On(s.handleDeleted))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// EntityText is what an entity vector embeds: its name, so that the vector
// does not depend on which chunk was indexed last.
func EntityText(name string) string { return events.EntityKey(name) }

func (s *Service) handleExtracted(ctx context.Context, e events.Event[events.ChunkExtracted]) error {
	d := e.Data
	texts := []string{d.Text}
	items := []vector.Item{{Namespace: d.Namespace, Kind: KindChunk, ID: d.ChunkID, DocID: d.DocID}}
	seen := map[string]bool{}
	for _, ent := range d.Entities {
		key := events.EntityKey(ent.Name)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		texts = append(texts, EntityText(ent.Name))
		items = append(items, vector.Item{Namespace: d.Namespace, Kind: KindEntity, ID: key})
	}
	vecs, err := s.embed.Embed(ctx, texts)
	if err != nil {
		return fmt.Errorf("embed chunk %s: %w", d.ChunkID, err)
	}
	if len(vecs) != len(items) {
		return fmt.Errorf("embed chunk %s: got %d vectors for %d texts", d.ChunkID, len(vecs), len(items))
	}
	for i := range items {
		items[i].Vector = vecs[i]
	}
	if err := s.vectors.Upsert(ctx, items); err != nil {
		return fmt.Errorf("upsert vectors of chunk %s: %w", d.ChunkID, err)
	}
	indexed := events.ChunkIndexed{JobRef: d.JobRef, ChunkPosition: d.ChunkPosition, Vectors: len(items)}
	return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, indexed, s.now()))
}

// UnindexedID is the id of a deletion job's one document.unindexed: it
// depends on the job alone, so a redelivered or re-published deletion
// reports once.
func UnindexedID(deletionJobID string) string {
	return events.DerivedID(deletionJobID, string(events.TypeDocumentUnindexed))
}

// handleDeleted removes every vector tied to the deleted document (its
// chunks'); deleting an unknown or already deleted document removes nothing
// and still reports, so the deletion job completes.
func (s *Service) handleDeleted(ctx context.Context, e events.Event[events.DocumentDeleted]) error {
	d := e.Data
	if err := s.vectors.DeleteDocument(ctx, d.Namespace, d.DocID); err != nil {
		return fmt.Errorf("delete vectors of document %s: %w", d.DocID, err)
	}
	out := events.New(UnindexedID(d.JobID), Source, events.DocumentUnindexed{JobRef: d.JobRef}, s.now())
	out.TraceParent = e.TraceParent
	return bus.Publish(ctx, s.bus.Pub, out)
}
