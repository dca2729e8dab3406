package sqlitegraph

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

func TestBatchStatementRuns(t *testing.T) {
	b := batchStatement{rows: []int{256, 64, 16, 4, 1}}
	for range b.rows {
		b.stmts = append(b.stmts, &sql.Stmt{})
	}
	rowsOf := make(map[*sql.Stmt]int, len(b.stmts))
	for i, stmt := range b.stmts {
		rowsOf[stmt] = b.rows[i]
	}
	tests := []struct {
		rows int
		want []int
	}{
		{0, nil},
		{1, []int{1}},
		{3, []int{1, 1, 1}},
		{60, []int{16, 16, 16, 4, 4, 4}},
		{150, []int{64, 64, 16, 4, 1, 1}},
		{256, []int{256}},
		{600, []int{256, 256, 64, 16, 4, 4}},
	}
	const width = 2
	for _, tc := range tests {
		var rowArgs []any
		for i := range tc.rows * width {
			rowArgs = append(rowArgs, i)
		}
		var (
			got  []int
			next int
		)
		err := b.run([]any{"ns", "doc"}, rowArgs, width, func(stmt *sql.Stmt, args []any) error {
			rows := rowsOf[stmt]
			got = append(got, rows)
			require.Len(t, args, 2+rows*width)
			require.Equal(t, []any{"ns", "doc"}, args[:2])
			for _, a := range args[2:] {
				require.Equal(t, next, a, "rows %d: arguments in order, each once", tc.rows)
				next++
			}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "rows %d", tc.rows)
		require.Equal(t, tc.rows*width, next, "rows %d: every argument passed", tc.rows)
	}
}

// walFrames returns how many frames the WAL holds and, to count the next
// write on its own, checkpoints and restarts it.
func walFrames(t *testing.T, s *Store) int {
	t.Helper()
	checkpoint := func(mode string) (frames int) {
		var busy, checkpointed int
		require.NoError(t, s.db.QueryRowContext(t.Context(), `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &checkpointed))
		require.Zero(t, busy)
		return frames
	}
	// TRUNCATE reports no frames, having removed them.
	frames := checkpoint("PASSIVE")
	checkpoint("TRUNCATE")
	return frames
}

func TestRedeliveryWritesNothing(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	chunk := graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", JobID: "job", ChunkID: "chunk", Index: 3, Text: "text", Tokens: 7,
		Entities: []events.Entity{{Name: "Scrooge", Type: "PERSON", Description: "A miser."}, {Name: "Marley", Type: "PERSON"}},
		Relations: []events.Relation{
			{Source: "Scrooge", Target: "Marley", Description: "partners", Keywords: []string{"business"}, Weight: 1.5},
			{Source: "Scrooge", Target: "Fred", Weight: 1},
		},
	}
	first, err := s.MergeChunk(t.Context(), chunk)
	require.NoError(t, err)
	walFrames(t, s)

	again, err := s.MergeChunk(t.Context(), chunk)
	require.NoError(t, err)
	require.Equal(t, first, again)
	require.Zero(t, walFrames(t, s), "an unchanged chunk rewrites no page")

	chunk.Relations[0].Weight = 2
	_, err = s.MergeChunk(t.Context(), chunk)
	require.NoError(t, err)
	require.NotZero(t, walFrames(t, s), "a changed chunk is written")
}

func TestOpenConfiguresConnections(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	// Hold all connections at once, so each is checked, not one reused.
	conns := make([]*sql.Conn, maxOpenConns)
	for i := range conns {
		conns[i], err = s.db.Conn(t.Context())
		require.NoError(t, err)
		defer conns[i].Close()
	}
	for _, conn := range conns {
		var cacheSize, autocheckpoint int
		var journalMode string
		require.NoError(t, conn.QueryRowContext(t.Context(), `PRAGMA cache_size`).Scan(&cacheSize))
		require.NoError(t, conn.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&autocheckpoint))
		require.NoError(t, conn.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&journalMode))
		require.Equal(t, -cacheKiB, cacheSize)
		require.Equal(t, walAutocheckpointPages, autocheckpoint)
		require.Equal(t, "wal", journalMode)
	}
}
