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
	// topLinksInBuckets reads the links of the keys in $keys whose other
	// endpoint's degree is in the buckets [$lo, $hi) through the LINK
	// indexes, and returns the best $limit of them by rank (the sum of the
	// endpoints' kept degrees). A relation between two of the keys may be
	// read from both, so $limit is twice the relations wanted: the best
	// of them are still among the rows returned. Ties are cut by
	// key, which Cypher orders by UTF-16 code units where kgraph orders by
	// bytes: the two differ only for keys with characters beyond U+FFFF,
	// where a tie at the cut may keep another relation.
	topLinksInBuckets = `
UNWIND $keys AS k
CALL (k) {
  MATCH ()-[l:LINK]->(o) WHERE l.s = k.uid AND l.tb >= $lo AND l.tb < $hi
  RETURN l, o
  UNION ALL
  MATCH (o)-[l:LINK]->() WHERE l.t = k.uid AND l.sb >= $lo AND l.sb < $hi
  RETURN l, o
}
WITH k, l, o, coalesce(o.degree, 0) AS degree
ORDER BY k.own + degree DESC, l.weight DESC, startNode(l).key, endNode(l).key
LIMIT $limit
RETURN k.key AS key, k.own AS own, o.key AS other, l.weight AS weight, degree`

	relationMentionsOfPairs = `
UNWIND $pairs AS pair
MATCH (s:Entity)-[r:RELATED {pair: pair}]->(t:Entity)
RETURN ` + relationMentionColumns
)

// firstBucketsRead is the lowest bucket the first read of TopRelations
// takes at once (neighbours of degree 256 and more): few entities are that
// well connected, and below it the read goes one bucket at a time.
const firstBucketsRead = 9

// TopRelations returns the best limit relations touching any of the keys
// (all of them when limit <= 0), ranked by the sum of their endpoints'
// degrees, in provenance.RankedOrder.
//
// The read is bounded by limit, not by the keys' degrees: it takes the
// keys' links by falling bucket of the other endpoint's degree (see
// links.go), all keys at once a bucket at a time, and stops once no link
// left in the next bucket could rank among the best limit. A hub's
// thousands of weakly connected neighbours are never read.
func (s *Store) TopRelations(ctx context.Context, namespace string, keys []string, limit int) ([]graph.RankedEdge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	rows := 2 * int64(limit)
	if limit <= 0 {
		rows = math.MaxInt64
	}
	keys = distinct(keys)
	var top *provenance.TopEdges
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		top = provenance.NewTopEdges(limit)
		degrees, err := s.degreesIn(ctx, tx, namespace, keys)
		if err != nil {
			return nil, err
		}
		for hi, lo := maxBucket+1, firstBucketsRead; hi > 1; hi, lo = lo, max(lo-1, 1) {
			// Only the keys whose link in the bucket could still be kept.
			var reading []map[string]any
			for _, key := range keys {
				if own, ok := degrees[key]; ok && top.CanTake(own+maxDegreeIn(hi-1)) {
					reading = append(reading, map[string]any{"uid": s.entityUID(namespace, key), "key": key, "own": int64(own)})
				}
			}
			if len(reading) == 0 {
				break
			}
			if err := offerLinks(ctx, tx, map[string]any{"keys": reading, "lo": int64(lo), "hi": int64(hi), "limit": rows}, top); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	return top.Edges(), nil
}

// offerLinks offers the links topLinksInBuckets reads to top.
func offerLinks(ctx context.Context, tx neo4j.ManagedTransaction, params map[string]any, top *provenance.TopEdges) error {
	result, err := tx.Run(ctx, topLinksInBuckets, params)
	if err != nil {
		return err
	}
	for record, err := range result.Records(ctx) {
		if err != nil {
			return err
		}
		key, own, n, err := rankedRowOf(record)
		if isNull(err) {
			continue // deleted while the read ran
		}
		if err != nil {
			return err
		}
		// Offered again in Go, which orders ties by bytes; a relation
		// between two keys is read from both and kept once.
		top.Offer(key, own, n)
	}
	return nil
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
