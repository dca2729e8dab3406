package sqlitegraph

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// searchEntityKeys ranks the keys containing the needle (an instr, not a
// LIKE, so '%' and '_' are literal): the key equal to it, then keys starting
// with it, then the rest; the most mentioned (one row a chunk) first within
// each, then by key. It reads every mention of the namespace, which the
// primary key serves in key order, so grouping needs no sort.
const searchEntityKeys = `SELECT entity_key FROM entity_mentions
WHERE namespace = ? AND instr(entity_key, ?) > 0
GROUP BY entity_key
ORDER BY entity_key = ? DESC, instr(entity_key, ?) = 1 DESC, COUNT(*) DESC, entity_key
LIMIT ?`

// SearchEntities returns the entities whose key contains the query
// normalised like events.EntityKey, the key equal to it first, then keys
// starting with it, then the others, each group most mentioned first, then
// by key; at most limit of them, capped at graph.MaxSearchLimit (which
// limit <= 0 stands for).
func (s *Store) SearchEntities(ctx context.Context, namespace, query string, limit int) ([]graph.Entity, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("search entities: %w", err)
	}
	if limit <= 0 || limit > graph.MaxSearchLimit {
		limit = graph.MaxSearchLimit
	}
	needle := events.EntityKey(query)
	var keys []string
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, searchEntityKeys, namespace, needle, needle, needle, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			if err := rows.Scan(&key); err != nil {
				return err
			}
			keys = append(keys, key)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("search entities of namespace %s for %q: %w", namespace, query, err)
	}
	if len(keys) == 0 {
		return []graph.Entity{}, nil
	}
	// Entities keeps the order of the keys. An entity whose last mention a
	// concurrent deletion removed in between is skipped.
	return s.Entities(ctx, namespace, keys)
}
