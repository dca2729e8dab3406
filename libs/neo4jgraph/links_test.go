package neo4jgraph_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
)

const linksNamespace = "links"

// linkChunk is a chunk of linksNamespace relating the pairs of names in
// relations ("A", "B", weight).
func linkChunk(doc string, index int, relations ...any) graph.ChunkGraph {
	c := graph.ChunkGraph{
		Namespace: linksNamespace, DocID: doc, JobID: "job", ChunkID: fmt.Sprintf("%s-%d", doc, index),
		Index: index, Text: "text", Tokens: 1,
	}
	for i := 0; i < len(relations); i += 3 {
		src, dst, weight := relations[i].(string), relations[i+1].(string), relations[i+2].(float64)
		c.Entities = append(c.Entities, events.Entity{Name: src, Type: "T"}, events.Entity{Name: dst, Type: "T"})
		c.Relations = append(c.Relations, events.Relation{Source: src, Target: dst, Description: "r", Weight: weight})
	}
	return c
}

// requireLinksRecounted checks the kept links and degrees against a recount
// of the mentions, and the reads made from them (Degrees, TopRelations at
// every cut, Edges) against the snapshot's relations.
func requireLinksRecounted(t *testing.T, s *neo4jgraph.Store, stage string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.CheckLinks(ctx, linksNamespace), stage)
	snap, err := s.Snapshot(ctx, linksNamespace)
	require.NoError(t, err)
	wantDegrees := map[string]int{}
	for _, r := range snap.Relations {
		wantDegrees[r.Source]++
		wantDegrees[r.Target]++
	}
	keys := make([]string, 0, len(snap.Entities))
	for _, e := range snap.Entities {
		keys = append(keys, e.Key)
	}
	degrees, err := s.Degrees(ctx, linksNamespace, keys)
	require.NoError(t, err)
	require.Equal(t, wantDegrees, degrees, stage)

	var edges []graph.Edge
	require.NoError(t, s.EachEdge(ctx, linksNamespace, func(e graph.Edge) error { edges = append(edges, e); return nil }))
	slices.SortFunc(edges, func(a, b graph.Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	require.Len(t, edges, len(snap.Relations), stage)
	for i, r := range snap.Relations {
		require.Equal(t, graph.Edge{Source: r.Source, Target: r.Target, Weight: r.Weight}, edges[i], stage)
	}

	// Every relation touching the first two keys, ranked from the snapshot.
	if len(keys) < 2 {
		top, err := s.TopRelations(ctx, linksNamespace, keys, 0)
		require.NoError(t, err)
		require.Empty(t, top, stage)
		return
	}
	asked := keys[:2]
	all := provenance.NewTopEdges(0)
	for _, r := range snap.Relations {
		for _, key := range asked {
			if other := map[string]string{r.Source: r.Target, r.Target: r.Source}[key]; other != "" {
				all.Offer(key, wantDegrees[key], provenance.Neighbour{Key: other, Weight: r.Weight, Degree: wantDegrees[other]})
			}
		}
	}
	want := all.Edges()
	for limit := 1; limit <= len(want)+1; limit++ {
		top, err := s.TopRelations(ctx, linksNamespace, append([]string{asked[1], "NOBODY"}, asked...), limit)
		require.NoError(t, err)
		require.Equal(t, want[:min(limit, len(want))], top, "%s: best %d", stage, limit)
	}
}

// TestKeptLinksAreRecomputedIdempotently redelivers, replaces and deletes
// chunks and documents: after each step the kept links and degrees equal a
// recount of the mentions, never counting a redelivered chunk twice.
func TestKeptLinksAreRecomputedIdempotently(t *testing.T) {
	s := openStore(t)
	defer s.Close()
	ctx := t.Context()
	a0 := linkChunk("a", 0, "Hub", "Ann", 1.0, "Hub", "Bob", 2.0, "Ann", "Bob", 0.5)
	a1 := linkChunk("a", 1, "Hub", "Cat", 3.0, "Hub", "Ann", 1.5)
	b0 := linkChunk("b", 0, "Hub", "Ann", 2.0, "Ann", "Dan", 1.0, "Cat", "Dan", 0.25)
	a1Changed := linkChunk("a", 1, "Cat", "Dan", 4.0, "Hub", "Ann", 0.1)

	steps := []struct {
		name string
		do   func() error
	}{
		{"merged", func() error { return mergeAll(t, s, a0, a1, b0) }},
		{"redelivered", func() error { return mergeAll(t, s, a0, b0, a1, a0) }},
		{"chunk replaced", func() error { return mergeAll(t, s, a1Changed) }},
		{"replaced chunk redelivered", func() error { return mergeAll(t, s, a1Changed, a1Changed) }},
		{"document deleted", func() error { return s.DeleteDocument(ctx, linksNamespace, "a") }},
		{"document deleted twice", func() error { return s.DeleteDocument(ctx, linksNamespace, "a") }},
		{"document merged again", func() error { return mergeAll(t, s, a0, a1) }},
		{"chunk emptied", func() error { return mergeAll(t, s, linkChunk("b", 0)) }},
		{"all deleted", func() error {
			return errors.Join(s.DeleteDocument(ctx, linksNamespace, "a"), s.DeleteDocument(ctx, linksNamespace, "b"))
		}},
	}
	for _, step := range steps {
		require.NoError(t, step.do(), step.name)
		requireLinksRecounted(t, s, step.name)
	}
	counts, err := s.Counts(ctx, linksNamespace)
	require.NoError(t, err)
	require.Equal(t, graph.Counts{}, counts)
}

// TestOpenBuildsLinksOfEarlierVersion opens a partition written without
// kept links (as the version before them wrote it): Open builds them.
func TestOpenBuildsLinksOfEarlierVersion(t *testing.T) {
	s, cfg := openPartition(t)
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, mergeAll(t, s,
		linkChunk("a", 0, "Hub", "Ann", 1.0, "Hub", "Bob", 2.0, "Ann", "Bob", 0.5),
		linkChunk("b", 0, "Hub", "Ann", 2.0, "Ann", "Dan", 1.0)))
	before, err := s.TopRelations(ctx, linksNamespace, []string{"HUB", "ANN"}, 0)
	require.NoError(t, err)
	require.Len(t, before, 4)

	require.NoError(t, s.ForgetLinks(ctx))
	require.Error(t, s.CheckLinks(ctx, linksNamespace), "the links are gone")
	reopened, err := neo4jgraph.Open(ctx, cfg)
	require.NoError(t, err)
	defer reopened.Close()
	requireLinksRecounted(t, reopened, "migrated")
	after, err := reopened.TopRelations(ctx, linksNamespace, []string{"HUB", "ANN"}, 0)
	require.NoError(t, err)
	require.Equal(t, before, after)

	// The migrated partition is maintained like any other.
	require.NoError(t, reopened.DeleteDocument(ctx, linksNamespace, "b"))
	requireLinksRecounted(t, reopened, "migrated, then a document deleted")
}

func mergeAll(t *testing.T, s *neo4jgraph.Store, chunks ...graph.ChunkGraph) error {
	t.Helper()
	for _, c := range chunks {
		if _, err := s.MergeChunk(t.Context(), c); err != nil {
			return err
		}
	}
	return nil
}
