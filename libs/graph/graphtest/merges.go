package graphtest

// The merge half of the contract: aggregation of mentions, redelivery,
// replacement, subtraction and concurrency.

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

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
