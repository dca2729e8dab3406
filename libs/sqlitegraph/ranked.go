package sqlitegraph

// The reads a local query ranks with: kept degrees, the best relations of
// a set of entities, the entities of chunks.

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
)

// Degrees returns the degree (the number of distinct relations) of each
// of the keys that has one; the store keeps degrees as relations come and
// go, so this reads one row a key.
func (s *Store) Degrees(ctx context.Context, namespace string, keys []string) (map[string]int, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read degrees: %w", err)
	}
	var out map[string]int
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = readDegrees(ctx, tx, namespace, keys)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read degrees: %w", err)
	}
	return out, nil
}

// readDegrees reads the degrees of those of keys that have one.
func readDegrees(ctx context.Context, tx *sql.Tx, namespace string, keys []string) (map[string]int, error) {
	keys = distinct(keys)
	out := make(map[string]int, len(keys))
	for _, batch := range batches(keys) {
		rows, err := tx.QueryContext(ctx,
			`SELECT entity_key, degree FROM entity_degrees
			WHERE namespace = ? AND entity_key IN (`+placeholders(len(batch))+`)`,
			withNamespace(namespace, batch)...)
		if err != nil {
			return nil, err
		}
		if err := scanPairs(rows, func(key string, degree int) { out[key] = degree }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TopRelations returns the best limit relations touching any of the keys
// (all of them when limit <= 0), ranked by the sum of their endpoints'
// degrees, in provenance.RankedOrder.
//
// The read is bounded by limit, not by the keys' degrees: an entity's
// neighbours are stored by the bucket of their degree (a power of two), and
// keys are read best connected first, each key's neighbours by falling
// bucket, until no neighbour left in the bucket could still rank among the
// best limit. A hub's thousands of weakly connected neighbours are never
// read. Ranks need only the kept degrees; the summed weights, which order
// relations of equal rank and cost a read of every mention, are read for
// the candidates the ranks leave (provenance.RankCut) only.
func (s *Store) TopRelations(ctx context.Context, namespace string, keys []string, limit int) ([]graph.RankedEdge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	top := provenance.NewTopEdges(limit)
	err := s.read(ctx, func(tx *sql.Tx) error {
		degrees, err := readDegrees(ctx, tx, namespace, keys)
		if err != nil {
			return err
		}
		keys := slices.Collect(maps.Keys(degrees))
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(degrees[b], degrees[a]), cmp.Compare(a, b)) })
		// Best connected first: their edges fill the cut, and a key of
		// small degree then stops at its first bucket.
		cut := provenance.NewRankCut(limit)
		neighbours := tx.StmtContext(ctx, s.st.neighboursByBucket)
		defer neighbours.Close()
		for _, key := range keys {
			if err := cutNeighbours(ctx, neighbours, namespace, key, degrees[key], cut); err != nil {
				return err
			}
		}
		candidates := cut.Candidates()
		weights, err := s.relationWeights(ctx, tx, namespace, candidates)
		if err != nil {
			return err
		}
		for _, c := range candidates {
			top.OfferEdge(graph.RankedEdge{Source: c.Src, Target: c.Dst, Rank: c.Rank, Weight: weights[c.RelationKey]})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read top relations: %w", err)
	}
	return top.Edges(), nil
}

// cutNeighbours offers key's neighbours to cut by falling bucket, and
// stops at the first bucket none of whose neighbours cut could take;
// neighbours is the statement neighboursByBucket.
func cutNeighbours(ctx context.Context, neighbours *sql.Stmt, namespace, key string, own int, cut *provenance.RankCut) error {
	rows, err := neighbours.QueryContext(ctx, namespace, key)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			bucket, degree int
			other          string
		)
		if err := rows.Scan(&bucket, &other, &degree); err != nil {
			return err
		}
		if !cut.CanTake(own + maxDegreeIn(bucket)) {
			return nil
		}
		cut.Offer(key, own, other, degree)
	}
	return rows.Err()
}

// relationWeights reads the summed weights of the relations.
func (s *Store) relationWeights(ctx context.Context, tx *sql.Tx, namespace string, relations []provenance.RankedKey) (map[provenance.RelationKey]float64, error) {
	out := make(map[provenance.RelationKey]float64, len(relations))
	pairs := make([]any, 0, 2*len(relations))
	for _, r := range relations {
		pairs = append(pairs, r.Src, r.Dst)
	}
	err := s.st.relationWeights.run([]any{namespace}, pairs, 2, func(stmt *sql.Stmt, args []any) error {
		rows, err := tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k      provenance.RelationKey
				weight sql.NullFloat64 // NULL for a relation with no mentions
			)
			if err := rows.Scan(&k.Src, &k.Dst, &weight); err != nil {
				return err
			}
			out[k] = weight.Float64
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read relation weights: %w", err)
	}
	return out, nil
}

// ChunkEntities returns, for each of the chunk ids, the keys of the
// entities its chunks mention, sorted; ids nothing mentions are missing.
func (s *Store) ChunkEntities(ctx context.Context, namespace string, ids []string) (map[string][]string, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read chunk entities: %w", err)
	}
	ids = distinct(ids)
	out := make(map[string][]string, len(ids))
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, batch := range batches(ids) {
			rows, err := tx.QueryContext(ctx,
				`SELECT DISTINCT chunk_id, entity_key FROM entity_mentions INDEXED BY entity_mentions_by_chunk_id
				WHERE namespace = ? AND chunk_id IN (`+placeholders(len(batch))+`)
				ORDER BY chunk_id, entity_key`,
				withNamespace(namespace, batch)...)
			if err != nil {
				return err
			}
			if err := scanPairs(rows, func(id, key string) { out[id] = append(out[id], key) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chunk entities: %w", err)
	}
	return out, nil
}
