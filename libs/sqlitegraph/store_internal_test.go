package sqlitegraph

import (
	"database/sql"
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

func TestOpenMigratesVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.MergeChunk(t.Context(), testChunk())
	require.NoError(t, err)
	want, err := s.Snapshot(t.Context(), "ns")
	require.NoError(t, err)
	// Back to a version 1 file: no generation, community or summary tables.
	s = rewind(t, s, path, `DROP TABLE namespaces`, `DROP TABLE communities`, `DROP TABLE entity_summaries`, `PRAGMA user_version = 1`)
	got, err := s.Snapshot(t.Context(), "ns")
	require.NoError(t, err)
	require.Equal(t, want, got)
	gen, err := s.Generation(t.Context(), "ns")
	require.NoError(t, err)
	require.Equal(t, uint64(1), gen, "a namespace merged before the migration starts out of date")
	built, err := s.CommunitiesBuilt(t.Context(), "ns")
	require.NoError(t, err)
	require.Zero(t, built)
	c := testChunk()
	c.Text = "changed"
	_, err = s.MergeChunk(t.Context(), c)
	require.NoError(t, err)
	gen, err = s.Generation(t.Context(), "ns")
	require.NoError(t, err)
	require.Equal(t, uint64(2), gen)
	var version int
	require.NoError(t, s.db.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&version))
	require.Equal(t, schemaVersion, version)
}

// rewind runs stmts on s's file, which turn it back into an older version,
// and opens it again: the migration runs on the rewound file.
func rewind(t *testing.T, s *Store, path string, stmts ...string) *Store {
	t.Helper()
	for _, stmt := range stmts {
		_, err := s.db.ExecContext(t.Context(), stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, s.Close())
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func testChunk() graph.ChunkGraph {
	return graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", JobID: "job", ChunkID: "chunk", Text: "text",
		Entities:  []events.Entity{{Name: "Scrooge", Type: "PERSON"}},
		Relations: []events.Relation{{Source: "Scrooge", Target: "Marley", Weight: 1}},
	}
}

func TestOpenMigratesVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	c := testChunk()
	c.Entities = append(c.Entities, events.Entity{Name: "Fred", Type: "PERSON"})
	c.Relations = append(c.Relations, events.Relation{Source: "Scrooge", Target: "Fred", Weight: 1})
	_, err = s.MergeChunk(t.Context(), c)
	require.NoError(t, err)
	community := graph.Community{ID: "c0", Keys: []string{"FRED", "SCROOGE"}, Title: "nephew"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), "ns", 1, []graph.Community{community}))
	// Back to a version 2 file: relations, but no degrees kept, and
	// communities without a member list.
	s = rewind(t, s, path, `DROP TRIGGER relation_inserted`, `DROP TRIGGER relation_deleted`, `DROP TRIGGER entity_degree_changed`, `DROP TABLE entity_neighbours`,
		`DROP TABLE entity_degrees`, `DROP INDEX entity_mentions_by_chunk_id`, `DROP TABLE community_members`,
		`CREATE TABLE old_communities AS SELECT namespace, level, community_id, parent, '["FRED","SCROOGE"]' AS keys, title, summary, rating, rating_explanation, findings, hash FROM communities`,
		`DROP TABLE communities`,
		`CREATE TABLE communities (namespace TEXT NOT NULL, level INTEGER NOT NULL, community_id TEXT NOT NULL, parent TEXT NOT NULL,
			keys TEXT NOT NULL, title TEXT NOT NULL, summary TEXT NOT NULL, rating REAL NOT NULL, rating_explanation TEXT NOT NULL,
			findings TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (namespace, level, community_id)) WITHOUT ROWID`,
		`INSERT INTO communities SELECT * FROM old_communities`, `DROP TABLE old_communities`,
		`PRAGMA user_version = 2`)
	degrees, err := s.Degrees(t.Context(), "ns", []string{"SCROOGE", "MARLEY", "FRED"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"SCROOGE": 2, "MARLEY": 1, "FRED": 1}, degrees)
	ranked, err := s.TopRelations(t.Context(), "ns", []string{"SCROOGE"}, 0)
	require.NoError(t, err)
	require.Len(t, ranked, 2, "the neighbours of the file's relations are listed")
	of, err := s.CommunitiesOf(t.Context(), "ns", []string{"FRED"}, -1)
	require.NoError(t, err)
	require.Equal(t, []graph.CommunityMatch{{Community: graph.Community{ID: "c0", Title: "nephew"}, Members: 2, Matched: 1, HasReport: true}}, of)
	top, err := s.TopCommunities(t.Context(), "ns", -1, 5)
	require.NoError(t, err)
	require.Equal(t, []graph.CommunityMatch{{Community: graph.Community{ID: "c0", Title: "nephew"}, Members: 2, HasReport: true}}, top)
	var members int
	require.NoError(t, s.db.QueryRowContext(t.Context(), `SELECT members FROM communities`).Scan(&members))
	require.Equal(t, 2, members)
	// And the triggers keep them from now on.
	require.NoError(t, s.DeleteDocument(t.Context(), "ns", "doc"))
	degrees, err = s.Degrees(t.Context(), "ns", []string{"SCROOGE", "MARLEY", "FRED"})
	require.NoError(t, err)
	require.Empty(t, degrees)
}

// TestOpenMigratesVersion6 checks the upgrade that moved member lists out
// of the community rows: the lists are still read, the column is gone, and
// the upgrade leaves the kept degrees alone (recounting them reads every
// relation of the file).
func TestOpenMigratesVersion6(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.MergeChunk(t.Context(), testChunk())
	require.NoError(t, err)
	community := graph.Community{ID: "c0", Keys: []string{"MARLEY", "SCROOGE"}, Title: "partners", Summary: "old firm"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), "ns", 1, []graph.Community{community}))
	s = rewind(t, s, path, `ALTER TABLE communities ADD COLUMN keys TEXT NOT NULL DEFAULT '[]'`,
		`UPDATE communities SET keys = '["MARLEY","SCROOGE"]'`,
		// A marker: a recount would make it 1 again.
		`UPDATE entity_degrees SET degree = 7 WHERE entity_key = 'MARLEY'`,
		`PRAGMA user_version = 6`)
	cs, err := s.Communities(t.Context(), "ns", -1)
	require.NoError(t, err)
	require.Equal(t, []graph.Community{community}, cs)
	var hasKeys bool
	require.NoError(t, s.db.QueryRowContext(t.Context(), `SELECT COUNT(*) > 0 FROM pragma_table_info('communities') WHERE name = 'keys'`).Scan(&hasKeys))
	require.False(t, hasKeys, "the member lists left the community rows")
	degrees, err := s.Degrees(t.Context(), "ns", []string{"MARLEY"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"MARLEY": 7}, degrees, "degrees are not recounted")
}

// TestOpenMigratesVersion7 opens a file whose community rows hold their
// members and hash after the report: they are rewritten with the report
// last, and read back the same.
func TestOpenMigratesVersion7(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.MergeChunk(t.Context(), testChunk())
	require.NoError(t, err)
	community := graph.Community{ID: "c0", Keys: []string{"MARLEY", "SCROOGE"}, Title: "partners", Summary: "old firm",
		Rating: 4, RatingExplanation: "small", Findings: []graph.Finding{{Summary: "s", Explanation: "e"}}, Hash: "h"}
	require.NoError(t, s.ReplaceCommunities(t.Context(), "ns", 1, []graph.Community{community}))
	const v7Columns = `namespace, level, community_id, parent, title, summary, rating, rating_explanation, findings, hash, members`
	s = rewind(t, s, path, `CREATE TABLE communities_v7 (
			namespace TEXT NOT NULL, level INTEGER NOT NULL, community_id TEXT NOT NULL, parent TEXT NOT NULL,
			title TEXT NOT NULL, summary TEXT NOT NULL, rating REAL NOT NULL, rating_explanation TEXT NOT NULL,
			findings TEXT NOT NULL, hash TEXT NOT NULL, members INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (namespace, level, community_id)) WITHOUT ROWID`,
		`INSERT INTO communities_v7 SELECT `+v7Columns+` FROM communities`,
		`DROP TABLE communities`,
		`ALTER TABLE communities_v7 RENAME TO communities`,
		`CREATE INDEX communities_by_rating ON communities (namespace, rating DESC, members DESC, community_id)`,
		`PRAGMA user_version = 7`)
	var columns []string
	rows, err := s.db.QueryContext(t.Context(), `SELECT name FROM pragma_table_info('communities') ORDER BY cid`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		columns = append(columns, name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"namespace", "level", "community_id", "parent", "title", "rating", "members", "hash",
		"summary", "rating_explanation", "findings"}, columns, "the report's body comes last")
	cs, err := s.Communities(t.Context(), "ns", -1)
	require.NoError(t, err)
	require.Equal(t, []graph.Community{community}, cs)
	top, err := s.TopCommunities(t.Context(), "ns", -1, 5)
	require.NoError(t, err)
	require.Len(t, top, 1, "the rating index is there again")
	require.Equal(t, 2, top[0].Members)
}

// TestWALIsBounded checks that every connection truncates the WAL after a
// complete checkpoint: SQLite's default (-1) keeps the file at the size of
// its largest moment.
func TestWALIsBounded(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	conns := make([]*sql.Conn, maxOpenConns)
	for i := range conns {
		conns[i], err = s.db.Conn(t.Context())
		require.NoError(t, err)
		defer conns[i].Close()
		var limit int
		require.NoError(t, conns[i].QueryRowContext(t.Context(), `PRAGMA journal_size_limit`).Scan(&limit))
		require.Equal(t, journalSizeLimitBytes, limit, "connection %d", i)
	}
}
