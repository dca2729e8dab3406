package backends_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
)

// TestSetOpensEachStoreOnce: services sharing a set share its stores, and
// the set checks each backend once.
func TestSetOpensEachStoreOnce(t *testing.T) {
	ctx := context.Background()
	env := bustest.New(t)
	dir := t.TempDir()
	set := backends.NewSet(backends.Config{Graph: backends.Embedded, Vector: backends.Embedded, KV: backends.Embedded,
		GraphPath: filepath.Join(dir, "graph.db"), VectorPath: filepath.Join(dir, "vectors.db")}, env.JS)
	jobs, err := set.KV(ctx, bus.BucketJobs)
	require.NoError(t, err)
	again, err := set.KV(ctx, bus.BucketJobs)
	require.NoError(t, err)
	require.Same(t, jobs, again)
	_, err = set.KV(ctx, bus.BucketDedup)
	require.NoError(t, err)
	g1, err := set.Graph(ctx)
	require.NoError(t, err)
	g2, err := set.Graph(ctx)
	require.NoError(t, err)
	require.Same(t, g1, g2)
	_, err = set.Vectors(ctx)
	require.NoError(t, err)
	d1, err := set.Documents(ctx)
	require.NoError(t, err)
	d2, err := set.Documents(ctx)
	require.NoError(t, err)
	require.Same(t, d1, d2)
	_, err = set.Limiter(ctx)
	require.NoError(t, err)

	var names []string
	for _, c := range set.Checks() {
		names = append(names, c.Name)
		require.NoError(t, c.Check(ctx), c.Name)
	}
	require.Equal(t, []string{"kv", "graph", "vectors"}, names)
	require.NoError(t, set.Close())
}
