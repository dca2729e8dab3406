package sqlitegraph

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.db.ExecContext(t.Context(), `PRAGMA user_version = 99`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(t.Context(), path)
	require.ErrorContains(t, err, "schema version 99")
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.MergeChunk(t.Context(), testChunk())
	require.NoError(t, err)
	want, err := s.Snapshot(t.Context(), "ns")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(t.Context(), path)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.Snapshot(t.Context(), "ns")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NotEmpty(t, got.Entities)
}

func testChunk() graph.ChunkGraph {
	return graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", JobID: "job", ChunkID: "chunk", Text: "text",
		Entities:  []events.Entity{{Name: "Scrooge", Type: "PERSON"}},
		Relations: []events.Relation{{Source: "Scrooge", Target: "Marley", Weight: 1}},
	}
}
