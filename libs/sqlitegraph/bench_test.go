package sqlitegraph_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
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

// Shape of the offline extractor's chunks: 60 entities per chunk drawn
// (skewed, as characters of a story are) from 300 names, in sentences of 6
// whose co-occurring pairs are the relations, 150 per chunk.
const (
	realisticChunksPerDoc   = 200
	realisticNames          = 300
	realisticEntities       = 60
	realisticSentenceLength = 6
)

// realisticDocument returns the chunks of one document of the extractor's
// shape; every document has the same entities and relations.
func realisticDocument(docID string) []graph.ChunkGraph {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 4, realisticNames-1)
	types := []string{"PERSON", "ORGANIZATION", "LOCATION", "EVENT", "CONCEPT"}
	chunks := make([]graph.ChunkGraph, realisticChunksPerDoc)
	for i := range chunks {
		seen := make(map[uint64]bool, realisticEntities)
		es := make([]events.Entity, 0, realisticEntities)
		for len(es) < realisticEntities {
			n := zipf.Uint64()
			if seen[n] {
				continue
			}
			seen[n] = true
			es = append(es, events.Entity{
				Name:        fmt.Sprintf("Character %d", n),
				Type:        types[n%uint64(len(types))],
				Description: fmt.Sprintf("Character %d as chunk %d of %s describes them.", n, i, docID),
			})
		}
		var rs []events.Relation
		for start := 0; start < len(es); start += realisticSentenceLength {
			sentence := es[start : start+realisticSentenceLength]
			for a := range sentence {
				for _, other := range sentence[a+1:] {
					rs = append(rs, events.Relation{
						Source: sentence[a].Name, Target: other.Name,
						Description: "appear together in a sentence",
						Keywords:    []string{"co-occurrence", "sentence"},
						Weight:      1,
					})
				}
			}
		}
		sum := md5.Sum([]byte(docID + "/" + strconv.Itoa(i)))
		chunks[i] = graph.ChunkGraph{
			Namespace: "bench", DocID: docID, JobID: "job-" + docID,
			ChunkID: hex.EncodeToString(sum[:]), Index: i,
			Text: fmt.Sprintf("text of chunk %d of %s", i, docID), Tokens: 1200,
			Entities: es, Relations: rs,
		}
	}
	return chunks
}

// BenchmarkMergeRealisticChunk merges chunks of the extractor's shape one
// after another into documents of 200 chunks, so most merges go into a
// document that already mentions most of the chunk's entities and many of
// its relations; one op is one chunk. Use -benchtime=Nx with N a multiple
// of 200 for comparable numbers.
func BenchmarkMergeRealisticChunk(b *testing.B) {
	s, err := sqlitegraph.Open(b.Context(), filepath.Join(b.TempDir(), "graph.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var doc []graph.ChunkGraph
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%realisticChunksPerDoc == 0 {
			b.StopTimer()
			doc = realisticDocument(fmt.Sprintf("doc-%d", i/realisticChunksPerDoc))
			b.StartTimer()
		}
		if _, err := s.MergeChunk(b.Context(), doc[i%realisticChunksPerDoc]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(doc[0].Relations)), "relations/chunk")
}

// BenchmarkRedeliverRealisticChunk re-merges unchanged chunks of a merged
// document of the extractor's shape, as a redelivery or a re-run job does.
func BenchmarkRedeliverRealisticChunk(b *testing.B) {
	s, err := sqlitegraph.Open(b.Context(), filepath.Join(b.TempDir(), "graph.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	doc := realisticDocument("doc")
	for _, c := range doc {
		if _, err := s.MergeChunk(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.MergeChunk(b.Context(), doc[i%len(doc)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
