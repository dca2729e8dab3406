package sqlitegraph

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// CommunitiesByID returns the stored communities of the level with the
// given ids, without their member lists, sorted by id; read by primary key.
func (s *Store) CommunitiesByID(ctx context.Context, namespace string, level int, ids []string) ([]graph.Community, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities by id: %w", err)
	}
	var out []graph.Community
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, batch := range batches(distinct(ids)) {
			args := []any{namespace, level}
			for _, id := range batch {
				args = append(args, id)
			}
			rows, err := tx.QueryContext(ctx, `SELECT level, community_id, parent, title, summary, rating,
				rating_explanation, findings, hash FROM communities
				WHERE namespace = ? AND level = ? AND community_id IN (`+placeholders(len(batch))+`)`, args...)
			if err != nil {
				return err
			}
			if err := scanCommunities(rows, func(c graph.Community) { out = append(out, c) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read communities by id of %s: %w", namespace, err)
	}
	slices.SortFunc(out, graph.ByLevelAndID)
	return out, nil
}
