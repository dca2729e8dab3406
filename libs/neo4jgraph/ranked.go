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

// TopRelationsOf returns the relations of each key ordered by the degree
// of their other endpoint, then weight, then the other key, at most perKey
// a key (all when perKey <= 0), each once, ranked by the sum of its
// endpoints' degrees.
func (s *Store) TopRelationsOf(ctx context.Context, namespace string, keys []string, perKey int) ([]graph.RankedEdge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	limit := int64(perKey)
	if perKey <= 0 {
		limit = math.MaxInt64
	}
	keys = distinct(keys)
	var out []graph.RankedEdge
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		out = out[:0]
		seen := map[provenance.RelationKey]bool{}
		degrees, err := s.degreesIn(ctx, tx, namespace, keys)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			neighbours, err := collect(ctx, tx, topRelationsOfUID, map[string]any{"uid": s.entityUID(namespace, key), "limit": limit},
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
			// Sorted again in Go: Cypher orders strings by UTF-16 code
			// units, kgraph by bytes.
			out = provenance.RankNeighbours(out, seen, key, degrees[key], neighbours, perKey)
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	return out, nil
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
