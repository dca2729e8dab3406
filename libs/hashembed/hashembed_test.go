package hashembed_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/hashembed"
)

func embed(t *testing.T, e *hashembed.Embedder, texts ...string) [][]float32 {
	t.Helper()
	vectors, err := e.Embed(t.Context(), texts)
	require.NoError(t, err)
	require.Len(t, vectors, len(texts))
	for i, v := range vectors {
		require.Len(t, v, e.Dim(), "vector %d", i)
	}
	return vectors
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

func TestModelAndDim(t *testing.T) {
	require.Equal(t, 256, hashembed.New(256).Dim())
	require.Equal(t, "hashembed-v1-256", hashembed.New(256).Model())
	require.Equal(t, "hashembed-v1-64", hashembed.New(64).Model())
	require.Panics(t, func() { hashembed.New(0) })
}

func TestDeterministic(t *testing.T) {
	text := "Marie Curie discovered polonium and radium in Paris."
	a := embed(t, hashembed.New(128), text, text)
	b := embed(t, hashembed.New(128), text)
	require.Equal(t, a[0], a[1])
	require.Equal(t, a[0], b[0], "separate embedders must agree")

	// Pin exact outputs so that an accidental change of the algorithm, which
	// would silently invalidate every stored vector, fails here and forces a
	// version bump in Model.
	third := float32(1 / math.Sqrt(3))
	pinned := embed(t, hashembed.New(16), "graph", "knowledge graph")
	require.Equal(t, []float32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, pinned[0])
	require.InDeltaSlice(t, []float32{0, 0, 0, 0, 0, 0, -third, 0, 0, 0, 0, 0, 0, -third, third, 0}, pinned[1], 1e-6,
		"knowledge, graph and the pair knowledge|graph: three features, signed")
}

func TestUnitNorm(t *testing.T) {
	e := hashembed.New(256)
	texts := []string{
		"",
		"   ...!?   ",
		"one",
		"The quick brown fox jumps over the lazy dog, the quick brown fox again.",
		"東京は日本の首都です。",
		"Grüße aus Köln 123",
	}
	for i, v := range embed(t, e, texts...) {
		var sumSquares float64
		for _, x := range v {
			sumSquares += float64(x) * float64(x)
		}
		require.InDelta(t, 1, sumSquares, 1e-5, "text %q", texts[i])
	}
}

func TestEmptyTextIsFixedNonZero(t *testing.T) {
	e := hashembed.New(64)
	v := embed(t, e, "", "  \t\n", "!!! --- ???", "word")
	require.Equal(t, v[0], v[1])
	require.Equal(t, v[0], v[2])
	require.NotEqual(t, v[0], v[3])
	for _, x := range v[0] {
		require.NotZero(t, x)
	}
}

func TestSharedWordsAreMoreSimilar(t *testing.T) {
	e := hashembed.New(256)
	v := embed(t, e,
		"The knowledge graph links entities extracted from documents.",
		"Entities extracted from documents are linked in a knowledge graph.",
		"Bake the bread at two hundred degrees for forty minutes.",
	)
	related := cosine(v[0], v[1])
	unrelated := cosine(v[0], v[2])
	require.Greater(t, related, 0.5)
	require.Less(t, math.Abs(unrelated), 0.3)
	require.Greater(t, related, unrelated+0.3)
}

func TestCaseAndPunctuationInsensitive(t *testing.T) {
	v := embed(t, hashembed.New(256), "Graph RAG, over NATS!", "graph rag over nats")
	require.Equal(t, v[0], v[1])
}

func TestWordOrderMattersThroughBigrams(t *testing.T) {
	v := embed(t, hashembed.New(256), "dog bites man", "man bites dog")
	sim := cosine(v[0], v[1])
	require.Less(t, sim, 0.99, "bigrams must distinguish word order")
	require.Greater(t, sim, 0.3, "the shared words must still count")
}

func TestCJK(t *testing.T) {
	e := hashembed.New(256)
	v := embed(t, e,
		"東京は日本の首都です",
		"日本の首都は東京です",
		"猫が好きな人は多い",
		"",
	)
	require.NotEqual(t, v[0], v[3], "CJK text must produce tokens")
	related := cosine(v[0], v[1])
	unrelated := cosine(v[0], v[2])
	require.Greater(t, related, unrelated+0.3)

	// Mixed scripts: the Latin word and the Han characters both count.
	mixed := embed(t, e, "GraphRAG 知识图谱", "graphrag", "知识图谱")
	require.Greater(t, cosine(mixed[0], mixed[1]), 0.2)
	require.Greater(t, cosine(mixed[0], mixed[2]), 0.2)
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := hashembed.New(16).Embed(ctx, []string{"text"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestEmptyBatch(t *testing.T) {
	vectors, err := hashembed.New(16).Embed(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, vectors)
}
