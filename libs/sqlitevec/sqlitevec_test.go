package sqlitevec_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
	"github.com/kgraph-dev/kgraph/libs/vector/vectortest"
)

// Environment of the child process TestMultiProcess starts: when
// writerPathEnv is set the test binary acts as a writer instead of running
// tests.
const (
	writerPathEnv = "SQLITEVEC_TEST_WRITER_PATH"
	writerNameEnv = "SQLITEVEC_TEST_WRITER_NAME"
)

const (
	writerBatches   = 20
	writerBatchSize = 10
)

func TestMain(m *testing.M) {
	if path := os.Getenv(writerPathEnv); path != "" {
		if err := runWriter(context.Background(), path, os.Getenv(writerNameEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestContract(t *testing.T) {
	vectortest.Run(t, func(t *testing.T) vector.Store {
		s, err := sqlitevec.Open(t.Context(), filepath.Join(t.TempDir(), "vectors.db"))
		require.NoError(t, err)
		return s
	})
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vectors.db")
	s, err := sqlitevec.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.Upsert(ctx, []vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "d1", Vector: []float32{3, 4}},
		{Namespace: "ns", Kind: "chunk", ID: "b", DocID: "d2", Vector: []float32{0, 1}},
	}))
	require.NoError(t, s.Close())

	s, err = sqlitevec.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	count, err := s.Count(ctx, "ns", "chunk")
	require.NoError(t, err)
	require.Equal(t, 2, count)
	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{3, 4}, TopK: 2})
	require.NoError(t, err)
	require.Len(t, hits, 2)
	require.Equal(t, vector.Hit{ID: "a", DocID: "d1", Score: hits[0].Score}, hits[0])
	require.InDelta(t, 1, hits[0].Score, 1e-6)
	require.Equal(t, "b", hits[1].ID)
	require.InDelta(t, 0.8, hits[1].Score, 1e-6)

	// The stored dimension survives too.
	err = s.Upsert(ctx, []vector.Item{{Namespace: "ns", Kind: "chunk", ID: "c", DocID: "d1", Vector: []float32{1, 2, 3}}})
	require.Error(t, err)
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		_, err := sqlitevec.Open(t.Context(), path)
		require.Error(t, err, "path %q", path)
	}
	_, err := sqlitevec.Open(t.Context(), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	require.Error(t, err)
}

// TestTwoHandlesOneFile shares a file between two Stores, each with its own
// connection pool, as the indexer and the query service do.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vectors.db")
	writerA, err := sqlitevec.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, writerA.Close()) })
	writerB, err := sqlitevec.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, writerB.Close()) })

	const batches, batchSize, dim = 30, 20, 16
	errs := make(chan error, 3)
	write := func(s *sqlitevec.Store, name string) {
		rng := rand.New(rand.NewPCG(uint64(name[0]), 9))
		for b := range batches {
			items := make([]vector.Item, batchSize)
			for i := range items {
				items[i] = vector.Item{
					Namespace: "ns", Kind: "chunk",
					ID:     fmt.Sprintf("%s-%d-%d", name, b, i),
					DocID:  fmt.Sprintf("%s-doc-%d", name, b),
					Vector: randomVector(rng, dim),
				}
			}
			if err := s.Upsert(ctx, items); err != nil {
				errs <- fmt.Errorf("writer %s batch %d: %w", name, b, err)
				return
			}
		}
	}
	stopReading := make(chan struct{})
	read := func(s *sqlitevec.Store) {
		rng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			if _, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, dim), TopK: 5}); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
	}

	var writers, readers sync.WaitGroup
	writers.Go(func() { write(writerA, "a") })
	writers.Go(func() { write(writerB, "b") })
	readers.Go(func() { read(writerB) })
	writers.Wait()
	close(stopReading)
	readers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	for _, s := range []*sqlitevec.Store{writerA, writerB} {
		count, err := s.Count(ctx, "ns", "chunk")
		require.NoError(t, err)
		require.Equal(t, 2*batches*batchSize, count)
	}
}

// TestMultiProcess runs writers in child processes while this process
// searches the same file, which is how the services share it.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vectors.db")
	s, err := sqlitevec.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	const writers = 2
	done := make(chan error, writers)
	for w := range writers {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerPathEnv+"="+path, writerNameEnv+"=w"+strconv.Itoa(w))
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("writer process: %w: %s", err, out)
			}
			done <- err
		}()
	}

	rng := rand.New(rand.NewPCG(7, 8))
	finished := 0
	for finished < writers {
		select {
		case err := <-done:
			require.NoError(t, err)
			finished++
		default:
			_, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, 8), TopK: 3})
			require.NoError(t, err)
		}
	}

	count, err := s.Count(ctx, "ns", "chunk")
	require.NoError(t, err)
	require.Equal(t, writers*writerBatches*writerBatchSize, count)
}

func runWriter(ctx context.Context, path, name string) error {
	s, err := sqlitevec.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(uint64(name[len(name)-1]), 1))
	for b := range writerBatches {
		items := make([]vector.Item, writerBatchSize)
		for i := range items {
			items[i] = vector.Item{
				Namespace: "ns", Kind: "chunk",
				ID:     fmt.Sprintf("%s-%d-%d", name, b, i),
				DocID:  fmt.Sprintf("%s-doc-%d", name, b),
				Vector: randomVector(rng, 8),
			}
		}
		if err := s.Upsert(ctx, items); err != nil {
			return fmt.Errorf("writer %s batch %d: %w", name, b, err)
		}
	}
	return s.Close()
}

func BenchmarkSearch(b *testing.B) {
	ctx := b.Context()
	const n, dim = 10_000, 256
	s, err := sqlitevec.Open(ctx, filepath.Join(b.TempDir(), "vectors.db"))
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, s.Close()) })

	rng := rand.New(rand.NewPCG(1, 1))
	items := make([]vector.Item, n)
	for i := range items {
		items[i] = vector.Item{
			Namespace: "ns", Kind: "chunk",
			ID:     fmt.Sprintf("chunk-%05d", i),
			DocID:  fmt.Sprintf("doc-%03d", i%500),
			Vector: randomVector(rng, dim),
		}
	}
	require.NoError(b, s.Upsert(ctx, items))
	query := vector.Query{Namespace: "ns", Kind: "chunk", Vector: randomVector(rng, dim), TopK: 10}

	b.ReportAllocs()
	for b.Loop() {
		hits, err := s.Search(ctx, query)
		if err != nil || len(hits) != query.TopK {
			b.Fatalf("search: %d hits, %v", len(hits), err)
		}
	}
}

func randomVector(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}
