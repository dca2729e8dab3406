package neo4jgraph

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
)

// relationMentionsAmongUIDs reads the mentions of the relations whose both
// endpoints are among $uids, each found from its source (RELATED points
// from the smaller key), the target tested in the database, so a hub's
// mentions of entities outside the set never leave the server.
const relationMentionsAmongUIDs = `
UNWIND $uids AS uid
MATCH (s:Entity {uid: uid})-[r:RELATED]->(t:Entity)
WHERE t.uid IN $uids
RETURN ` + relationMentionColumns

// RelationsAmong returns the relations both of whose endpoints are among
// the keys, in (Source, Target) order.
func (s *Store) RelationsAmong(ctx context.Context, namespace string, keys []string) ([]graph.Relation, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read relations among keys: %w", err)
	}
	keys = distinct(keys)
	if len(keys) < 2 {
		return nil, nil
	}
	groups := map[provenance.RelationKey][]provenance.RelationRow{}
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(groups)
		return nil, readRelationMentions(ctx, tx, relationMentionsAmongUIDs, map[string]any{"uids": s.entityUIDs(namespace, keys)},
			func(key provenance.RelationKey, row provenance.RelationRow) { groups[key] = append(groups[key], row) })
	})
	if err != nil {
		return nil, fmt.Errorf("read relations among keys: %w", err)
	}
	out := make([]graph.Relation, 0, len(groups))
	for k, rows := range groups {
		out = append(out, provenance.AggregateRelation(k, rows))
	}
	// Sorted here, by bytes: Cypher orders strings by UTF-16 code units.
	slices.SortFunc(out, func(a, b graph.Relation) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	return out, nil
}
