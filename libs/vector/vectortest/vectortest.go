// Package vectortest is the contract suite every vector store must pass.
// An implementation's test calls Run with a function that opens an empty
// store; persistence across reopen is left to the implementation's own tests
// because only it knows how to reopen.
package vectortest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/vector"
)

// scoreTolerance absorbs float32 rounding between the store and the float64
// reference.
const scoreTolerance = 1e-4

// Run runs the contract suite. open must return an empty store; Run closes
// every store it opens.
func Run(t *testing.T, open func(t *testing.T) vector.Store) {
	t.Helper()
	openStore := func(t *testing.T) vector.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s vector.Store)
	}{
		{"TopKMatchesBruteForce", testTopKMatchesBruteForce},
		{"CosineScores", testCosineScores},
		{"UpsertIsIdempotent", testUpsertIsIdempotent},
		{"NamespaceIsolation", testNamespaceIsolation},
		{"KindIsolation", testKindIsolation},
		{"DocFilter", testDocFilter},
		{"DeleteDocument", testDeleteDocument},
		{"TopKLargerThanCount", testTopKLargerThanCount},
		{"EmptyStore", testEmptyStore},
		{"InvalidUpsert", testInvalidUpsert},
		{"InvalidSearch", testInvalidSearch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, openStore(t)) })
	}
}

func testTopKMatchesBruteForce(t *testing.T, s vector.Store) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	const dim, n, topK = 24, 300, 10
	items := randomItems(rng, "ns", "chunk", n, dim, 7)
	for batch := range slices.Chunk(items, 64) {
		require.NoError(t, s.Upsert(ctx, batch))
	}
	count, err := s.Count(ctx, "ns", "chunk")
	require.NoError(t, err)
	require.Equal(t, n, count)

	for range 5 {
		q := vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, dim), TopK: topK}
		hits, err := s.Search(ctx, q)
		require.NoError(t, err)
		requireTopK(t, items, q, hits)

		q.DocID = "doc-3"
		hits, err = s.Search(ctx, q)
		require.NoError(t, err)
		requireTopK(t, items, q, hits)
	}
}

func testCosineScores(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "same-direction", DocID: "d", Vector: []float32{5, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "diagonal", DocID: "d", Vector: []float32{0.5, 0.5}},
		{Namespace: "ns", Kind: "chunk", ID: "orthogonal", DocID: "d", Vector: []float32{0, 3}},
		{Namespace: "ns", Kind: "chunk", ID: "opposite", DocID: "d", Vector: []float32{-2, 0}},
	}))
	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 0}, TopK: 4})
	require.NoError(t, err)
	require.Equal(t, []string{"same-direction", "diagonal", "orthogonal", "opposite"}, hitIDs(hits))
	want := []float32{1, float32(math.Sqrt2 / 2), 0, -1}
	for i, h := range hits {
		require.InDelta(t, want[i], h.Score, scoreTolerance, "score of %s", h.ID)
		require.Equal(t, "d", h.DocID)
	}
}

func testUpsertIsIdempotent(t *testing.T, s vector.Store) {
	ctx := t.Context()
	first := vector.Item{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "doc-old", Vector: []float32{1, 0, 0}}
	other := vector.Item{Namespace: "ns", Kind: "chunk", ID: "b", DocID: "doc-old", Vector: []float32{0, 1, 1}}
	require.NoError(t, s.Upsert(ctx, []vector.Item{first, other}))
	require.NoError(t, s.Upsert(ctx, []vector.Item{first, other}))

	latest := vector.Item{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "doc-new", Vector: []float32{0, 0, 2}}
	require.NoError(t, s.Upsert(ctx, []vector.Item{latest}))

	count, err := s.Count(ctx, "ns", "chunk")
	require.NoError(t, err)
	require.Equal(t, 2, count)

	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{0, 0, 1}, TopK: 1})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "a", hits[0].ID)
	require.Equal(t, "doc-new", hits[0].DocID)
	require.InDelta(t, 1, hits[0].Score, scoreTolerance)

	// The old vector must be gone, not merely outranked.
	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 0, 0}, TopK: 2})
	require.NoError(t, err)
	for _, h := range hits {
		require.Less(t, h.Score, float32(0.5), "hit %s still scores like the replaced vector", h.ID)
	}

	// The same ID twice in one batch: the later item wins.
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "c", DocID: "d", Vector: []float32{1, 1, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "c", DocID: "d", Vector: []float32{-1, -1, 0}},
	}))
	count, err = s.Count(ctx, "ns", "chunk")
	require.NoError(t, err)
	require.Equal(t, 3, count)
	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{-1, -1, 0}, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, hitIDs(hits))
	require.InDelta(t, 1, hits[0].Score, scoreTolerance)
}

func testNamespaceIsolation(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "tenant-a", Kind: "chunk", ID: "x", DocID: "doc", Vector: []float32{1, 0}},
		{Namespace: "tenant-a", Kind: "chunk", ID: "y", DocID: "doc", Vector: []float32{0, 1}},
		{Namespace: "tenant-b", Kind: "chunk", ID: "x", DocID: "doc", Vector: []float32{-1, 0}},
	}))
	// Different dimensions in different namespaces are independent.
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "tenant-c", Kind: "chunk", ID: "z", DocID: "doc", Vector: []float32{1, 2, 3}},
	}))

	requireCount(t, s, "tenant-a", "chunk", 2)
	requireCount(t, s, "tenant-b", "chunk", 1)
	requireCount(t, s, "tenant-c", "chunk", 1)
	requireCount(t, s, "tenant-d", "chunk", 0)

	hits, err := s.Search(ctx, vector.Query{Namespace: "tenant-b", Kind: "chunk", Vector: []float32{1, 0}, TopK: 10})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "x", hits[0].ID)
	require.InDelta(t, -1, hits[0].Score, scoreTolerance, "tenant-b's x must not be confused with tenant-a's")

	require.NoError(t, s.DeleteDocument(ctx, "tenant-a", "doc"))
	requireCount(t, s, "tenant-a", "chunk", 0)
	requireCount(t, s, "tenant-b", "chunk", 1)
	requireCount(t, s, "tenant-c", "chunk", 1)
}

func testKindIsolation(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "shared-id", DocID: "doc", Vector: []float32{1, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "chunk-only", DocID: "doc", Vector: []float32{1, 1}},
		{Namespace: "ns", Kind: "entity", ID: "shared-id", DocID: "doc", Vector: []float32{0, 1}},
	}))
	requireCount(t, s, "ns", "chunk", 2)
	requireCount(t, s, "ns", "entity", 1)

	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: []float32{1, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"shared-id"}, hitIDs(hits))
	require.InDelta(t, 0, hits[0].Score, scoreTolerance, "entity shared-id must not be confused with chunk shared-id")

	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"shared-id", "chunk-only"}, hitIDs(hits))
}

func testDocFilter(t *testing.T, s vector.Store) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	items := randomItems(rng, "ns", "chunk", 60, 8, 3)
	require.NoError(t, s.Upsert(ctx, items))

	wantIDs := map[string]bool{}
	for _, it := range items {
		if it.DocID == "doc-1" {
			wantIDs[it.ID] = true
		}
	}
	require.NotEmpty(t, wantIDs)

	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, 8), TopK: len(items), DocID: "doc-1"})
	require.NoError(t, err)
	require.Len(t, hits, len(wantIDs))
	for _, h := range hits {
		require.Equal(t, "doc-1", h.DocID)
		require.True(t, wantIDs[h.ID], "hit %s is not in doc-1", h.ID)
	}

	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, 8), TopK: 5, DocID: "no-such-doc"})
	require.NoError(t, err)
	require.Empty(t, hits)
}

func testDeleteDocument(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "c1", DocID: "doomed", Vector: []float32{1, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "c2", DocID: "doomed", Vector: []float32{1, 0.1}},
		{Namespace: "ns", Kind: "entity", ID: "e1", DocID: "doomed", Vector: []float32{1, 0.2}},
		{Namespace: "ns", Kind: "chunk", ID: "c3", DocID: "kept", Vector: []float32{0, 1}},
		{Namespace: "ns", Kind: "entity", ID: "e2", DocID: "kept", Vector: []float32{0, 1}},
	}))

	require.NoError(t, s.DeleteDocument(ctx, "ns", "doomed"))
	requireCount(t, s, "ns", "chunk", 1)
	requireCount(t, s, "ns", "entity", 1)

	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"c3"}, hitIDs(hits))
	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: []float32{1, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"e2"}, hitIDs(hits))

	require.NoError(t, s.DeleteDocument(ctx, "ns", "doomed"), "deleting an absent document is a no-op")
	require.NoError(t, s.DeleteDocument(ctx, "ns", "never-existed"))

	// A deleted document's items can be indexed again.
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "c1", DocID: "doomed", Vector: []float32{1, 0}},
	}))
	requireCount(t, s, "ns", "chunk", 2)
}

func testTopKLargerThanCount(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "d", Vector: []float32{1, 0, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "b", DocID: "d", Vector: []float32{1, 1, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "c", DocID: "d", Vector: []float32{0, 0, 1}},
	}))
	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 0, 0}, TopK: 50})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, hitIDs(hits))
}

func testEmptyStore(t *testing.T, s vector.Store) {
	ctx := t.Context()
	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 3})
	require.NoError(t, err)
	require.Empty(t, hits)
	requireCount(t, s, "ns", "chunk", 0)
	require.NoError(t, s.Upsert(ctx, nil), "an empty batch is a no-op")
	requireCount(t, s, "ns", "chunk", 0)
}

func testInvalidUpsert(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "existing", DocID: "d", Vector: []float32{1, 2, 3, 4}},
	}))
	valid := vector.Item{Namespace: "ns", Kind: "chunk", ID: "valid", DocID: "d", Vector: []float32{4, 3, 2, 1}}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))

	tests := []struct {
		name string
		bad  vector.Item
	}{
		{"zero vector", vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "d", Vector: []float32{0, 0, 0, 0}}},
		{"empty vector", vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "d"}},
		{"NaN component", vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "d", Vector: []float32{1, nan, 0, 0}}},
		{"Inf component", vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "d", Vector: []float32{1, inf, 0, 0}}},
		{"dimension mismatch with stored vectors", vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "d", Vector: []float32{1, 2, 3}}},
		{"empty namespace", vector.Item{Kind: "chunk", ID: "bad", DocID: "d", Vector: []float32{1, 2, 3, 4}}},
		{"empty kind", vector.Item{Namespace: "ns", ID: "bad", DocID: "d", Vector: []float32{1, 2, 3, 4}}},
		{"empty id", vector.Item{Namespace: "ns", Kind: "chunk", DocID: "d", Vector: []float32{1, 2, 3, 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NotPanics(t, func() {
				err := s.Upsert(ctx, []vector.Item{valid, tc.bad})
				require.Error(t, err)
			})
			requireCount(t, s, "ns", "chunk", 1)
		})
	}

	t.Run("dimension mismatch within one batch", func(t *testing.T) {
		require.NotPanics(t, func() {
			err := s.Upsert(ctx, []vector.Item{
				{Namespace: "fresh", Kind: "chunk", ID: "a", DocID: "d", Vector: []float32{1, 2}},
				{Namespace: "fresh", Kind: "chunk", ID: "b", DocID: "d", Vector: []float32{1, 2, 3}},
			})
			require.Error(t, err)
		})
		requireCount(t, s, "fresh", "chunk", 0)
	})
}

func testInvalidSearch(t *testing.T, s vector.Store) {
	ctx := t.Context()
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "d", Vector: []float32{1, 2, 3}},
	}))
	tests := []struct {
		name string
		q    vector.Query
	}{
		{"zero vector", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{0, 0, 0}, TopK: 1}},
		{"empty vector", vector.Query{Namespace: "ns", Kind: "chunk", TopK: 1}},
		{"NaN component", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{float32(math.NaN()), 1, 1}, TopK: 1}},
		{"shorter than stored", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 1}},
		{"longer than stored", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2, 3, 4}, TopK: 1}},
		{"zero TopK", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2, 3}, TopK: 0}},
		{"negative TopK", vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2, 3}, TopK: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NotPanics(t, func() {
				hits, err := s.Search(ctx, tc.q)
				require.Error(t, err)
				require.Empty(t, hits)
			})
		})
	}
}

// requireTopK checks hits against a brute-force ranking of items. It compares
// scores rank by rank rather than IDs so that near-ties, which float32 and
// float64 arithmetic may order differently, cannot make the test flaky; each
// hit's own score is also checked, so a wrong ID cannot pass.
func requireTopK(t *testing.T, items []vector.Item, q vector.Query, hits []vector.Hit) {
	t.Helper()
	type scored struct {
		item  vector.Item
		score float64
	}
	var ref []scored
	byID := map[string]scored{}
	for _, it := range items {
		if it.Namespace != q.Namespace || it.Kind != q.Kind || (q.DocID != "" && it.DocID != q.DocID) {
			continue
		}
		sc := scored{item: it, score: cosine(it.Vector, q.Vector)}
		ref = append(ref, sc)
		byID[it.ID] = sc
	}
	slices.SortFunc(ref, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	ref = ref[:min(len(ref), q.TopK)]

	require.Len(t, hits, len(ref))
	seen := map[string]bool{}
	for i, h := range hits {
		require.False(t, seen[h.ID], "duplicate hit %s", h.ID)
		seen[h.ID] = true
		want, ok := byID[h.ID]
		require.True(t, ok, "hit %s is not a candidate for the query", h.ID)
		require.Equal(t, want.item.DocID, h.DocID, "doc of hit %s", h.ID)
		require.InDelta(t, want.score, h.Score, scoreTolerance, "score of hit %s", h.ID)
		require.InDelta(t, ref[i].score, h.Score, scoreTolerance, "score at rank %d", i)
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func randomItems(rng *rand.Rand, namespace, kind string, n, dim, docs int) []vector.Item {
	items := make([]vector.Item, n)
	for i := range items {
		items[i] = vector.Item{
			Namespace: namespace,
			Kind:      kind,
			ID:        fmt.Sprintf("item-%04d", i),
			DocID:     fmt.Sprintf("doc-%d", i%docs),
			Vector:    randomVector(rng, dim),
		}
	}
	return items
}

// randomVector draws unnormalised components so that stores are exercised on
// vectors whose lengths differ.
func randomVector(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * (1 + rng.Float64()*3))
	}
	return v
}

func hitIDs(hits []vector.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

func requireCount(t *testing.T, s vector.Store, namespace, kind string, want int) {
	t.Helper()
	got, err := s.Count(t.Context(), namespace, kind)
	require.NoError(t, err)
	require.Equal(t, want, got, "count of %s/%s", namespace, kind)
}
