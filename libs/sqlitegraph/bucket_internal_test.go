package sqlitegraph

import (
	"math/bits"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDegreeBucket checks the SQL bucket against floor(log2) shifted.
func TestDegreeBucket(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	for _, d := range []int64{0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1<<20 - 1, 1 << 20, 1<<31 - 1, 1 << 31, 1 << 40, 63, 64, 65, 127, 128} {
		var got int
		require.NoError(t, s.db.QueryRowContext(t.Context(), `SELECT `+degreeBucket("?1"), d).Scan(&got))
		want := min(max(bits.Len64(uint64(d))-bucketShift, 0), maxDegreeBucket)
		require.Equal(t, want, got, "degree %d", d)
		if d > 0 && want < maxDegreeBucket {
			require.LessOrEqual(t, d, int64(maxDegreeIn(want)), "degree %d within its bucket", d)
		}
	}
}
