package neo4jgraph

import (
	"context"
	"fmt"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// searchEntityKeys ranks the namespace's keys containing $needle: the key
// equal to it, then keys starting with it, then the rest (true sorts after
// false, hence DESC); the most mentioned first within each, then by key.
// It scans the namespace's entities by scope rather than asking the
// full-text index: the index tokenises (a substring inside a word would not
// match), treats the query as Lucene syntax and lags the writes.
const searchEntityKeys = `
MATCH (e:Entity {scope: $scope})
WHERE e.key CONTAINS $needle
WITH e.key AS key, COUNT { (e)<-[:MENTIONS]-() } AS mentions
ORDER BY key = $needle DESC, key STARTS WITH $needle DESC, mentions DESC, key
LIMIT $limit
RETURN key`

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
	params := map[string]any{"scope": s.scope(namespace), "needle": events.EntityKey(query), "limit": int64(limit)}
	var keys []string
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		keys, err = collect(ctx, tx, searchEntityKeys, params, func(r *neo4j.Record) (string, error) { return recordString(r, "key") })
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("search entities of namespace %s for %q: %w", namespace, query, err)
	}
	if len(keys) == 0 {
		return []graph.Entity{}, nil
	}
	// Entities keeps the order of the keys. An entity a concurrent deletion
	// removed in between is skipped.
	return s.Entities(ctx, namespace, keys)
}
