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
	// topRelationsOfUIDs ranks the keys' relations in the database by the
	// sum of their endpoints' kept degrees and returns the best $limit:
	// one kept link a relation, each endpoint's degree one property, so
	// the read is the keys' links, not their neighbours' neighbours. A
	// relation between two of the keys is read from one of them only.
	// Ties are cut by key, which Cypher orders by UTF-16 code units where
	// kgraph orders by bytes: the two differ only for keys with characters
	// beyond U+FFFF, where a tie at the cut may keep another relation.
	topRelationsOfUIDs = `
UNWIND $uids AS uid
MATCH (e:Entity {uid: uid})-[l:LINK]-(o:Entity)
WHERE NOT (o.uid IN $uids AND o.uid < uid)
WITH e, o, l, coalesce(e.degree, 0) AS own, coalesce(o.degree, 0) AS degree
ORDER BY own + degree DESC, l.weight DESC, startNode(l).key, endNode(l).key
LIMIT $limit
RETURN e.key AS key, own, o.key AS other, l.weight AS weight, degree`

	relationMentionsOfPairs = `
UNWIND $pairs AS pair
MATCH (s:Entity)-[r:RELATED {pair: pair}]->(t:Entity)
RETURN ` + relationMentionColumns
)

// TopRelations returns the best limit relations touching any of the keys
// (all of them when limit <= 0), ranked by the sum of their endpoints'
// degrees, in provenance.RankedOrder.
func (s *Store) TopRelations(ctx context.Context, namespace string, keys []string, limit int) ([]graph.RankedEdge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	rows := int64(limit)
	if limit <= 0 {
		rows = math.MaxInt64
	}
	params := map[string]any{"uids": s.entityUIDs(namespace, distinct(keys)), "limit": rows}
	var top *provenance.TopEdges
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		top = provenance.NewTopEdges(limit)
		result, err := tx.Run(ctx, topRelationsOfUIDs, params)
		if err != nil {
			return nil, err
		}
		for record, err := range result.Records(ctx) {
			if err != nil {
				return nil, err
			}
			key, own, n, err := rankedRowOf(record)
			if isNull(err) {
				continue // deleted while the read ran
			}
			if err != nil {
				return nil, err
			}
			// Offered again in Go: TopEdges orders ties by bytes.
			top.Offer(key, own, n)
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	return top.Edges(), nil
}

func rankedRowOf(r *neo4j.Record) (string, int, provenance.Neighbour, error) {
	var n provenance.Neighbour
	key, err := recordString(r, "key")
	if err != nil {
		return "", 0, n, err
	}
	own, err := recordInt(r, "own")
	if err != nil {
		return "", 0, n, err
	}
	if n.Key, err = recordString(r, "other"); err != nil {
		return "", 0, n, err
	}
	if n.Weight, err = recordFloat(r, "weight"); err != nil {
		return "", 0, n, err
	}
	n.Degree, err = recordInt(r, "degree")
	return key, own, n, err
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
			params = append(params, pairUID(s.entityUID(namespace, k.Src), s.entityUID(namespace, k.Dst)))
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
