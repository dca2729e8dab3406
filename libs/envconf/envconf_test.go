package envconf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReader(t *testing.T) {
	env := map[string]string{"A": "x", "N": "12", "BADN": "twelve", "D": "2s", "BADD": "2", "B": "true"}
	r := New(func(k string) string { return env[k] })
	require.Equal(t, "x", r.String("A", "d"))
	require.Equal(t, "d", r.String("MISSING", "d"))
	require.Equal(t, 12, r.Int("N", 1))
	require.Equal(t, 2*time.Second, r.Duration("D", time.Second))
	require.True(t, r.Bool("B", false))
	require.NoError(t, r.Err())
	require.Equal(t, 1, r.Int("BADN", 1))
	require.Equal(t, time.Second, r.Duration("BADD", time.Second))
	err := r.Err()
	require.ErrorContains(t, err, "BADN")
	require.ErrorContains(t, err, "BADD")
}
