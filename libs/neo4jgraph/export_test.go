package neo4jgraph

import (
	"context"
	"fmt"
	"math"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// partitionLabels are the labels of every node a store writes.
func partitionLabels() []string {
	return []string{"Document", "Chunk", "Entity", "GenerationShard", "Namespace", "Community", "EntitySummary"}
}

// DeletePartition deletes every node of the store's partition, so tests
// sharing one database leave nothing behind.
func (s *Store) DeletePartition(ctx context.Context) error {
	params := map[string]any{"prefix": identity(s.partition)}
	// Up to 10,000 nodes a transaction; the labels are fixed text.
	for _, label := range partitionLabels() {
		query := `MATCH (n:` + label + `) WHERE n.scope STARTS WITH $prefix WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted`
		for {
			deleted, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
				counts, err := collect(ctx, tx, query, params, func(r *neo4j.Record) (int, error) { return recordInt(r, "deleted") })
				if err != nil {
					return 0, err
				}
				return counts[0], nil
			})
			if err != nil {
				return fmt.Errorf("delete partition %q: %w", s.partition, err)
			}
			if deleted.(int) == 0 {
				break
			}
		}
	}
	return nil
}

// NodesInPartition counts the partition's graph nodes (documents, chunks
// and entities); the derived data's nodes are not counted.
func (s *Store) NodesInPartition(ctx context.Context) (int, error) {
	var total int
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		counts, err := collect(ctx, tx,
			`MATCH (n) WHERE (n:Document OR n:Chunk OR n:Entity) AND n.scope STARTS WITH $prefix RETURN count(n) AS nodes`,
			map[string]any{"prefix": identity(s.partition)},
			func(r *neo4j.Record) (int, error) { return recordInt(r, "nodes") })
		if err != nil {
			return nil, err
		}
		total = counts[0]
		return nil, nil
	})
	return total, err
}

// AllNodesInPartition counts the partition's nodes of every label the
// store writes, derived data included.
func (s *Store) AllNodesInPartition(ctx context.Context) (int, error) {
	var total int
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		total = 0
		for _, label := range partitionLabels() {
			counts, err := collect(ctx, tx,
				`MATCH (n:`+label+`) WHERE n.scope STARTS WITH $prefix RETURN count(n) AS nodes`,
				map[string]any{"prefix": identity(s.partition)},
				func(r *neo4j.Record) (int, error) { return recordInt(r, "nodes") })
			if err != nil {
				return nil, err
			}
			total += counts[0]
		}
		return nil, nil
	})
	return total, err
}

// The one-by-one write path exists only to measure what batching saves: it
// writes a chunk's entities and relations one transaction each, as a naive
// client would. It neither replaces a previous contribution nor keeps the
// document's counts, so it is no substitute for MergeChunk.
const (
	oneByOneChunk = `
MERGE (d:Document {uid: $doc})
  ON CREATE SET d.scope = $scope, d.namespace = $namespace, d.doc_id = $docID, d.entities = 0, d.relations = 0
MERGE (c:Chunk {uid: $chunk})
  ON CREATE SET c.scope = $scope, c.namespace = $namespace, c.doc = $doc, c.doc_id = $docID, c.chunk_id = $chunkID
SET c.job_id = $jobID, c.chunk_index = $index, c.text = $text, c.tokens = $tokens
MERGE (d)-[:HAS_CHUNK]->(c)`
	oneByOneEntity = `
MATCH (c:Chunk {uid: $chunk})
MERGE (e:Entity {uid: $uid})
  ON CREATE SET e.scope = $scope, e.namespace = $namespace, e.key = $key
CREATE (c)-[:MENTIONS {e: $uid, doc_id: $docID, chunk_id: $chunkID, name: $name, type: $type, description: $description}]->(e)`
	oneByOneRelation = `
MATCH (s:Entity {uid: $src})
MATCH (t:Entity {uid: $dst})
CREATE (s)-[:RELATED {chunk: $chunk, pair: s.uid + t.uid, doc: $doc, doc_id: $docID, chunk_id: $chunkID, chunk_index: $index,
  description: $description, keywords: $keywords, weight: $weight}]->(t)`
)

// MergeChunkOneByOne writes the chunk, then each entity mention and each
// relation mention in a transaction of its own.
func (s *Store) MergeChunkOneByOne(ctx context.Context, chunk graph.ChunkGraph) error {
	m := s.newMerge(chunk)
	writeOne := func(cypher string, params map[string]any) error {
		_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			return nil, run(ctx, tx, cypher, params)
		})
		return err
	}
	if err := writeOne(oneByOneChunk, m.params); err != nil {
		return err
	}
	for _, e := range m.entities {
		err := writeOne(oneByOneEntity, m.with(map[string]any{
			"uid": e.uid, "key": e.key, "name": e.name, "type": e.typ, "description": e.description,
		}))
		if err != nil {
			return err
		}
	}
	for _, r := range m.relations {
		err := writeOne(oneByOneRelation, m.with(map[string]any{
			"src": r.src, "dst": r.dst, "description": r.description, "keywords": r.keywords, "weight": r.weight,
		}))
		if err != nil {
			return err
		}
	}
	return nil
}

// SearchEntityKeys queries the full-text index on entity keys within a
// namespace of the store's partition.
func (s *Store) SearchEntityKeys(ctx context.Context, namespace, query string) ([]string, error) {
	var keys []string
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		keys, err = collect(ctx, tx, `
CALL db.index.fulltext.queryNodes('kgraph_entity_key_text', $query) YIELD node
WHERE node.scope = $scope
RETURN node.key AS key ORDER BY key`,
			map[string]any{"query": query, "scope": s.scope(namespace)},
			func(r *neo4j.Record) (string, error) { return recordString(r, "key") })
		return nil, err
	})
	return keys, err
}

// CheckLinks recounts the namespace's relations from their RELATED
// mentions, the slow way, and compares the kept links and degrees with it.
func (s *Store) CheckLinks(ctx context.Context, namespace string) error {
	params := map[string]any{"scope": s.scope(namespace)}
	type pairRow struct {
		mentions int
		weight   float64
		pair     string
	}
	pairRows := func(cypher string) (map[[2]string]pairRow, error) {
		out := map[[2]string]pairRow{}
		err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			clear(out)
			_, err := collect(ctx, tx, cypher, params, func(r *neo4j.Record) (struct{}, error) {
				var k [2]string
				var row pairRow
				var err error
				if k[0], err = recordString(r, "src"); err != nil {
					return struct{}{}, err
				}
				if k[1], err = recordString(r, "dst"); err != nil {
					return struct{}{}, err
				}
				if row.mentions, err = recordInt(r, "mentions"); err != nil {
					return struct{}{}, err
				}
				if row.weight, err = recordFloat(r, "weight"); err != nil {
					return struct{}{}, err
				}
				row.pair, err = recordString(r, "pair")
				out[k] = row
				return struct{}{}, err
			})
			return nil, err
		})
		return out, err
	}
	want, err := pairRows(`
MATCH (s:Entity {scope: $scope})-[r:RELATED]->(t:Entity)
WITH s, t, count(r) AS mentions, sum(r.weight) AS weight, collect(DISTINCT r.pair) AS pairs
RETURN s.key AS src, t.key AS dst, mentions, weight, CASE WHEN size(pairs) = 1 THEN pairs[0] ELSE '' END AS pair`)
	if err != nil {
		return fmt.Errorf("recount relations: %w", err)
	}
	got, err := pairRows(`
MATCH (s:Entity {scope: $scope})-[l:LINK]->(t:Entity)
RETURN s.key AS src, t.key AS dst, l.mentions AS mentions, l.weight AS weight, l.pair AS pair`)
	if err != nil {
		return fmt.Errorf("read links: %w", err)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d links for %d related pairs", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			return fmt.Errorf("no link for %v", k)
		case g.mentions != w.mentions || math.Abs(g.weight-w.weight) > 1e-9:
			return fmt.Errorf("link %v: %d mentions of weight %g, recounted %d of weight %g", k, g.mentions, g.weight, w.mentions, w.weight)
		case g.pair != w.pair || g.pair != pairUID(s.entityUID(namespace, k[0]), s.entityUID(namespace, k[1])):
			return fmt.Errorf("link %v: pair %q, mentions' pair %q", k, g.pair, w.pair)
		}
	}
	var bad []string
	err = s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		bad, err = collect(ctx, tx, `
MATCH (e:Entity {scope: $scope})
WITH e, COUNT { MATCH (e)-[:RELATED]-(n:Entity) RETURN DISTINCT n } AS neighbours
WHERE coalesce(e.degree, 0) <> neighbours
RETURN e.key + ': degree ' + toString(e.degree) + ', ' + toString(neighbours) + ' neighbours' AS bad`,
			params, func(r *neo4j.Record) (string, error) { return recordString(r, "bad") })
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("recount degrees: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("kept degrees differ from the neighbours counted: %v", bad)
	}
	return nil
}

// ForgetLinks makes the partition look written by a version without kept
// links: no LINKs, degrees, buckets, pairs of relation mentions or entity
// and chunk ids on entity mentions, and no migration marker
// (which is the database's, not the partition's).
func (s *Store) ForgetLinks(ctx context.Context) error {
	params := map[string]any{"prefix": identity(s.partition), "uid": layoutMarkerUID}
	for _, cypher := range []string{
		`MATCH (e:Entity)-[l:LINK]->() WHERE e.scope STARTS WITH $prefix DELETE l`,
		`MATCH (e:Entity)-[r:RELATED]->() WHERE e.scope STARTS WITH $prefix REMOVE r.pair`,
		`MATCH (e:Entity) WHERE e.scope STARTS WITH $prefix REMOVE e.degree, e.bucket`,
		`MATCH (e:Entity)<-[m:MENTIONS]-() WHERE e.scope STARTS WITH $prefix REMOVE m.e, m.doc_id, m.chunk_id`,
		`MATCH (m:KgraphSchema {uid: $uid}) DELETE m`,
	} {
		if _, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			return nil, run(ctx, tx, cypher, params)
		}); err != nil {
			return fmt.Errorf("forget links: %w", err)
		}
	}
	return nil
}
