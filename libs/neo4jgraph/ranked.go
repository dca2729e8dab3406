package neo4jgraph

import (
	"context"
	"fmt"
	"math"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
)

const (
	// topRelationsOfUID ranks one entity's relations in the database by
	// the distinct-neighbour degree of their other endpoint; only keys,
	// weights and degrees leave the server.
	topRelationsOfUID = `
MATCH (e:Entity {uid: $uid})-[r:RELATED]-(o:Entity)
WITH o, sum(r.weight) AS weight
CALL {
  WITH o
  MATCH (o)-[:RELATED]-(n:Entity)
  RETURN count(DISTINCT n) AS degree
}
RETURN o.key AS other, weight, degree
ORDER BY degree DESC, weight DESC, other
LIMIT $limit`

	relationMentionsOfPairs = `
UNWIND $pairs AS p
MATCH (s:Entity {uid: p[0]})-[r:RELATED]->(t:Entity {uid: p[1]})
RETURN ` + relationMentionColumns
)

// TopRelations returns the best limit relations touching any of the keys
// (all of them when limit <= 0), ranked by the sum of their endpoints'
// degrees, in provenance.RankedOrder. The best limit of several keys are
// among the best limit of each key, which the database ranks.
func (s *Store) TopRelations(ctx context.Context, namespace string, keys []string, limit int) ([]graph.RankedEdge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	perKey := int64(limit)
	if limit <= 0 {
		perKey = math.MaxInt64
	}
	keys = distinct(keys)
	var top *provenance.TopEdges
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		top = provenance.NewTopEdges(limit)
		degrees, err := s.degreesIn(ctx, tx, namespace, keys)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			neighbours, err := collect(ctx, tx, topRelationsOfUID, map[string]any{"uid": s.entityUID(namespace, key), "limit": perKey},
				func(r *neo4j.Record) (provenance.Neighbour, error) {
					var n provenance.Neighbour
					var err error
					if n.Key, err = recordString(r, "other"); err != nil {
						return n, err
					}
					if n.Weight, err = recordFloat(r, "weight"); err != nil {
						return n, err
					}
					n.Degree, err = recordInt(r, "degree")
					return n, err
				})
			if err != nil {
				return nil, err
			}
			// Ordered again in Go: Cypher orders strings by UTF-16 code
			// units, kgraph by bytes.
			for _, n := range neighbours {
				top.Offer(key, degrees[key], n)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	return top.Edges(), nil
}

// RelationsBetween returns the relations between the pairs of keys (either
// way round), in the order of the pairs, skipping pairs without one.
func (s *Store) RelationsBetween(ctx context.Context, namespace string, pairs [][2]string) ([]graph.Relation, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	var order []provenance.RelationKey
	seen := map[provenance.RelationKey]bool{}
	var params []any
	for _, p := range pairs {
		k := provenance.RelationKey{Src: min(p[0], p[1]), Dst: max(p[0], p[1])}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
			params = append(params, []any{s.entityUID(namespace, k.Src), s.entityUID(namespace, k.Dst)})
		}
	}
	groups := map[provenance.RelationKey][]provenance.RelationRow{}
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(groups)
		return nil, readRelationMentions(ctx, tx, relationMentionsOfPairs, map[string]any{"pairs": params},
			func(key provenance.RelationKey, row provenance.RelationRow) { groups[key] = append(groups[key], row) })
	})
	if err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	var out []graph.Relation
	for _, k := range order {
		if rows, ok := groups[k]; ok {
			out = append(out, provenance.AggregateRelation(k, rows))
		}
	}
	return out, nil
}
