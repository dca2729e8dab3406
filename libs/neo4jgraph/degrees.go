package neo4jgraph

import (
	"context"
	"fmt"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

const (
	// degreesOfUIDs reads the kept degrees (see links.go).
	degreesOfUIDs = `
UNWIND $uids AS uid
MATCH (e:Entity {uid: uid})
WITH e WHERE e.degree > 0
RETURN e.key AS key, e.degree AS degree`

	// edgesOfScope reads one kept link per relation, its weight summed.
	edgesOfScope = `
MATCH (s:Entity {scope: $scope})-[l:LINK]->(t:Entity)
RETURN s.key AS src, t.key AS dst, l.weight AS weight`

	chunkEntitiesOfIDs = `
UNWIND $ids AS id
MATCH (c:Chunk {scope: $scope, chunk_id: id})-[:MENTIONS]->(e:Entity)
RETURN id AS chunk_id, collect(DISTINCT e.key) AS keys`
)

// Degrees returns the number of distinct relations of each of the keys
// that has any, as the store keeps it: one property read a key.
func (s *Store) Degrees(ctx context.Context, namespace string, keys []string) (map[string]int, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read degrees: %w", err)
	}
	var out map[string]int
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = s.degreesIn(ctx, tx, namespace, keys)
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read degrees: %w", err)
	}
	return out, nil
}

func (s *Store) degreesIn(ctx context.Context, tx neo4j.ManagedTransaction, namespace string, keys []string) (map[string]int, error) {
	out := map[string]int{}
	_, err := collect(ctx, tx, degreesOfUIDs, map[string]any{"uids": s.entityUIDs(namespace, distinct(keys))},
		func(r *neo4j.Record) (struct{}, error) {
			key, err := recordString(r, "key")
			if err != nil {
				return struct{}{}, err
			}
			out[key], err = recordInt(r, "degree")
			return struct{}{}, err
		})
	return out, err
}

// EachEdge calls fn with every relation's endpoints and summed weight, the
// kept links (one a relation, without descriptions), as the records stream
// in. It runs in an explicit transaction, not a managed one: the driver
// retries managed work from the start, which would hand fn the first edges
// twice.
func (s *Store) EachEdge(ctx context.Context, namespace string, fn func(graph.Edge) error) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("read edges: %w", err)
	}
	session := s.session(ctx, neo4j.AccessModeRead)
	defer session.Close(ctx)
	tx, err := session.BeginTransaction(ctx)
	if err != nil {
		return fmt.Errorf("read edges of %s: %w", namespace, err)
	}
	defer tx.Close(ctx)
	result, err := tx.Run(ctx, edgesOfScope, map[string]any{"scope": s.scope(namespace)})
	if err != nil {
		return fmt.Errorf("read edges of %s: %w", namespace, err)
	}
	for result.Next(ctx) {
		var e graph.Edge
		r := result.Record()
		if e.Source, err = recordString(r, "src"); err != nil {
			return fmt.Errorf("read edges of %s: %w", namespace, err)
		}
		if e.Target, err = recordString(r, "dst"); err != nil {
			return fmt.Errorf("read edges of %s: %w", namespace, err)
		}
		if e.Weight, err = recordFloat(r, "weight"); err != nil {
			return fmt.Errorf("read edges of %s: %w", namespace, err)
		}
		if err := fn(e); err != nil {
			return err // the caller's error, passed on as is
		}
	}
	if err := result.Err(); err != nil {
		return fmt.Errorf("read edges of %s: %w", namespace, err)
	}
	return nil
}

// ChunkEntities returns, for each of the chunk ids, the sorted keys of the
// entities its chunks mention; ids that mention nothing are missing.
func (s *Store) ChunkEntities(ctx context.Context, namespace string, ids []string) (map[string][]string, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read chunk entities: %w", err)
	}
	out := map[string][]string{}
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(out)
		_, err := collect(ctx, tx, chunkEntitiesOfIDs, map[string]any{"scope": s.scope(namespace), "ids": distinct(ids)},
			func(r *neo4j.Record) (struct{}, error) {
				id, err := recordString(r, "chunk_id")
				if err != nil {
					return struct{}{}, err
				}
				keys, err := recordStrings(r, "keys")
				if err != nil {
					return struct{}{}, err
				}
				slices.Sort(keys)
				out[id] = keys
				return struct{}{}, nil
			})
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read chunk entities: %w", err)
	}
	return out, nil
}
