package graphtest

// The read half of the contract: degrees, ranked relations, bounded
// entity reads, search and chunks.

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

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
