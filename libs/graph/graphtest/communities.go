package graphtest

// The community half of the contract: generations, communities and their
// reports, summaries.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

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

	// A report's body is not read with the matches, only whether there is
	// one: other's report has no title.
	parent := graph.Community{ID: "c0-aaaa", Level: 0, Keys: []string{"A", "B", "C", "D"}, Title: "The A group", Hash: "hp",
		Summary: "The A group's summary", Rating: 7.5, RatingExplanation: "why", Findings: []graph.Finding{{Summary: "f", Explanation: "e"}}}
	other := graph.Community{ID: "c0-bbbb", Level: 0, Keys: []string{"E", "F"}, Summary: "E and F", Hash: "ho"}
	child0 := graph.Community{ID: "c1-0000", Level: 1, Parent: parent.ID, Keys: []string{"A", "B"}, Hash: "h0"}
	child1 := graph.Community{ID: "c1-cccc", Level: 1, Parent: parent.ID, Keys: []string{"C", "D"}, Hash: "h1"}
	grandchild := graph.Community{ID: "c2-dddd", Level: 2, Parent: child1.ID, Keys: []string{"C"}, Hash: "hg"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 7, []graph.Community{grandchild, child1, other, child0, parent}))
	require.Equal(t, []graph.CommunityMatch{match(parent, 1), match(child1, 1), match(grandchild, 1)},
		communitiesOf(t, s, ns, -1, "C", "NOBODY", "C"))
	require.Equal(t, []graph.CommunityMatch{match(parent, 2), match(other, 1), match(child0, 2)}, communitiesOf(t, s, ns, 1, "E", "A", "B"))
	require.Equal(t, []graph.CommunityMatch{match(parent, 1)}, communitiesOf(t, s, ns, 0, "D"))
	body, err := s.CommunitiesByID(t.Context(), ns, 0, []string{parent.ID})
	require.NoError(t, err)
	withoutKeys := parent
	withoutKeys.Keys = nil
	require.Equal(t, []graph.Community{withoutKeys}, body, "the body is read by id")
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
	members := map[string]int{}
	top := func(maxLevel, limit int) []string {
		t.Helper()
		cs, err := s.TopCommunities(t.Context(), ns, maxLevel, limit)
		require.NoError(t, err)
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
			require.Empty(t, c.Keys, "read without the member list")
			require.Equal(t, members[c.ID], c.Members, "the size of %s", c.ID)
			require.True(t, c.HasReport, "%s has a report", c.ID)
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
	for _, c := range cs {
		members[c.ID] = len(c.Keys)
	}
	require.NoError(t, s.ReplaceCommunities(t.Context(), ns, 1, cs))
	require.Equal(t, []string{"c0-d", "c1-a", "c0-c", "c0-a", "c0-b"}, top(-1, 10))
	require.Equal(t, []string{"c0-d", "c0-c", "c0-a", "c0-b"}, top(0, 10))
	require.Equal(t, []string{"c0-d", "c1-a"}, top(1, 2))
	require.Empty(t, func() []graph.CommunityMatch {
		got, err := s.TopCommunities(t.Context(), "other-ns", -1, 10)
		require.NoError(t, err)
		return got
	}())
}

// match is how CommunitiesOf returns c when matched of the keys asked
// about are members: without its members and its report's body.
func match(c graph.Community, matched int) graph.CommunityMatch {
	m := graph.CommunityMatch{Community: c, Members: len(c.Keys), Matched: matched, HasReport: c.Title != "" || c.Summary != ""}
	m.Keys, m.Summary, m.RatingExplanation, m.Findings = nil, "", "", nil
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

	// By id within a level, without member lists; a level is part of the
	// identity, unknown ids are skipped, and the namespace is respected.
	withoutKeys := func(cs ...graph.Community) []graph.Community {
		out := []graph.Community{}
		for _, c := range cs {
			c.Keys = nil
			out = append(out, c)
		}
		return out
	}
	byID := func(namespace string, level int, ids ...string) []graph.Community {
		t.Helper()
		got, err := s.CommunitiesByID(t.Context(), namespace, level, ids)
		require.NoError(t, err)
		for i := range got {
			if len(got[i].Keys) == 0 {
				got[i].Keys = nil
			}
		}
		return append([]graph.Community{}, got...)
	}
	require.Equal(t, withoutKeys(parent), byID(ns, 0, parent.ID))
	require.Equal(t, withoutKeys(child0, child1), byID(ns, 1, child1.ID, "c1-nope", child0.ID, child1.ID))
	require.Equal(t, withoutKeys(), byID(ns, 0, child1.ID), "child1 is not at level 0")
	require.Equal(t, withoutKeys(), byID(ns, 0))
	require.Equal(t, withoutKeys(elsewhere), byID(otherNS, 0, parent.ID))

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
