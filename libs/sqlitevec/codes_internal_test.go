package sqlitevec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/vector"
)

// TestCodeApproximatesTheDotProduct bounds the error of a code's score: a
// quantisation step is the largest component over 127, so the error of a
// 256-dimensional dot product stays in the third decimal place, well
// under the differences the rescoring then settles.
func TestCodeApproximatesTheDotProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(dim int) []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		u, err := vector.Unit(v)
		require.NoError(t, err)
		return u
	}
	for _, dim := range []int{2, 256, 1536} {
		var worst float64
		for range 200 {
			q, v := random(dim), random(dim)
			code := quantise(v)
			require.Len(t, code, codeBytes(dim))
			worst = max(worst, math.Abs(float64(dotCode(q, code)-dotFloats(q, v))))
		}
		require.Less(t, worst, 0.01, "dimension %d", dim)
	}
	require.Zero(t, dotCode([]float32{1, 0}, quantise([]float32{0, 0})), "a zero vector codes to zero")
}
