// Package graphtest is the contract suite every knowledge-graph store must
// pass: per-chunk provenance makes merges idempotent and deletions exact
// subtractions, reads aggregate mentions, and namespaces never leak.
package graphtest

import (
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

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
	edges, err := s.Edges(t.Context(), namespace)
	require.NoError(t, err)
	require.Len(t, edges, len(snap.Relations))
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
}

// requireTopRelations checks a key's ranked relations against its
// relations and the degrees, and reads them back by pair.
func requireTopRelations(t *testing.T, s graph.Store, namespace, key string, degrees map[string]int) {
	t.Helper()
	rels := relationsOf(t, s, namespace, 0, key)
	all, err := s.TopRelations(t.Context(), namespace, []string{key}, 0)
	require.NoError(t, err)
	require.Len(t, all, len(rels), "top relations of %s", key)
	byPair := map[[2]string]graph.Relation{}
	for _, r := range rels {
		byPair[[2]string{r.Source, r.Target}] = r
	}
	other := func(e graph.RankedEdge) string {
		if e.Source == key {
			return e.Target
		}
		return e.Source
	}
	var pairs [][2]string
	for i, e := range all {
		r, ok := byPair[[2]string{e.Source, e.Target}]
		require.True(t, ok, "%s-%s is no relation of %s", e.Source, e.Target, key)
		require.InDelta(t, r.Weight, e.Weight, 1e-9)
		require.Equal(t, degrees[e.Source]+degrees[e.Target], e.Rank)
		if i > 0 {
			prev := all[i-1]
			require.LessOrEqual(t, cmp.Or(cmp.Compare(degrees[other(e)], degrees[other(prev)]),
				cmp.Compare(e.Weight, prev.Weight), cmp.Compare(prev.Source, e.Source), cmp.Compare(prev.Target, e.Target)), 0,
				"order of %s's relations", key)
		}
		pairs = append(pairs, [2]string{e.Target, e.Source}) // either way round
	}
	if len(all) > 0 {
		one, err := s.TopRelations(t.Context(), namespace, []string{key}, 1)
		require.NoError(t, err)
		require.Equal(t, all[:1], one)
	}
	between, err := s.RelationsBetween(t.Context(), namespace, append(pairs, [2]string{key, "NO SUCH ENTITY"}))
	require.NoError(t, err)
	require.Len(t, between, len(all))
	for i, r := range between {
		require.Equal(t, byPair[[2]string{all[i].Source, all[i].Target}], r)
	}
}

func testDegrees(t *testing.T, open func(t *testing.T) graph.Store) {
	docA, docB := carol(ns)
	s := open(t)
	merge(t, s, docA...)
	merge(t, s, docB...)
	degrees, err := s.Degrees(t.Context(), ns, []string{"SCROOGE", "TINY TIM", "FEZZIWIG", "NOBODY"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"SCROOGE": 4, "TINY TIM": 2, "FEZZIWIG": 1}, degrees)
	mentioned, err := s.ChunkEntities(t.Context(), ns, []string{docB[1].ChunkID})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{docB[1].ChunkID: {"BOB CRATCHIT", "TINY TIM"}}, mentioned)
	all, err := s.TopRelations(t.Context(), ns, []string{"SCROOGE", "TINY TIM"}, 0)
	require.NoError(t, err)
	require.Equal(t, []graph.RankedEdge{
		{Source: "SCROOGE", Target: "TINY TIM", Weight: 4, Rank: 6},
		{Source: "BOB CRATCHIT", Target: "SCROOGE", Weight: 3, Rank: 6},
		{Source: "MARLEY", Target: "SCROOGE", Weight: 3, Rank: 5},
		{Source: "FEZZIWIG", Target: "SCROOGE", Weight: 1, Rank: 5},
		{Source: "BOB CRATCHIT", Target: "TINY TIM", Weight: 5, Rank: 4},
	}, all, "by rank, then weight, each relation once")
	for limit := 1; limit <= len(all)+1; limit++ {
		top, err := s.TopRelations(t.Context(), ns, []string{"TINY TIM", "SCROOGE", "NOBODY"}, limit)
		require.NoError(t, err)
		require.Equal(t, all[:min(limit, len(all))], top, "best %d", limit)
	}

	// Marley stays related to Scrooge through doc-b; Fezziwig goes.
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "doc-a"))
	degrees, err = s.Degrees(t.Context(), ns, []string{"SCROOGE", "MARLEY", "FEZZIWIG"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"SCROOGE": 2, "MARLEY": 1}, degrees)
	degrees, err = s.Degrees(t.Context(), "other-ns", []string{"SCROOGE"})
	require.NoError(t, err)
	require.Empty(t, degrees)
}

// testTopRelationsFollowDegrees ranks a hub's relations while its
// neighbours' degrees grow and shrink across powers of two (a store may
// keep neighbours ordered by the magnitude of their degree) and checks
// every cut against the ranking computed from Degrees.
func testTopRelationsFollowDegrees(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	const neighbours = 12
	var hubEntities []events.Entity
	var hubRelations []events.Relation
	hubEntities = append(hubEntities, ent("Hub", "PERSON", "Knows everyone."))
	for i := range neighbours {
		name := fmt.Sprintf("Neighbour %02d", i)
		hubEntities = append(hubEntities, ent(name, "PERSON", ""))
		hubRelations = append(hubRelations, rel("Hub", name, "knows", float64(1+i%3)))
	}
	// Neighbour i gets 12·(12-i) more relations in document "grow-i",
	// before and after it meets the hub: degrees from 1 to 133 cross the
	// powers of two from 2 to 128 at different neighbours, and the later
	// names have the lower degrees.
	for i := 1; i < neighbours; i++ {
		name := fmt.Sprintf("Neighbour %02d", i)
		ents := []events.Entity{ent(name, "PERSON", "")}
		var rels []events.Relation
		for j := range 12 * (neighbours - i) {
			other := fmt.Sprintf("Friend %02d-%03d", i, j)
			ents = append(ents, ent(other, "PERSON", ""))
			rels = append(rels, rel(name, other, "knows", 1))
		}
		merge(t, s, chunk(ns, fmt.Sprintf("grow-%02d", i), 0, ents, rels...))
		if i == neighbours/2 {
			merge(t, s, chunk(ns, "hub", 0, hubEntities, hubRelations...))
		}
	}
	check := func(stage string) {
		t.Helper()
		var keys []string
		for i := range neighbours {
			keys = append(keys, events.EntityKey(fmt.Sprintf("Neighbour %02d", i)))
		}
		degrees, err := s.Degrees(t.Context(), ns, append(keys, "HUB"))
		require.NoError(t, err)
		weights := map[string]float64{}
		for _, r := range relationsOf(t, s, ns, 0, "HUB") {
			other := r.Target
			if other == "HUB" {
				other = r.Source
			}
			weights[other] = r.Weight
		}
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(cmp.Compare(degrees[b], degrees[a]), cmp.Compare(weights[b], weights[a]), cmp.Compare(a, b))
		})
		for _, perKey := range []int{1, 2, 3, 5, 8, neighbours, 0} {
			top, err := s.TopRelations(t.Context(), ns, []string{"HUB"}, perKey)
			require.NoError(t, err)
			want := keys
			if perKey > 0 {
				want = keys[:min(perKey, len(keys))]
			}
			got := make([]string, len(top))
			for i, e := range top {
				if e.Source != "HUB" {
					got[i] = e.Source
				} else {
					got[i] = e.Target
				}
				require.Equal(t, degrees["HUB"]+degrees[got[i]], e.Rank, "%s: rank of %s", stage, got[i])
			}
			require.Equal(t, want, got, "%s: top %d relations of the hub", stage, perKey)
		}
	}
	check("grown")
	// The last, least connected neighbour becomes the best connected.
	befriend := func(doc, name string, n int) {
		t.Helper()
		ents := []events.Entity{ent(name, "PERSON", "")}
		var rels []events.Relation
		for j := range n {
			other := fmt.Sprintf("%s stranger %03d", doc, j)
			ents = append(ents, ent(other, "PERSON", ""))
			rels = append(rels, rel(name, other, "met", 1))
		}
		merge(t, s, chunk(ns, doc, 0, ents, rels...))
	}
	befriend("popular", "Neighbour 11", 200)
	check("popular")
	// The best connected neighbours lose their other relations; one in the
	// middle gains more.
	for _, i := range []int{1, 2, 7} {
		require.NoError(t, s.DeleteDocument(t.Context(), ns, fmt.Sprintf("grow-%02d", i)))
	}
	befriend("more", "Neighbour 03", 40)
	check("changed")
}

func sortedIDs(ids ...string) []string {
	return slices.Sorted(slices.Values(ids))
}

func testAggregates(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c0 := chunk(ns, "carol", 0,
		[]events.Entity{ent("Scrooge", "PERSON", "A miser."), ent("Marley", "PERSON", "Scrooge's late partner.")},
		rel("Scrooge", "Marley", "partners", 2, "partnership", "business"))
	c1 := chunk(ns, "carol", 1,
		[]events.Entity{ent("SCROOGE", "PERSON", "Hates Christmas."), ent("Marley", "UNKNOWN", "")},
		rel("Marley", "Scrooge", "haunts", 3, "ghost", "partnership"))
	c2 := chunk(ns, "carol", 2,
		[]events.Entity{ent("Scrooge", "ORGANIZATION", "A miser.")})

	// Merged out of order: aggregation orders by chunk index, not arrival.
	results := merge(t, s, c2, c1, c0)
	require.Equal(t, graph.MergeResult{Entities: 1, Relations: 0, DocEntities: 1, DocRelations: 0}, results[0])
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[1])
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[2])

	require.Equal(t, []graph.Entity{
		{
			Key: "SCROOGE", Name: "Scrooge", Type: "PERSON",
			Description: "A miser.\nHates Christmas.",
			Mentions:    3, ChunkIDs: sortedIDs(c0.ChunkID, c1.ChunkID, c2.ChunkID),
		},
		{
			Key: "MARLEY", Name: "Marley", Type: "PERSON",
			Description: "Scrooge's late partner.",
			Mentions:    2, ChunkIDs: sortedIDs(c0.ChunkID, c1.ChunkID),
		},
	}, entities(t, s, ns, "SCROOGE", "MARLEY"))

	want := graph.Relation{
		Source: "MARLEY", Target: "SCROOGE",
		Description: "partners\nhaunts",
		Keywords:    []string{"business", "ghost", "partnership"},
		Weight:      5, Mentions: 2, ChunkIDs: sortedIDs(c0.ChunkID, c1.ChunkID),
	}
	require.Equal(t, []graph.Relation{want}, relationsOf(t, s, ns, 10, "SCROOGE"))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 3, Entities: 2, Relations: 1}, counts(t, s, ns))

	snap := snapshot(t, s, ns)
	require.Equal(t, []string{"MARLEY", "SCROOGE"}, []string{snap.Entities[0].Key, snap.Entities[1].Key})
	require.Equal(t, []graph.Relation{want}, snap.Relations)
}

func testMajorityTies(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	merge(t, s,
		chunk(ns, "d", 0, []events.Entity{ent("Bob", "PERSON", ""), ent("Ghost", "UNKNOWN", "")}),
		chunk(ns, "d", 1, []events.Entity{ent("BOB", "ORG", ""), ent("Ghost", "", "")}),
		chunk(ns, "d", 2, []events.Entity{ent("Eve", "PERSON", ""), ent("Tie", "B", "")}),
		chunk(ns, "d", 3, []events.Entity{ent("EVE", "PERSON", ""), ent("tie", "A", "")}),
	)
	tests := []struct {
		key      string
		wantName string
		wantType string
	}{
		// Names and types tie: the lexicographically smallest wins.
		{key: "BOB", wantName: "BOB", wantType: "ORG"},
		{key: "TIE", wantName: "Tie", wantType: "A"},
		// A missing type counts as UNKNOWN; UNKNOWN stays when it is all
		// there is.
		{key: "GHOST", wantName: "Ghost", wantType: graph.UnknownType},
		{key: "EVE", wantName: "EVE", wantType: "PERSON"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			e := entity(t, s, ns, tc.key)
			require.Equal(t, tc.wantName, e.Name)
			require.Equal(t, tc.wantType, e.Type)
			require.Equal(t, 2, e.Mentions)
		})
	}

	// UNKNOWN is ignored even when it is the most frequent type.
	merge(t, s,
		chunk(ns, "d", 4, []events.Entity{ent("Bob", "UNKNOWN", "")}),
		chunk(ns, "d", 5, []events.Entity{ent("Bob", "UNKNOWN", "")}),
		chunk(ns, "d", 6, []events.Entity{ent("Bob", "UNKNOWN", "")}),
	)
	e := entity(t, s, ns, "BOB")
	require.Equal(t, "Bob", e.Name)
	require.Equal(t, "ORG", e.Type)
	require.Equal(t, 5, e.Mentions)
}

func testDuplicatesWithinChunk(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c := chunk(ns, "d", 0,
		[]events.Entity{ent("Alice", "PERSON", "d1"), ent("alice", "", "d2"), ent("ALICE", "PERSON", "d1")},
		rel("Alice", "Bob", "r1", 1, "a"),
		rel("Bob", "Alice", "r2", 2, "b"),
		rel("alice", "BOB", "r1", 0.5, "a", ""),
	)
	results := merge(t, s, c)
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[0])
	require.Equal(t, []graph.Entity{
		{Key: "ALICE", Name: "Alice", Type: "PERSON", Description: "d1\nd2", Mentions: 1, ChunkIDs: []string{c.ChunkID}},
		{Key: "BOB", Name: "Bob", Type: graph.UnknownType, Mentions: 1, ChunkIDs: []string{c.ChunkID}},
	}, entities(t, s, ns, "ALICE", "BOB"))
	require.Equal(t, []graph.Relation{{
		Source: "ALICE", Target: "BOB", Description: "r1\nr2", Keywords: []string{"a", "b"},
		Weight: 3.5, Mentions: 1, ChunkIDs: []string{c.ChunkID},
	}}, snapshot(t, s, ns).Relations)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts(t, s, ns))
}

func testMissingEndpoints(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c0 := chunk(ns, "d", 0,
		[]events.Entity{ent("Scrooge", "PERSON", "A miser.")},
		rel("SCROOGE", "Bob Cratchit", "employs", 1),
		rel("Scrooge", "scrooge", "self relation", 1), // same key: dropped
		rel("Scrooge", " ", "blank endpoint", 1),      // no key: dropped
	)
	results := merge(t, s, c0)
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[0])

	// The listed spelling is kept; the relation's spelling adds no mention.
	require.Equal(t, graph.Entity{
		Key: "SCROOGE", Name: "Scrooge", Type: "PERSON", Description: "A miser.",
		Mentions: 1, ChunkIDs: []string{c0.ChunkID},
	}, entity(t, s, ns, "SCROOGE"))
	require.Equal(t, graph.Entity{
		Key: "BOB CRATCHIT", Name: "Bob Cratchit", Type: graph.UnknownType,
		Mentions: 1, ChunkIDs: []string{c0.ChunkID},
	}, entity(t, s, ns, "BOB CRATCHIT"))
	require.Empty(t, entities(t, s, ns, ""))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts(t, s, ns))

	c1 := chunk(ns, "d", 1, []events.Entity{ent("Bob Cratchit", "PERSON", "A clerk.")})
	merge(t, s, c1)
	require.Equal(t, graph.Entity{
		Key: "BOB CRATCHIT", Name: "Bob Cratchit", Type: "PERSON", Description: "A clerk.",
		Mentions: 2, ChunkIDs: sortedIDs(c0.ChunkID, c1.ChunkID),
	}, entity(t, s, ns, "BOB CRATCHIT"))
}

func testUndirectedRelations(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c0 := chunk(ns, "d", 0, []events.Entity{ent("Zed", "PERSON", ""), ent("Amy", "PERSON", "")},
		rel("Zed", "Amy", "x", 1, "k1"))
	c1 := chunk(ns, "d", 1, []events.Entity{ent("Amy", "PERSON", ""), ent("Zed", "PERSON", "")},
		rel("Amy", "Zed", "y", 2, "k2"))
	results := merge(t, s, c0, c1)
	require.Equal(t, 1, results[1].DocRelations)

	want := []graph.Relation{{
		Source: "AMY", Target: "ZED", Description: "x\ny", Keywords: []string{"k1", "k2"},
		Weight: 3, Mentions: 2, ChunkIDs: sortedIDs(c0.ChunkID, c1.ChunkID),
	}}
	require.Equal(t, want, relationsOf(t, s, ns, 0, "AMY"))
	require.Equal(t, want, relationsOf(t, s, ns, 0, "ZED"))
	require.Equal(t, want, relationsOf(t, s, ns, 0, "ZED", "AMY"))
	require.Equal(t, want, snapshot(t, s, ns).Relations)
	require.Equal(t, 1, counts(t, s, ns).Relations)
}

func testRelationsOfRanking(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	hub := []events.Entity{ent("Hub", "X", "")}
	merge(t, s, chunk(ns, "d", 0, hub,
		rel("Hub", "A", "", 1),
		rel("Hub", "B", "", 5),
		rel("C", "Hub", "", 3),
		rel("Hub", "D", "", 3),
		rel("X", "Y", "", 10),
	))
	keysOf := func(rs []graph.Relation) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s-%s:%g", r.Source, r.Target, r.Weight)
		}
		return out
	}
	tests := []struct {
		name  string
		keys  []string
		limit int
		want  []string
	}{
		{"all of one key", []string{"HUB"}, 0, []string{"B-HUB:5", "C-HUB:3", "D-HUB:3", "A-HUB:1"}},
		{"limited", []string{"HUB"}, 2, []string{"B-HUB:5", "C-HUB:3"}},
		{"negative limit is no limit", []string{"HUB"}, -1, []string{"B-HUB:5", "C-HUB:3", "D-HUB:3", "A-HUB:1"}},
		{"relation touching two keys once", []string{"A", "HUB", "Y"}, 3, []string{"X-Y:10", "B-HUB:5", "C-HUB:3"}},
		{"endpoint only as target", []string{"Y"}, 5, []string{"X-Y:10"}},
		{"unknown key", []string{"NOBODY"}, 5, []string{}},
		{"no keys", nil, 5, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, keysOf(relationsOf(t, s, ns, tc.limit, tc.keys...)))
		})
	}

	// Weights accumulate across chunks before ranking.
	merge(t, s, chunk(ns, "d", 1, hub, rel("A", "Hub", "", 5)))
	require.Equal(t, []string{"A-HUB:6", "B-HUB:5"}, keysOf(relationsOf(t, s, ns, 2, "HUB")))
}

// testHubReadIsBounded reads an entity named in more chunks than a store
// reads for one entity: it is described by the first graph.MaxMentionsRead
// of them, and all of them are counted.
func testHubReadIsBounded(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	extra := 5
	var chunks []graph.ChunkGraph
	for i := range graph.MaxMentionsRead + extra {
		// Document ids sort in the order of i; the last ones name the hub
		// differently, which the first ones outvote.
		name := "Hub"
		if i >= graph.MaxMentionsRead {
			name = "HUB"
		}
		chunks = append(chunks, chunk(ns, fmt.Sprintf("doc-%04d", i), 0,
			[]events.Entity{ent(name, "PERSON", fmt.Sprintf("Named in document %d.", i)), ent("Other", "PERSON", "")}))
	}
	merge(t, s, chunks...)
	e := entity(t, s, ns, "HUB")
	require.Equal(t, graph.MaxMentionsRead+extra, e.Mentions, "every mention is counted")
	require.Len(t, e.ChunkIDs, graph.MaxMentionsRead)
	require.Equal(t, "Hub", e.Name)
	require.Contains(t, e.Description, "Named in document 0.")
	require.NotContains(t, e.Description, fmt.Sprintf("Named in document %d.", graph.MaxMentionsRead))
	var firstChunks []string
	for i := range graph.MaxMentionsRead {
		firstChunks = append(firstChunks, chunkID(fmt.Sprintf("doc-%04d", i), 0))
	}
	require.ElementsMatch(t, firstChunks, e.ChunkIDs, "the first documents' chunks")
	other := entity(t, s, ns, "OTHER")
	require.Equal(t, graph.MaxMentionsRead+extra, other.Mentions)
}

func testEntitiesOrder(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	merge(t, s, chunk(ns, "d", 0, []events.Entity{ent("A", "T", ""), ent("B", "T", ""), ent("C", "T", "")}))
	got := entities(t, s, ns, "C", "MISSING", "A", "C")
	require.Len(t, got, 2)
	require.Equal(t, "C", got[0].Key)
	require.Equal(t, "A", got[1].Key)
	require.Empty(t, entities(t, s, ns))
	// Keys are keys, not names: a name spelled differently does not match.
	require.Empty(t, entities(t, s, ns, "a"))
}

func searchKeys(t *testing.T, s graph.Store, namespace, query string, limit int) []string {
	t.Helper()
	es, err := s.SearchEntities(t.Context(), namespace, query, limit)
	require.NoError(t, err)
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

func testSearchEntities(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	marley := ent("Marley", "PERSON", "A ghost.")
	bone := ent("Marleybone", "PLACE", "")
	merge(t, s,
		chunk(ns, "d", 0, []events.Entity{marley, bone, ent("Old Marley's Ghost", "SPIRIT", ""), ent("Jacob Marley", "PERSON", "")},
			rel("Marley", "Marley Jr", "son", 1)),
		chunk(ns, "d", 1, []events.Entity{marley, bone, ent("Old Marley's Ghost", "SPIRIT", ""), ent("Scrooge", "PERSON", "")}),
		chunk(ns, "d", 2, []events.Entity{bone, ent("old marley's ghost", "SPIRIT", ""), ent("50% off", "OFFER", ""),
			ent("Ünïcødé 東京", "T", "")}),
		chunk(ns, "d", 3, []events.Entity{ent("Old Marley's Ghost", "", ""), ent("Scrooge", "PERSON", "")}),
	)
	merge(t, s, chunk("other-ns", "d", 0, []events.Entity{ent("Marley", "PERSON", ""), ent("Marley Senior", "PERSON", "")}))

	// Exact, then prefix (Marleybone 3 mentions before Marley Jr 1), then
	// the others (4 mentions before 1).
	byRank := []string{"MARLEY", "MARLEYBONE", "MARLEY JR", "OLD MARLEY'S GHOST", "JACOB MARLEY"}
	tests := []struct {
		name  string
		query string
		limit int
		want  []string
	}{
		{"ranked", "marley", 10, byRank},
		{"normalised like keys", "  \"MARLEY\"  ", 10, byRank},
		{"limited", "Marley", 2, byRank[:2]},
		{"no limit is the cap", "marley", 0, byRank},
		{"inside a name", "ghost", 10, []string{"OLD MARLEY'S GHOST"}},
		{"whitespace collapsed", "jacob   marley", 10, []string{"JACOB MARLEY"}},
		{"unicode case folding", "ünïcødé", 10, []string{"ÜNÏCØDÉ 東京"}},
		{"wildcards are literal", "%", 10, []string{"50% OFF"}},
		{"underscore is literal", "_", 10, []string{}},
		{"regular expressions are literal", "M.*Y", 10, []string{}},
		{"query syntax is literal", `marley" OR "scrooge`, 10, []string{}},
		{"no match", "fezziwig", 10, []string{}},
		{"empty query lists the most mentioned", "", 3, []string{"OLD MARLEY'S GHOST", "MARLEYBONE", "MARLEY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, searchKeys(t, s, ns, tc.query, tc.limit))
		})
	}

	// Results are whole entities, as Entities returns them.
	got, err := s.SearchEntities(t.Context(), ns, "marley", 10)
	require.NoError(t, err)
	require.Equal(t, entities(t, s, ns, byRank...), got)
	require.Equal(t, "Old Marley's Ghost", got[3].Name)
	require.Equal(t, 4, got[3].Mentions)

	// Other namespaces are not searched, and deleted documents are gone.
	require.Equal(t, []string{"MARLEY", "MARLEY SENIOR"}, searchKeys(t, s, "other-ns", "marley", 10))
	require.Empty(t, searchKeys(t, s, "no-such-ns", "", 10))
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "d"))
	require.Empty(t, searchKeys(t, s, ns, "", 10))
	_, err = s.SearchEntities(t.Context(), "", "marley", 10)
	require.Error(t, err, "empty namespace")
}

func testSearchLimit(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	es := make([]events.Entity, graph.MaxSearchLimit+5)
	for i := range es {
		es[i] = ent(fmt.Sprintf("Item %03d", i), "T", "")
	}
	merge(t, s, chunk(ns, "d", 0, es))
	for _, limit := range []int{0, -1, graph.MaxSearchLimit + 1, 10_000} {
		keys := searchKeys(t, s, ns, "item", limit)
		require.Len(t, keys, graph.MaxSearchLimit, "limit %d", limit)
		require.Equal(t, "ITEM 000", keys[0], "equal mentions: by key")
		require.Equal(t, fmt.Sprintf("ITEM %03d", graph.MaxSearchLimit-1), keys[graph.MaxSearchLimit-1])
	}
	require.Equal(t, []string{"ITEM 104"}, searchKeys(t, s, ns, "item 104", 5))
}

func testChunks(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c0 := chunk(ns, "d", 0, nil)
	c1 := chunk(ns, "d", 1, []events.Entity{ent("A", "T", "")})
	c1.Text = "first version"
	merge(t, s, c0, c1)
	require.Equal(t, []graph.Chunk{
		{ID: c1.ChunkID, DocID: "d", Index: 1, Text: "first version", Tokens: c1.Tokens},
		{ID: c0.ChunkID, DocID: "d", Index: 0, Text: c0.Text, Tokens: c0.Tokens},
	}, chunks(t, s, ns, c1.ChunkID, "0123456789abcdef0123456789abcdef", c0.ChunkID))

	c1.Text, c1.Tokens = "second version", 99
	merge(t, s, c1)
	require.Equal(t, []graph.Chunk{{ID: c1.ChunkID, DocID: "d", Index: 1, Text: "second version", Tokens: 99}},
		chunks(t, s, ns, c1.ChunkID))
	require.Empty(t, chunks(t, s, ns))
	// A chunk without entities is still a chunk of its document.
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 2, Entities: 1}, counts(t, s, ns))
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

func testRedelivery(t *testing.T, open func(t *testing.T) graph.Store) {
	docA, docB := carol(ns)
	once := open(t)
	merge(t, once, docA...)
	merge(t, once, docB...)

	thrice := open(t)
	for _, c := range append(append([]graph.ChunkGraph{}, docA...), docB...) {
		first := merge(t, thrice, c)[0]
		for range 2 {
			require.Equal(t, first, merge(t, thrice, c)[0], "redelivered chunk %d of %s", c.Index, c.DocID)
		}
	}
	requireSameState(t, once, thrice, ns)
	ids := []string{docA[0].ChunkID, docA[1].ChunkID, docB[0].ChunkID, docB[1].ChunkID}
	require.Equal(t, chunks(t, once, ns, ids...), chunks(t, thrice, ns, ids...))
	require.Equal(t, graph.Counts{Documents: 2, Chunks: 4, Entities: 5, Relations: 5}, counts(t, thrice, ns))

	// Redelivering an old chunk after later ones changes nothing either.
	merge(t, thrice, docA[0])
	requireSameState(t, once, thrice, ns)
}

func testReplacement(t *testing.T, open func(t *testing.T) graph.Store) {
	c0 := chunk(ns, "d", 0, []events.Entity{ent("A", "T", "a0")})
	v1 := chunk(ns, "d", 1, []events.Entity{ent("A", "T", "a1"), ent("B", "T", "b1")}, rel("A", "B", "ab", 1))
	v2 := chunk(ns, "d", 1, []events.Entity{ent("A", "T", "a2"), ent("C", "T", "c2")}, rel("A", "C", "ac", 2))
	v2.Text, v2.Tokens = "corrected text", 42

	replaced := open(t)
	results := merge(t, replaced, c0, v1, v2)
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[1])
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, results[2])

	direct := open(t)
	merge(t, direct, c0, v2)
	requireSameState(t, direct, replaced, ns)
	require.Empty(t, entities(t, replaced, ns, "B"))
	require.Equal(t, "a0\na2", entity(t, replaced, ns, "A").Description)
	require.Equal(t, chunks(t, direct, ns, v2.ChunkID), chunks(t, replaced, ns, v2.ChunkID))
	require.Equal(t, "corrected text", chunks(t, replaced, ns, v2.ChunkID)[0].Text)

	// Replacing with an empty extraction leaves only the other chunk's A.
	v3 := chunk(ns, "d", 1, nil)
	results = merge(t, replaced, v3)
	require.Equal(t, graph.MergeResult{DocEntities: 1}, results[0])
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 2, Entities: 1}, counts(t, replaced, ns))
	require.Equal(t, graph.Entity{Key: "A", Name: "A", Type: "T", Description: "a0", Mentions: 1, ChunkIDs: []string{c0.ChunkID}},
		entity(t, replaced, ns, "A"))
}

func testSubtraction(t *testing.T, open func(t *testing.T) graph.Store) {
	docA, docB := carol(ns)
	both := open(t)
	// Interleaved, so the documents' mentions are mixed in the store.
	merge(t, both, docB[1], docA[0], docB[0], docA[1])
	require.NoError(t, both.DeleteDocument(t.Context(), ns, "doc-a"))

	onlyB := open(t)
	merge(t, onlyB, docB...)
	requireSameState(t, onlyB, both, ns)
	require.Empty(t, entities(t, both, ns, "FEZZIWIG"))
	require.Empty(t, chunks(t, both, ns, docA[0].ChunkID, docA[1].ChunkID))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 2, Entities: 4, Relations: 3}, counts(t, both, ns))
	require.Equal(t, "Owner of a counting-house.", entity(t, both, ns, "SCROOGE").Description)

	// Deleting an unknown or already deleted document is a no-op.
	require.NoError(t, both.DeleteDocument(t.Context(), ns, "doc-a"))
	require.NoError(t, both.DeleteDocument(t.Context(), ns, "never-seen"))
	requireSameState(t, onlyB, both, ns)

	// Re-ingesting the deleted document starts its counts afresh.
	results := merge(t, both, docA...)
	require.Equal(t, graph.MergeResult{Entities: 3, Relations: 2, DocEntities: 3, DocRelations: 2}, results[0])
	require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 4, DocRelations: 3}, results[1])
	all := open(t)
	merge(t, all, docA...)
	merge(t, all, docB...)
	requireSameState(t, all, both, ns)

	// Deleting everything leaves nothing.
	require.NoError(t, both.DeleteDocument(t.Context(), ns, "doc-a"))
	require.NoError(t, both.DeleteDocument(t.Context(), ns, "doc-b"))
	require.Equal(t, graph.Counts{}, counts(t, both, ns))
	snap := snapshot(t, both, ns)
	require.Empty(t, snap.Entities)
	require.Empty(t, snap.Relations)
}

func testNamespaceIsolation(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	c1 := chunk("ns-one", "d", 0, []events.Entity{ent("Scrooge", "PERSON", "one")}, rel("Scrooge", "Marley", "one", 1))
	c2 := chunk("ns-two", "d", 0, []events.Entity{ent("Scrooge", "ORG", "two")}, rel("Scrooge", "Marley", "two", 7))
	c2.Text = "text two"
	merge(t, s, c1, c2)
	require.Equal(t, c1.ChunkID, c2.ChunkID, "same ids in both namespaces")

	e := entity(t, s, "ns-two", "SCROOGE")
	require.Equal(t, "two", e.Description)
	require.Equal(t, "ORG", e.Type)
	require.Equal(t, 1, e.Mentions)
	rs := relationsOf(t, s, "ns-two", 0, "SCROOGE")
	require.Len(t, rs, 1)
	require.Equal(t, 7.0, rs[0].Weight)
	require.Equal(t, []graph.Chunk{{ID: c2.ChunkID, DocID: "d", Text: "text two", Tokens: c2.Tokens}},
		chunks(t, s, "ns-two", c2.ChunkID))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts(t, s, "ns-one"))

	empty := "ns-empty"
	require.Equal(t, graph.Counts{}, counts(t, s, empty))
	require.Empty(t, entities(t, s, empty, "SCROOGE"))
	require.Empty(t, relationsOf(t, s, empty, 0, "SCROOGE"))
	require.Empty(t, chunks(t, s, empty, c1.ChunkID))
	require.Empty(t, snapshot(t, s, empty).Entities)

	before := snapshot(t, s, "ns-two")
	require.NoError(t, s.DeleteDocument(t.Context(), "ns-one", "d"))
	require.Equal(t, before, snapshot(t, s, "ns-two"))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts(t, s, "ns-two"))
	require.Equal(t, graph.Counts{}, counts(t, s, "ns-one"))

	// The document's counts are per namespace too.
	results := merge(t, s, chunk("ns-one", "d", 1, []events.Entity{ent("Other", "T", "")}))
	require.Equal(t, graph.MergeResult{Entities: 1, DocEntities: 1}, results[0])
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

func testConcurrentMerges(t *testing.T, open func(t *testing.T) graph.Store) {
	const docs, chunksPerDoc = 4, 30
	all := corpus(ns, docs, chunksPerDoc, 6)

	sequential := open(t)
	merge(t, sequential, all...)

	concurrent := open(t)
	const workers = 6
	ctx := t.Context()
	errs := make(chan error, workers+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Every worker merges its own share of chunks of every document
			// and redelivers some of the others' chunks.
			for i := w; i < len(all); i += workers {
				for _, c := range []graph.ChunkGraph{all[i], all[(i+1)%len(all)]} {
					if _, err := concurrent.MergeChunk(ctx, c); err != nil {
						errs <- fmt.Errorf("worker %d: %w", w, err)
						return
					}
				}
			}
		})
	}
	stopReading := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			if _, err := concurrent.Snapshot(ctx, ns); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			if _, err := concurrent.RelationsOf(ctx, ns, []string{"ENTITY 1", "ENTITY 2"}, 5); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(stopReading)
	reader.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	requireSameState(t, sequential, concurrent, ns)
	// The per-document counts kept by concurrent merges are right too:
	// redelivering the last chunk of each document reports the same in both.
	for d := range docs {
		last := all[(d+1)*chunksPerDoc-1]
		require.Equal(t, merge(t, sequential, last), merge(t, concurrent, last), "document %s", last.DocID)
	}
}

func testLargeBatch(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	// 2,000 chunks in one document.
	const chunksInDoc = 2000
	many := corpus(ns, 1, chunksInDoc, 3)
	results := merge(t, s, many...)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: chunksInDoc, Entities: 30, Relations: results[len(results)-1].DocRelations},
		counts(t, s, ns))
	require.Equal(t, 30, results[len(results)-1].DocEntities)

	// One chunk with thousands of entities and relations.
	const size = 2500
	es := make([]events.Entity, size)
	rs := make([]events.Relation, size-1)
	for i := range es {
		es[i] = ent(fmt.Sprintf("Big %d", i), "T", "d")
		if i > 0 {
			rs[i-1] = rel(es[i-1].Name, es[i].Name, "next", 1)
		}
	}
	big := chunk(ns, "big", 0, es, rs...)
	result := merge(t, s, big)[0]
	require.Equal(t, graph.MergeResult{Entities: size, Relations: size - 1, DocEntities: size, DocRelations: size - 1}, result)
	require.Equal(t, result, merge(t, s, big)[0])
	keys := make([]string, size)
	for i, e := range es {
		keys[i] = events.EntityKey(e.Name)
	}
	got := entities(t, s, ns, keys...)
	require.Len(t, got, size)
	require.Equal(t, fmt.Sprintf("BIG %d", size-1), got[size-1].Key)
	require.Len(t, relationsOf(t, s, ns, 0, keys...), size-1)
	require.Len(t, relationsOf(t, s, ns, 10, keys...), 10)
	require.Equal(t, 30+size, counts(t, s, ns).Entities)
}

func testSpecialCharacters(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	names := []string{
		`O'Brien`,
		`Say "hello"`,
		"`backtick` name",
		`$HOME and ${var} $1`,
		`{braces} [brackets] (parens)`,
		"line one\nline two",
		`Robert'); DROP TABLE entity_mentions;--`,
		`SELECT * FROM chunks WHERE 1=1`,
		`100% _like_ wildcards`,
		`back\slash \n not a newline`,
		`Ünïcødé 東京 🎄`,
		`semi;colon -- comment /* block */`,
	}
	namespace := `ns'"; DROP TABLE chunks;--`
	docID := "doc `$'\"{}"
	var es []events.Entity
	var rs []events.Relation
	for i, name := range names {
		es = append(es, ent(name, `TYPE "quoted"`, "description of "+name))
		if i > 0 {
			rs = append(rs, rel(names[i-1], name, "rel "+name, 1, name, "${kw}"))
		}
	}
	c := chunk(namespace, docID, 0, es, rs...)
	c.Text = "text with 'quotes' \"double\" `ticks` $x {y} \n newline; DROP TABLE chunks;"
	merge(t, s, c)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e := entity(t, s, namespace, events.EntityKey(name))
			require.Equal(t, name, e.Name)
			require.Equal(t, `TYPE "quoted"`, e.Type)
			require.Equal(t, "description of "+name, e.Description)
		})
	}
	got := relationsOf(t, s, namespace, 0, events.EntityKey(names[1]))
	require.Len(t, got, 2)
	require.ElementsMatch(t, []string{"rel " + names[1], "rel " + names[2]}, []string{got[0].Description, got[1].Description})
	require.Contains(t, got[0].Keywords, "${kw}")
	require.Equal(t, []graph.Chunk{{ID: c.ChunkID, DocID: docID, Text: c.Text, Tokens: c.Tokens}}, chunks(t, s, namespace, c.ChunkID))
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: len(names), Relations: len(names) - 1}, counts(t, s, namespace))

	require.NoError(t, s.DeleteDocument(t.Context(), namespace, docID))
	require.Equal(t, graph.Counts{}, counts(t, s, namespace))
}

func testChunkIdentityRequired(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	valid := chunk(ns, "d", 0, []events.Entity{ent("A", "T", "")})
	tests := []struct {
		name   string
		modify func(c *graph.ChunkGraph)
	}{
		{"no namespace", func(c *graph.ChunkGraph) { c.Namespace = "" }},
		{"no document", func(c *graph.ChunkGraph) { c.DocID = "" }},
		{"no chunk id", func(c *graph.ChunkGraph) { c.ChunkID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.modify(&c)
			_, err := s.MergeChunk(t.Context(), c)
			require.Error(t, err)
		})
	}
	require.Equal(t, graph.Counts{}, counts(t, s, ns))
}

func generation(t *testing.T, s graph.CommunityStore, namespace string) uint64 {
	t.Helper()
	g, err := s.Generation(t.Context(), namespace)
	require.NoError(t, err)
	return g
}

func communitiesGeneration(t *testing.T, s graph.CommunityStore, namespace string) uint64 {
	t.Helper()
	b, err := s.CommunitiesBuilt(t.Context(), namespace)
	require.NoError(t, err)
	return b.Generation
}

func communities(t *testing.T, s graph.CommunityStore, namespace string, maxLevel int) []graph.Community {
	t.Helper()
	cs, err := s.Communities(t.Context(), namespace, maxLevel)
	require.NoError(t, err)
	return cs
}

// testCommunitiesOf reads the communities of entities, which the graph
// has: stores may keep memberships as links between entities and
// communities.
func testCommunitiesOf(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	const otherNS = "other-ns"
	var names []events.Entity
	for _, n := range []string{"A", "B", "C", "D", "E", "F", "G", "X"} {
		names = append(names, ent(n, "T", ""))
	}
	merge(t, s, chunk(ns, "d", 0, names), chunk(otherNS, "d", 0, names))
	require.Empty(t, communitiesOf(t, s, ns, -1, "A"))

	parent := graph.Community{ID: "c0-aaaa", Level: 0, Keys: []string{"A", "B", "C", "D"}, Title: "The A group", Hash: "hp"}
	other := graph.Community{ID: "c0-bbbb", Level: 0, Keys: []string{"E", "F"}, Title: "E and F", Hash: "ho"}
	child0 := graph.Community{ID: "c1-0000", Level: 1, Parent: parent.ID, Keys: []string{"A", "B"}, Hash: "h0"}
	child1 := graph.Community{ID: "c1-cccc", Level: 1, Parent: parent.ID, Keys: []string{"C", "D"}, Hash: "h1"}
	grandchild := graph.Community{ID: "c2-dddd", Level: 2, Parent: child1.ID, Keys: []string{"C"}, Hash: "hg"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 7, []graph.Community{grandchild, child1, other, child0, parent}))
	require.Equal(t, []graph.CommunityMatch{match(parent, 1), match(child1, 1), match(grandchild, 1)},
		communitiesOf(t, s, ns, -1, "C", "NOBODY", "C"))
	require.Equal(t, []graph.CommunityMatch{match(parent, 2), match(other, 1), match(child0, 2)}, communitiesOf(t, s, ns, 1, "E", "A", "B"))
	require.Equal(t, []graph.CommunityMatch{match(parent, 1)}, communitiesOf(t, s, ns, 0, "D"))
	require.Empty(t, communitiesOf(t, s, ns, -1, "NOBODY"))
	require.Empty(t, communitiesOf(t, s, ns, -1))
	require.Empty(t, communitiesOf(t, s, otherNS, -1, "A"), "namespaces are isolated")

	elsewhere := graph.Community{ID: parent.ID, Keys: []string{"X"}, Title: "elsewhere", Hash: "h"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), otherNS, 3, []graph.Community{elsewhere}))
	changed := other
	changed.Keys = []string{"E", "F", "G"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 9, []graph.Community{changed}))
	require.Equal(t, []graph.CommunityMatch{match(changed, 1)}, communitiesOf(t, s, ns, -1, "G", "A", "X"), "old members are gone")
	require.Equal(t, []graph.CommunityMatch{match(elsewhere, 1)}, communitiesOf(t, s, otherNS, -1, "X", "G"))
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 12, nil))
	require.Empty(t, communitiesOf(t, s, ns, -1, "E", "G"))
}

func testTopCommunities(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	top := func(maxLevel, limit int) []string {
		t.Helper()
		cs, err := s.TopCommunities(t.Context(), ns, maxLevel, limit)
		require.NoError(t, err)
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	require.Empty(t, top(-1, 10))
	cs := []graph.Community{
		{ID: "c0-b", Level: 0, Keys: []string{"A", "B"}, Title: "rated 5, two members", Rating: 5},
		{ID: "c0-a", Level: 0, Keys: []string{"C", "D"}, Summary: "rated 5, two members, smaller id", Rating: 5},
		{ID: "c0-c", Level: 0, Keys: []string{"E", "F", "G"}, Title: "rated 5, three members", Rating: 5},
		{ID: "c0-d", Level: 0, Keys: []string{"H"}, Title: "rated 9", Rating: 9},
		{ID: "c0-e", Level: 0, Keys: []string{"I", "J", "K", "L"}, Rating: 10}, // no report yet
		{ID: "c1-a", Level: 1, Parent: "c0-c", Keys: []string{"E"}, Title: "deeper, rated 7", Rating: 7},
	}
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 1, cs))
	require.Equal(t, []string{"c0-d", "c1-a", "c0-c", "c0-a", "c0-b"}, top(-1, 10))
	require.Equal(t, []string{"c0-d", "c0-c", "c0-a", "c0-b"}, top(0, 10))
	require.Equal(t, []string{"c0-d", "c1-a"}, top(1, 2))
	require.Empty(t, func() []graph.Community {
		got, err := s.TopCommunities(t.Context(), "other-ns", -1, 10)
		require.NoError(t, err)
		return got
	}())
}

// match is how CommunitiesOf returns c when matched of the keys asked
// about are members.
func match(c graph.Community, matched int) graph.CommunityMatch {
	m := graph.CommunityMatch{Community: c, Members: len(c.Keys), Matched: matched}
	m.Keys = nil
	return m
}

func communitiesOf(t *testing.T, s graph.CommunityStore, namespace string, maxLevel int, keys ...string) []graph.CommunityMatch {
	t.Helper()
	cs, err := s.CommunitiesOf(t.Context(), namespace, keys, maxLevel)
	require.NoError(t, err)
	return cs
}

func testGeneration(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	const other = "other-ns"
	require.Zero(t, generation(t, s, ns), "unknown namespace")

	c0 := chunk(ns, "d", 0, []events.Entity{ent("A", "T", "a")}, rel("A", "B", "ab", 1))
	c1 := chunk(ns, "d", 1, []events.Entity{ent("B", "T", "b")})
	merge(t, s, c0)
	last := generation(t, s, ns)
	require.NotZero(t, last, "first merge")

	// changed asserts the step increased the generation, unchanged that it
	// left it alone.
	changed := func(step string) {
		t.Helper()
		g := generation(t, s, ns)
		require.Greater(t, g, last, step)
		last = g
	}
	unchanged := func(step string) {
		t.Helper()
		require.Equal(t, last, generation(t, s, ns), step)
	}

	merge(t, s, c0)
	unchanged("redelivered chunk")
	merge(t, s, c1)
	changed("new chunk")
	merge(t, s, c0, c1)
	unchanged("redelivered chunks")

	c1.Text = "corrected text"
	merge(t, s, c1)
	changed("chunk text corrected")
	c1.Entities = []events.Entity{ent("B", "T", "b, corrected")}
	merge(t, s, c1)
	changed("chunk entities corrected")
	c1.Relations = []events.Relation{rel("B", "C", "bc", 2)}
	merge(t, s, c1)
	changed("chunk relations corrected")
	merge(t, s, c1)
	unchanged("corrected chunk redelivered")

	require.NoError(t, s.SetSummaries(t.Context(), ns, []graph.Summary{{Key: "A", SourceHash: graph.DescriptionHash("a"), Text: "sum"}}))
	unchanged("summaries are derived data")
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, last, []graph.Community{{ID: "c0-x", Keys: []string{"A", "B"}}}))
	unchanged("communities are derived data")

	merge(t, s, chunk(other, "d", 0, []events.Entity{ent("A", "T", "a")}))
	unchanged("merge into another namespace")
	require.NotZero(t, generation(t, s, other))
	require.NoError(t, s.DeleteDocument(t.Context(), other, "d"))
	unchanged("deletion in another namespace")

	require.NoError(t, s.DeleteDocument(t.Context(), ns, "never-seen"))
	unchanged("deleting an unknown document")
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "d"))
	changed("deleting a document")
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "d"))
	unchanged("deleting the document again")

	// An emptied namespace does not start over: a rebuilt graph must not
	// look like one communities were built from before.
	merge(t, s, c0)
	changed("re-ingesting after deletion")
}

func testCommunities(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	require.Empty(t, communities(t, s, ns, -1))
	require.Zero(t, communitiesGeneration(t, s, ns))

	parent := graph.Community{
		ID: "c0-aaaa", Level: 0, Keys: []string{"A", "B", "C", "D"},
		Title: "The A group", Summary: "A, B, C and D work together.", Rating: 7.5,
		RatingExplanation: "Central to the corpus.",
		Findings: []graph.Finding{
			{Summary: "A leads", Explanation: "A leads B. [Data: Entities (0)]"},
			{Summary: `Quotes "and" commas, newlines`, Explanation: "line one\nline two"},
		},
		Hash: "hash-parent",
	}
	other := graph.Community{ID: "c0-bbbb", Level: 0, Keys: []string{"E", "F"}, Title: "E and F", Hash: "hash-other"}
	child1 := graph.Community{ID: "c1-cccc", Level: 1, Parent: parent.ID, Keys: []string{"C", "D"}, Title: "C and D", Rating: 2, Hash: "hash-c1"}
	child0 := graph.Community{ID: "c1-0000", Level: 1, Parent: parent.ID, Keys: []string{"A", "B"}, Title: "A and B", Rating: 3, Hash: "hash-c0"}
	grandchild := graph.Community{ID: "c2-dddd", Level: 2, Parent: child1.ID, Keys: []string{"C"}, Hash: "hash-gc"}

	built, err := s.CommunitiesBuilt(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, graph.CommunitiesBuild{}, built, "never built")

	// Given out of order: reads sort by level, then id.
	before := time.Now().Truncate(time.Millisecond)
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 7, []graph.Community{grandchild, child1, other, child0, parent}))
	built, err = s.CommunitiesBuilt(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, uint64(7), built.Generation)
	require.WithinRange(t, built.At, before, time.Now(), "when they were built")
	require.Equal(t, []graph.Community{parent, other, child0, child1, grandchild}, communities(t, s, ns, -1))
	require.Equal(t, []graph.Community{parent, other}, communities(t, s, ns, 0))
	require.Equal(t, []graph.Community{parent, other, child0, child1}, communities(t, s, ns, 1))
	require.Equal(t, []graph.Community{parent, other, child0, child1, grandchild}, communities(t, s, ns, 5))
	require.Equal(t, uint64(7), communitiesGeneration(t, s, ns))
	require.Zero(t, generation(t, s, ns), "recording communities does not change the graph's generation")
	require.Equal(t, graph.Counts{Communities: 5}, counts(t, s, ns), "every level's communities count")

	// Namespaces are isolated, also when ids repeat.
	const otherNS = "other-ns"
	require.Empty(t, communities(t, s, otherNS, -1))
	require.Zero(t, communitiesGeneration(t, s, otherNS))
	elsewhere := graph.Community{ID: parent.ID, Keys: []string{"X"}, Title: "elsewhere", Hash: "h"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), otherNS, 3, []graph.Community{elsewhere}))
	require.Equal(t, []graph.Community{elsewhere}, communities(t, s, otherNS, -1))
	require.Equal(t, uint64(3), communitiesGeneration(t, s, otherNS))
	require.Equal(t, []graph.Community{parent, other}, communities(t, s, ns, 0))
	require.Equal(t, uint64(7), communitiesGeneration(t, s, ns))

	// A replacement drops every community it does not list.
	changed := other
	changed.Title, changed.Keys, changed.Hash = "E, F and G", []string{"E", "F", "G"}, "hash-changed"
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 9, []graph.Community{changed}))
	require.Equal(t, []graph.Community{changed}, communities(t, s, ns, -1))
	rebuilt, err := s.CommunitiesBuilt(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, uint64(9), rebuilt.Generation)
	require.False(t, rebuilt.At.Before(built.At), "a rebuild records its own time")

	// Replacing with none records the generation of an empty graph.
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 12, nil))
	require.Empty(t, communities(t, s, ns, -1))
	require.Equal(t, uint64(12), communitiesGeneration(t, s, ns))
	require.Equal(t, []graph.Community{elsewhere}, communities(t, s, otherNS, -1))

	// Merging afterwards moves the generation past the recorded one.
	merge(t, s, chunk(ns, "d", 0, []events.Entity{ent("A", "T", "")}))
	require.Equal(t, uint64(12), communitiesGeneration(t, s, ns))
}

func testSummaries(t *testing.T, open func(t *testing.T) graph.Store) {
	s := open(t)
	const otherNS = "other-ns"
	d1 := chunk(ns, "d1", 0, []events.Entity{ent("Scrooge", "PERSON", "A miser."), ent("Marley", "PERSON", "A ghost.")},
		rel("Scrooge", "Marley", "partners", 1))
	d2 := chunk(ns, "d2", 0, []events.Entity{ent("Scrooge", "PERSON", "Hates Christmas.")})
	d3 := chunk(ns, "d3", 0, []events.Entity{ent("Scrooge", "PERSON", "Redeemed.")})
	merge(t, s, d1, d2)
	// The same graph in another namespace.
	merge(t, s, chunk(otherNS, "d1", 0, d1.Entities, d1.Relations...), chunk(otherNS, "d2", 0, d2.Entities))

	joined := "A miser.\nHates Christmas."
	require.Equal(t, joined, entity(t, s, ns, "SCROOGE").Description)
	require.NoError(t, s.SetSummaries(t.Context(), ns, []graph.Summary{
		{Key: "SCROOGE", SourceHash: graph.DescriptionHash(joined), Text: "A miserly man who hates Christmas."},
		// Made from a description Marley does not have: never applies.
		{Key: "MARLEY", SourceHash: graph.DescriptionHash("A ghost.\nChained."), Text: "A chained ghost."},
		{Key: "NOBODY", SourceHash: graph.DescriptionHash(""), Text: "no such entity"},
	}))
	require.NoError(t, s.SetSummaries(t.Context(), ns, nil))

	summarized := graph.Entity{
		Key: "SCROOGE", Name: "Scrooge", Type: "PERSON", Description: "A miserly man who hates Christmas.",
		Mentions: 2, ChunkIDs: sortedIDs(d1.ChunkID, d2.ChunkID),
	}
	require.Equal(t, []graph.Entity{summarized}, entities(t, s, ns, "SCROOGE"))
	require.Equal(t, "A ghost.", entity(t, s, ns, "MARLEY").Description)
	require.Empty(t, entities(t, s, ns, "NOBODY"))
	snap := snapshot(t, s, ns)
	require.Len(t, snap.Entities, 2)
	require.Equal(t, "A ghost.", snap.Entities[0].Description)
	require.Equal(t, summarized, snap.Entities[1])
	require.Equal(t, "partners", snap.Relations[0].Description, "relations are not summarised")

	// Another namespace with the same descriptions has no summary.
	require.Equal(t, joined, entity(t, s, otherNS, "SCROOGE").Description)

	// A new description makes the summary stale: the joined descriptions
	// come back, and so does the summary when the document goes again.
	merge(t, s, d3)
	require.Equal(t, joined+"\nRedeemed.", entity(t, s, ns, "SCROOGE").Description)
	require.Equal(t, joined+"\nRedeemed.", snapshot(t, s, ns).Entities[1].Description)
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "d3"))
	require.Equal(t, summarized, entity(t, s, ns, "SCROOGE"))
	require.NoError(t, s.DeleteDocument(t.Context(), ns, "d2"))
	require.Equal(t, "A miser.", entity(t, s, ns, "SCROOGE").Description)

	// A later summary of a key replaces the earlier one.
	require.NoError(t, s.SetSummaries(t.Context(), ns, []graph.Summary{
		{Key: "SCROOGE", SourceHash: graph.DescriptionHash("A miser."), Text: "Stingy."},
	}))
	require.Equal(t, "Stingy.", entity(t, s, ns, "SCROOGE").Description)
	require.Equal(t, "Stingy.", snapshot(t, s, ns).Entities[1].Description)
	require.Equal(t, joined, entity(t, s, otherNS, "SCROOGE").Description)

	require.Error(t, s.SetSummaries(t.Context(), ns, []graph.Summary{{SourceHash: "x", Text: "no key"}}))
}
