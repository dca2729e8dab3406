package neo4jgraph_test

import (
	"fmt"
	"testing"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

const (
	benchEntitiesPerChunk = 10
	benchChunksPerDoc     = 100
	benchVocabulary       = 1000
)

// benchChunk is chunk i of the benchmark corpus: 10 entities and 10
// relations drawn from a vocabulary of 1,000 names, documents of 100
// chunks, the same shape as sqlitegraph's BenchmarkMergeChunk.
func benchChunk(i int) graph.ChunkGraph {
	es := make([]events.Entity, benchEntitiesPerChunk)
	rs := make([]events.Relation, benchEntitiesPerChunk)
	for j := range es {
		es[j] = events.Entity{
			Name:        fmt.Sprintf("Entity %d", (i*7+j*13)%benchVocabulary),
			Type:        "THING",
			Description: fmt.Sprintf("described in chunk %d", i),
		}
	}
	for j := range rs {
		rs[j] = events.Relation{
			Source: es[j].Name, Target: es[(j+1)%benchEntitiesPerChunk].Name,
			Description: "related", Keywords: []string{"k"}, Weight: 1,
		}
	}
	return graph.ChunkGraph{
		Namespace: "bench", DocID: fmt.Sprintf("doc-%d", i/benchChunksPerDoc), JobID: "job",
		ChunkID: fmt.Sprintf("%032x", i), Index: i % benchChunksPerDoc, Text: "chunk text", Tokens: 100,
		Entities: es, Relations: rs,
	}
}

// BenchmarkMergeChunk merges one chunk per transaction, its entities and
// relations batched with UNWIND.
func BenchmarkMergeChunk(b *testing.B) {
	s := openStore(b)
	defer s.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.MergeChunk(b.Context(), benchChunk(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*2*benchEntitiesPerChunk)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkMergeChunkOneByOne writes the same chunks with one transaction
// per entity and per relation, for comparison with BenchmarkMergeChunk.
func BenchmarkMergeChunkOneByOne(b *testing.B) {
	s := openStore(b)
	defer s.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.MergeChunkOneByOne(b.Context(), benchChunk(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*2*benchEntitiesPerChunk)/b.Elapsed().Seconds(), "items/s")
}
