package sqlitegraph

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRelationsAmongSearchesBySourceOnly pins the plan of RelationsAmong: a
// search of each source's rows with the target tested against the key list,
// not a primary-key probe for every (source, target) of the two lists, which
// made a 5,000-document community rebuild take longer than 12 minutes.
func TestRelationsAmongSearchesBySourceOnly(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+relationsAmongQuery(3),
		"ns", "a", "b", "c", `["a","b","c"]`)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	joined := strings.Join(plan, "\n")
	require.Contains(t, joined, "SEARCH relation_mentions USING PRIMARY KEY (namespace=? AND src=?)", joined)
	require.NotContains(t, joined, "dst=?", joined)
}
