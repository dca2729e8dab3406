package sqlitegraph_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
)

// BenchmarkMergeChunk merges chunks of 10 entities and 10 relations, drawn
// from a vocabulary of 1,000 names, into documents of 100 chunks.
func BenchmarkMergeChunk(b *testing.B) {
	s, err := sqlitegraph.Open(b.Context(), filepath.Join(b.TempDir(), "graph.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const (
		entitiesPerChunk = 10
		chunksPerDoc     = 100
		vocabulary       = 1000
	)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		es := make([]events.Entity, entitiesPerChunk)
		rs := make([]events.Relation, entitiesPerChunk)
		for j := range es {
			es[j] = events.Entity{
				Name:        fmt.Sprintf("Entity %d", (i*7+j*13)%vocabulary),
				Type:        "THING",
				Description: fmt.Sprintf("described in chunk %d", i),
			}
		}
		for j := range rs {
			rs[j] = events.Relation{
				Source: es[j].Name, Target: es[(j+1)%entitiesPerChunk].Name,
				Description: "related", Keywords: []string{"k"}, Weight: 1,
			}
		}
		_, err := s.MergeChunk(b.Context(), graph.ChunkGraph{
			Namespace: "bench", DocID: fmt.Sprintf("doc-%d", i/chunksPerDoc), JobID: "job",
			ChunkID: fmt.Sprintf("%032x", i), Index: i % chunksPerDoc, Text: "chunk text", Tokens: 100,
			Entities: es, Relations: rs,
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
