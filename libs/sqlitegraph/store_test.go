package sqlitegraph_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/graphtest"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
)

// helperPathEnv, when set, makes the test binary a writer process merging
// into the store at that path (see TestSeparateProcesses).
const (
	helperPathEnv = "SQLITEGRAPH_HELPER_PATH"
	helperDocEnv  = "SQLITEGRAPH_HELPER_DOC"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperPathEnv); path != "" {
		if err := mergeDocument(context.Background(), path, os.Getenv(helperDocEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestContract(t *testing.T) {
	graphtest.Run(t, func(t *testing.T) graph.Store {
		return openStore(t, filepath.Join(t.TempDir(), "graph.db"))
	})
}

func openStore(t *testing.T, path string) *sqlitegraph.Store {
	t.Helper()
	s, err := sqlitegraph.Open(t.Context(), path)
	require.NoError(t, err)
	return s
}

const (
	ns            = "default"
	chunksPerDoc  = 40
	entitiesPer   = 8
	sharedEntites = 12
)

// docChunks is one document whose entities overlap with every other
// document's.
func docChunks(docID string) []graph.ChunkGraph {
	out := make([]graph.ChunkGraph, chunksPerDoc)
	for i := range out {
		var es []events.Entity
		var rs []events.Relation
		for j := range entitiesPer {
			es = append(es, events.Entity{
				Name:        fmt.Sprintf("Entity %d", (i+j)%sharedEntites),
				Type:        "THING",
				Description: fmt.Sprintf("from %s chunk %d", docID, i),
			})
			if j > 0 {
				rs = append(rs, events.Relation{Source: es[j-1].Name, Target: es[j].Name, Description: docID, Weight: 1})
			}
		}
		out[i] = graph.ChunkGraph{
			Namespace: ns, DocID: docID, JobID: "job-" + docID,
			ChunkID: fmt.Sprintf("%s-%04d", docID, i), Index: i, Text: "text " + strconv.Itoa(i), Tokens: i,
			Entities: es, Relations: rs,
		}
	}
	return out
}

func mergeDocument(ctx context.Context, path, docID string) error {
	s, err := sqlitegraph.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, c := range docChunks(docID) {
		if _, err := s.MergeChunk(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// sequentialState is the state of a fresh store that merged the documents
// one after another.
func sequentialState(t *testing.T, docIDs ...string) (graph.Snapshot, graph.Counts) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sequential.db")
	for _, doc := range docIDs {
		require.NoError(t, mergeDocument(t.Context(), path, doc))
	}
	return state(t, openStore(t, path))
}

// state reads the store's snapshot and counts and closes it.
func state(t *testing.T, s *sqlitegraph.Store) (graph.Snapshot, graph.Counts) {
	t.Helper()
	defer func() { require.NoError(t, s.Close()) }()
	snap, err := s.Snapshot(t.Context(), ns)
	require.NoError(t, err)
	counts, err := s.Counts(t.Context(), ns)
	require.NoError(t, err)
	return snap, counts
}

// readUntil reads from s until stop closes, reporting the first error.
func readUntil(ctx context.Context, s *sqlitegraph.Store, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := s.Snapshot(ctx, ns); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if _, err := s.RelationsOf(ctx, ns, []string{"ENTITY 1"}, 5); err != nil {
			return fmt.Errorf("relations: %w", err)
		}
		if _, err := s.Counts(ctx, ns); err != nil {
			return fmt.Errorf("counts: %w", err)
		}
	}
}

// TestTwoStoresOnOneFile has two stores on one file, as two processes
// would, writing and reading at the same time.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	stores := []*sqlitegraph.Store{openStore(t, path), openStore(t, path)}
	docs := []string{"doc-a", "doc-b"}

	ctx := t.Context()
	errs := make(chan error, 2*len(stores))
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for i, s := range stores {
		writers.Go(func() {
			// Each store writes its own document and redelivers the other's
			// first chunks, so both write the same rows too.
			chunks := append(docChunks(docs[i]), docChunks(docs[1-i])[:5]...)
			for _, c := range chunks {
				if _, err := s.MergeChunk(ctx, c); err != nil {
					errs <- fmt.Errorf("store %d: merge %s: %w", i, c.ChunkID, err)
					return
				}
			}
		})
		readers.Go(func() {
			if err := readUntil(ctx, s, stop); err != nil {
				errs <- fmt.Errorf("store %d: %w", i, err)
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	wantSnap, wantCounts := sequentialState(t, docs...)
	require.Equal(t, graph.Counts{Documents: 2, Chunks: 2 * chunksPerDoc, Entities: sharedEntites, Relations: wantCounts.Relations}, wantCounts)
	for i, s := range stores {
		snap, counts := state(t, s)
		require.Equal(t, wantSnap, snap, "store %d", i)
		require.Equal(t, wantCounts, counts, "store %d", i)
	}
}

// TestSeparateProcesses runs two writer processes on one file while this
// process reads it.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "graph.db")
	reader := openStore(t, path)
	docs := []string{"proc-1", "proc-2"}

	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- readUntil(t.Context(), reader, stop) }()

	cmds := make([]*exec.Cmd, len(docs))
	for i, doc := range docs {
		cmd := exec.CommandContext(t.Context(), os.Args[0])
		cmd.Env = append(os.Environ(), helperPathEnv+"="+path, helperDocEnv+"="+doc)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "writer process %d", i)
	}
	close(stop)
	require.NoError(t, <-readErr)

	wantSnap, wantCounts := sequentialState(t, docs...)
	snap, counts := state(t, reader)
	require.Equal(t, wantSnap, snap)
	require.Equal(t, wantCounts, counts)
}

func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with #uri% chars")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "graph.db")

	s := openStore(t, path)
	_, err := s.MergeChunk(t.Context(), docChunks("doc")[0])
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = os.Stat(path)
	require.NoError(t, err, "the database is at the given path, not at a URI-decoded one")
	reopened := openStore(t, path)
	defer reopened.Close()
	counts, err := reopened.Counts(t.Context(), ns)
	require.NoError(t, err)
	require.Equal(t, 1, counts.Chunks)
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := sqlitegraph.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "graph.db"))
	require.Error(t, err)
}
