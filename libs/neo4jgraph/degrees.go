package neo4jgraph

import (
	"cmp"
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

// Edges returns every relation's endpoints and summed weight, sorted by
// (Source, Target): the kept links, one a relation, without descriptions.
func (s *Store) Edges(ctx context.Context, namespace string) ([]graph.Edge, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	var out []graph.Edge
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = collect(ctx, tx, edgesOfScope, map[string]any{"scope": s.scope(namespace)},
			func(r *neo4j.Record) (graph.Edge, error) {
				var e graph.Edge
				var err error
				if e.Source, err = recordString(r, "src"); err != nil {
					return e, err
				}
				if e.Target, err = recordString(r, "dst"); err != nil {
					return e, err
				}
				e.Weight, err = recordFloat(r, "weight")
				return e, err
			})
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read edges of %s: %w", namespace, err)
	}
	slices.SortFunc(out, func(a, b graph.Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	return out, nil
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
