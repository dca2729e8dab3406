// Package graphtest is the contract suite every knowledge-graph store must
// pass: per-chunk provenance makes merges idempotent and deletions exact
// subtractions, reads aggregate mentions, and namespaces never leak.
package graphtest

import (
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// Run runs the contract suite. open must return a new, empty store each
// time it is called; Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) graph.Store) {
	openStore := func(t *testing.T) graph.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) graph.Store)
	}{
		{"merge and read back aggregates", testAggregates},
		{"majority ties and unknown types", testMajorityTies},
		{"duplicate mentions within a chunk combine", testDuplicatesWithinChunk},
		{"relation endpoints missing from the entity list", testMissingEndpoints},
		{"relations are undirected", testUndirectedRelations},
		{"relations of keys ranked by weight", testRelationsOfRanking},
		{"entities in key order", testEntitiesOrder},
		{"a hub's read is bounded", testHubReadIsBounded},
		{"search entities by name", testSearchEntities},
		{"search results are capped", testSearchLimit},
		{"chunks read back", testChunks},
		{"degrees and chunk entities kept", testDegrees},
		{"top relations follow changing degrees", testTopRelationsFollowDegrees},
		{"idempotent redelivery", testRedelivery},
		{"replacement of a chunk", testReplacement},
		{"delete document subtracts", testSubtraction},
		{"namespace isolation", testNamespaceIsolation},
		{"concurrent merges equal sequential merges", testConcurrentMerges},
		{"large batch", testLargeBatch},
		{"special characters round-trip", testSpecialCharacters},
		{"chunk identity required", testChunkIdentityRequired},
		{"generation counts changes", testGeneration},
		{"communities round trip and replace", testCommunities},
		{"communities of entities", testCommunitiesOf},
		{"best rated communities", testTopCommunities},
		{"summaries apply while their source is current", testSummaries},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, openStore) })
	}
}

const ns = "test-ns"

func ent(name, typ, description string) events.Entity {
	return events.Entity{Name: name, Type: typ, Description: description}
}

func rel(source, target, description string, weight float64, keywords ...string) events.Relation {
	return events.Relation{Source: source, Target: target, Description: description, Weight: weight, Keywords: keywords}
}

// chunkID derives a chunk id shaped like the pipeline's (32 hex digits).
func chunkID(docID string, index int) string {
	sum := md5.Sum([]byte(docID + "/" + strconv.Itoa(index)))
	return hex.EncodeToString(sum[:])
}

func chunk(namespace, docID string, index int, entities []events.Entity, relations ...events.Relation) graph.ChunkGraph {
	return graph.ChunkGraph{
		Namespace: namespace,
		DocID:     docID,
		JobID:     "job-" + docID,
		ChunkID:   chunkID(docID, index),
		Index:     index,
		Text:      fmt.Sprintf("text of %s chunk %d", docID, index),
		Tokens:    10 + index,
		Entities:  entities,
		Relations: relations,
	}
}

func merge(t *testing.T, s graph.Store, chunks ...graph.ChunkGraph) []graph.MergeResult {
	t.Helper()
	results := make([]graph.MergeResult, len(chunks))
	for i, c := range chunks {
		r, err := s.MergeChunk(t.Context(), c)
		require.NoError(t, err, "merge chunk %d of %s", c.Index, c.DocID)
		results[i] = r
	}
	return results
}

func snapshot(t *testing.T, s graph.Store, namespace string) graph.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(t.Context(), namespace)
	require.NoError(t, err)
	return snap
}

func counts(t *testing.T, s graph.Store, namespace string) graph.Counts {
	t.Helper()
	c, err := s.Counts(t.Context(), namespace)
	require.NoError(t, err)
	return c
}

func entities(t *testing.T, s graph.Store, namespace string, keys ...string) []graph.Entity {
	t.Helper()
	es, err := s.Entities(t.Context(), namespace, keys)
	require.NoError(t, err)
	return es
}

func entity(t *testing.T, s graph.Store, namespace, key string) graph.Entity {
	t.Helper()
	es := entities(t, s, namespace, key)
	require.Len(t, es, 1, "entity %q", key)
	return es[0]
}

func relationsOf(t *testing.T, s graph.Store, namespace string, limit int, keys ...string) []graph.Relation {
	t.Helper()
	rs, err := s.RelationsOf(t.Context(), namespace, keys, limit)
	require.NoError(t, err)
	return rs
}

func chunks(t *testing.T, s graph.Store, namespace string, ids ...string) []graph.Chunk {
	t.Helper()
	cs, err := s.Chunks(t.Context(), namespace, ids)
	require.NoError(t, err)
	return cs
}

// requireSameState asserts two stores hold the same graph in namespace.
func requireSameState(t *testing.T, want, got graph.Store, namespace string) {
	t.Helper()
	require.Equal(t, snapshot(t, want, namespace), snapshot(t, got, namespace), "snapshot")
	require.Equal(t, counts(t, want, namespace), counts(t, got, namespace), "counts")
	requireDerivedReads(t, want, namespace)
	requireDerivedReads(t, got, namespace)
}

// requireEdges asserts that the store's edges are its snapshot's relations.
func requireEdges(t *testing.T, s graph.Store, namespace string) {
	t.Helper()
	snap := snapshot(t, s, namespace)
	var edges []graph.Edge
	require.NoError(t, s.EachEdge(t.Context(), namespace, func(e graph.Edge) error {
		edges = append(edges, e)
		return nil
	}))
	slices.SortFunc(edges, func(a, b graph.Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	require.Len(t, edges, len(snap.Relations))
	if len(edges) > 0 {
		// The caller's error stops the stream at once and comes back as is.
		stop := errors.New("stop here")
		calls := 0
		err := s.EachEdge(t.Context(), namespace, func(graph.Edge) error { calls++; return stop })
		require.ErrorIs(t, err, stop)
		require.Equal(t, 1, calls)
	}
	for i, r := range snap.Relations {
		require.Equal(t, r.Source, edges[i].Source)
		require.Equal(t, r.Target, edges[i].Target)
		require.InDelta(t, r.Weight, edges[i].Weight, 1e-9)
	}
}

// requireDerivedReads asserts that the store's kept degrees and its chunk
// mentions agree with its snapshot: what a local query reads instead of
// every relation of every neighbour.
func requireDerivedReads(t *testing.T, s graph.Store, namespace string) {
	t.Helper()
	requireEdges(t, s, namespace)
	snap := snapshot(t, s, namespace)
	wantDegrees := map[string]int{}
	for _, r := range snap.Relations {
		wantDegrees[r.Source]++
		wantDegrees[r.Target]++
	}
	wantChunks := map[string][]string{}
	keys := []string{"never-mentioned"}
	for _, e := range snap.Entities {
		keys = append(keys, e.Key)
		for _, id := range e.ChunkIDs {
			wantChunks[id] = append(wantChunks[id], e.Key)
		}
	}
	ids := []string{"no-such-chunk"}
	for id, ks := range wantChunks {
		slices.Sort(ks)
		ids = append(ids, id)
	}
	degrees, err := s.Degrees(t.Context(), namespace, keys)
	require.NoError(t, err)
	require.Equal(t, wantDegrees, degrees, "degrees")
	for _, key := range keys[:min(len(keys), 12)] {
		requireTopRelations(t, s, namespace, key, wantDegrees)
	}
	mentioned, err := s.ChunkEntities(t.Context(), namespace, ids)
	require.NoError(t, err)
	require.Equal(t, wantChunks, mentioned, "chunk entities")
	requireRelationsAmong(t, s, namespace, snap)
}

// requireRelationsAmong asserts that the relations among every other
// entity (and among all of them) are the snapshot's relations between
// such entities.
func requireRelationsAmong(t *testing.T, s graph.Store, namespace string, snap graph.Snapshot) {
	t.Helper()
	for _, step := range []int{1, 2} {
		among := map[string]bool{}
		keys := []string{"never-mentioned"}
		for i, e := range snap.Entities {
			if i%step == 0 {
				among[e.Key] = true
				keys = append(keys, e.Key)
			}
		}
		want := []graph.Relation{}
		for _, r := range snap.Relations {
			if among[r.Source] && among[r.Target] {
				want = append(want, r)
			}
		}
		got, err := s.RelationsAmong(t.Context(), namespace, keys)
		require.NoError(t, err)
		if got == nil {
			got = []graph.Relation{}
		}
		require.Equal(t, want, got, "relations among every %d. entity", step)
	}
}

func sortedIDs(ids ...string) []string {
	return slices.Sorted(slices.Values(ids))
}

// carol is a small two-document corpus sharing entities and relations.
func carol(namespace string) (docA, docB []graph.ChunkGraph) {
	docA = []graph.ChunkGraph{
		chunk(namespace, "doc-a", 0,
			[]events.Entity{ent("Scrooge", "PERSON", "A miser."), ent("Marley", "PERSON", "A ghost."), ent("Fezziwig", "PERSON", "A kind employer.")},
			rel("Scrooge", "Marley", "partners", 2, "business"),
			rel("Scrooge", "Fezziwig", "apprentice of", 1, "past")),
		chunk(namespace, "doc-a", 1,
			[]events.Entity{ent("Scrooge", "PERSON", "Redeemed."), ent("Tiny Tim", "PERSON", "")},
			rel("Scrooge", "Tiny Tim", "helps", 4, "charity")),
	}
	docB = []graph.ChunkGraph{
		chunk(namespace, "doc-b", 0,
			[]events.Entity{ent("SCROOGE", "PERSON", "Owner of a counting-house."), ent("Bob Cratchit", "PERSON", "A clerk.")},
			rel("Scrooge", "Bob Cratchit", "employs", 3, "work"),
			rel("Scrooge", "Marley", "partners", 1, "business", "firm")),
		chunk(namespace, "doc-b", 1,
			[]events.Entity{ent("Tiny Tim", "PERSON", "Bob's son."), ent("Bob Cratchit", "PERSON", "")},
			rel("Bob Cratchit", "Tiny Tim", "father of", 5, "family")),
	}
	return docA, docB
}

// corpus builds docs×chunksPerDoc chunks whose entities overlap heavily
// across chunks and documents.
func corpus(namespace string, docs, chunksPerDoc, entitiesPerChunk int) []graph.ChunkGraph {
	const names = 30
	var out []graph.ChunkGraph
	for d := range docs {
		docID := fmt.Sprintf("doc-%d", d)
		for i := range chunksPerDoc {
			var es []events.Entity
			var rs []events.Relation
			for j := range entitiesPerChunk {
				n := (d*7 + i*3 + j*5) % names
				es = append(es, ent(fmt.Sprintf("Entity %d", n), fmt.Sprintf("TYPE%d", (i+j)%3), fmt.Sprintf("seen in %s/%d", docID, i)))
				if j > 0 {
					rs = append(rs, rel(es[j-1].Name, es[j].Name, fmt.Sprintf("link %d", i%4), float64(1+j%3), fmt.Sprintf("kw%d", j%5)))
				}
			}
			out = append(out, chunk(namespace, docID, i, es, rs...))
		}
	}
	return out
}
