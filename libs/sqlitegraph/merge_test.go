package sqlitegraph_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// TestRandomReplacements merges random versions of a few chunks of two
// documents in random order, with redeliveries and deletions in between. It
// checks every merge's document counts against the distinct keys of the
// chunks' current versions, and the final store against one that merged only
// the final versions.
func TestRandomReplacements(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"Scrooge", "scrooge", "Marley", "Fred", "Belle", "Tiny Tim", "Bob", "Fan", " "}
	pick := func(values ...string) string { return values[rng.IntN(len(values))] }
	randomChunk := func(docID, chunkID string) graph.ChunkGraph {
		c := graph.ChunkGraph{
			Namespace: ns, DocID: docID, JobID: pick("job-1", "job-2"), ChunkID: chunkID,
			Index: rng.IntN(3), Text: pick("text", "other text"), Tokens: rng.IntN(2),
		}
		for range rng.IntN(6) {
			c.Entities = append(c.Entities, events.Entity{
				Name: pick(names...), Type: pick("PERSON", "GHOST", ""), Description: pick("", "a", "b"),
			})
		}
		for range rng.IntN(8) {
			c.Relations = append(c.Relations, events.Relation{
				Source: pick(names...), Target: pick(names...), Description: pick("", "x", "y"),
				Keywords: []string{pick("", "k1", "k2")}, Weight: float64(rng.IntN(3)),
			})
		}
		return c
	}

	type chunkRef struct{ docID, chunkID string }
	current := make(map[chunkRef]graph.ChunkGraph)
	docs := []string{"doc-a", "doc-b"}
	s := openStore(t, filepath.Join(t.TempDir(), "replaced.db"))
	defer s.Close()
	for step := range 400 {
		docID := docs[rng.IntN(len(docs))]
		if rng.IntN(40) == 0 {
			require.NoError(t, s.DeleteDocument(t.Context(), ns, docID))
			for ref := range current {
				if ref.docID == docID {
					delete(current, ref)
				}
			}
			continue
		}
		ref := chunkRef{docID, fmt.Sprintf("chunk-%d", rng.IntN(6))}
		c, seen := current[ref]
		if !seen || rng.IntN(4) > 0 {
			c = randomChunk(ref.docID, ref.chunkID)
		}
		current[ref] = c
		got, err := s.MergeChunk(t.Context(), c)
		require.NoError(t, err, "step %d", step)
		var docChunks []graph.ChunkGraph
		for r, c := range current {
			if r.docID == docID {
				docChunks = append(docChunks, c)
			}
		}
		wantEntities, wantRelations := distinctKeys(docChunks)
		require.Equal(t, wantEntities, got.DocEntities, "step %d: document entities", step)
		require.Equal(t, wantRelations, got.DocRelations, "step %d: document relations", step)
	}

	final := slices.SortedFunc(func(yield func(graph.ChunkGraph) bool) {
		for _, c := range current {
			if !yield(c) {
				return
			}
		}
	}, func(a, b graph.ChunkGraph) int {
		return cmp.Or(cmp.Compare(a.DocID, b.DocID), cmp.Compare(a.ChunkID, b.ChunkID))
	})
	require.NotEmpty(t, final)
	fresh := openStore(t, filepath.Join(t.TempDir(), "fresh.db"))
	defer fresh.Close()
	ids := make([]string, len(final))
	for i, c := range final {
		_, err := fresh.MergeChunk(t.Context(), c)
		require.NoError(t, err)
		ids[i] = c.ChunkID
	}
	wantSnap, err := fresh.Snapshot(t.Context(), ns)
	require.NoError(t, err)
	gotSnap, err := s.Snapshot(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, wantSnap, gotSnap)
	wantCounts, err := fresh.Counts(t.Context(), ns)
	require.NoError(t, err)
	gotCounts, err := s.Counts(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, wantCounts, gotCounts)
	wantChunks, err := fresh.Chunks(t.Context(), ns, ids)
	require.NoError(t, err)
	gotChunks, err := s.Chunks(t.Context(), ns, ids)
	require.NoError(t, err)
	require.Equal(t, wantChunks, gotChunks)
}

// distinctKeys counts the distinct entity and relation keys the chunks
// contribute: relations between two different non-blank keys, their
// endpoints and the listed entities with a non-blank key.
func distinctKeys(chunks []graph.ChunkGraph) (entities, relations int) {
	entityKeys := make(map[string]bool)
	relationKeys := make(map[[2]string]bool)
	for _, c := range chunks {
		for _, e := range c.Entities {
			if key := events.EntityKey(e.Name); key != "" {
				entityKeys[key] = true
			}
		}
		for _, r := range c.Relations {
			src, dst := events.EntityKey(r.Source), events.EntityKey(r.Target)
			if src == "" || dst == "" || src == dst {
				continue
			}
			entityKeys[src], entityKeys[dst] = true, true
			relationKeys[[2]string{min(src, dst), max(src, dst)}] = true
		}
	}
	return len(entityKeys), len(relationKeys)
}
