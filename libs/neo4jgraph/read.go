package neo4jgraph

import (
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"

	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// The reads return one row per mention; aggregation happens in Go, in the
// same code and order as the embedded store, so both stores agree to the
// last bit of a summed weight.
//
// Reads run at Neo4j's read-committed isolation: while chunks are merged
// concurrently, one read may see some of a merge and not the rest, and a row
// whose relationship or node a concurrent merge deleted is skipped.
const (
	entityMentionColumns = `e.key AS key, c.doc_id AS doc_id, c.chunk_id AS chunk_id, c.chunk_index AS chunk_index,
  m.name AS name, m.type AS type, m.description AS description`
	relationMentionColumns = `s.key AS src, t.key AS dst, r.doc_id AS doc_id, r.chunk_id AS chunk_id, r.chunk_index AS chunk_index,
  r.description AS description, r.keywords AS keywords, r.weight AS weight`

	// entityMentionsOfUIDs reads the first $limit mentions of each entity
	// by (document id, chunk id) in the order of the mentions index, so a
	// hub's other mentions are not read, and counts them all from the
	// node's degree. Ordering by m.e too, though it is one value, is what
	// makes the planner take the index's order instead of sorting every
	// mention. (Cypher orders strings by UTF-16 code units, kgraph by
	// bytes: they differ only for ids with characters beyond U+FFFF.)
	entityMentionsOfUIDs = `
UNWIND $uids AS uid
MATCH (e:Entity {uid: uid})
CALL (e) {
  MATCH (c)-[m:MENTIONS]->()
  WHERE m.e = e.uid AND m.doc_id IS NOT NULL AND m.chunk_id IS NOT NULL
  WITH m, c ORDER BY m.e, m.doc_id, m.chunk_id LIMIT $limit
  RETURN m, c
}
RETURN ` + entityMentionColumns + `, COUNT { (e)<-[:MENTIONS]-() } AS mentions`

	// relationMentionsOfUIDs walks from each entity; a relation between two
	// of the entities is reached twice, hence DISTINCT.
	relationMentionsOfUIDs = `
UNWIND $uids AS uid
MATCH (:Entity {uid: uid})-[r:RELATED]-()
WITH DISTINCT r
MATCH (s:Entity)-[r]->(t:Entity)
RETURN ` + relationMentionColumns

	chunksOfIDs = `
UNWIND $ids AS id
MATCH (c:Chunk {scope: $scope, chunk_id: id})
RETURN c.chunk_id AS chunk_id, c.doc_id AS doc_id, c.chunk_index AS chunk_index, c.text AS text, c.tokens AS tokens`

	countScope = `
CALL {
  MATCH (d:Document {scope: $scope})
  RETURN count(d) AS documents, sum(COUNT { (d)-[:HAS_CHUNK]->() }) AS chunks
}
CALL {
  MATCH (e:Entity {scope: $scope})
  RETURN count(e) AS entities
}
CALL {
  MATCH (e:Entity {scope: $scope})
  RETURN sum(COUNT { (e)-[:LINK]->() }) AS relations
}
CALL {
  MATCH (c:Community {scope: $scope})
  RETURN count(c) AS communities
}
RETURN documents, chunks, entities, relations, communities`

	entityMentionsOfScope = `
MATCH (e:Entity {scope: $scope})<-[m:MENTIONS]-(c:Chunk)
RETURN ` + entityMentionColumns

	relationMentionsOfScope = `
MATCH (s:Entity {scope: $scope})-[r:RELATED]->(t:Entity)
RETURN ` + relationMentionColumns
)

// Entities returns the entities with the given keys, in the order of the
// keys; keys nothing mentions are skipped, repeated keys returned once. An
// entity's description is its summary while that summarises the joined
// description.
func (s *Store) Entities(ctx context.Context, namespace string, keys []string) ([]graph.Entity, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read entities: %w", err)
	}
	keys = distinct(keys)
	groups := make(map[string][]provenance.EntityRow, len(keys))
	mentions := make(map[string]int, len(keys))
	sums := summaries{}
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(groups) // the driver may retry the transaction
		clear(sums)
		clear(mentions)
		err := readEntityMentions(ctx, tx, entityMentionsOfUIDs,
			map[string]any{"uids": s.entityUIDs(namespace, keys), "limit": int64(graph.MaxMentionsRead)}, groups,
			func(key string, r *neo4j.Record) error {
				n, err := recordInt(r, "mentions")
				mentions[key] = n
				return err
			})
		if err != nil || len(groups) == 0 {
			return nil, err
		}
		found := make([]string, 0, len(groups))
		for key := range groups {
			found = append(found, s.summaryUID(namespace, key))
		}
		return nil, readSummaries(ctx, tx, summariesOfUIDs, map[string]any{"uids": found}, sums)
	})
	if err != nil {
		return nil, fmt.Errorf("read entities: %w", err)
	}
	var out []graph.Entity
	for _, key := range keys {
		if rows, ok := groups[key]; ok {
			e := provenance.AggregateEntity(key, rows)
			e.Mentions = mentions[key]
			sums.apply(&e)
			out = append(out, e)
		}
	}
	return out, nil
}

// RelationsOf returns the relations touching any of the keys, highest
// weight first, then by (Source, Target); at most limit of them unless
// limit <= 0.
func (s *Store) RelationsOf(ctx context.Context, namespace string, keys []string, limit int) ([]graph.Relation, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	keys = distinct(keys)
	groups := make(map[provenance.RelationKey][]provenance.RelationRow)
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(groups)
		return nil, readRelationMentions(ctx, tx, relationMentionsOfUIDs, map[string]any{"uids": s.entityUIDs(namespace, keys)},
			func(key provenance.RelationKey, row provenance.RelationRow) { groups[key] = append(groups[key], row) })
	})
	if err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	out := make([]graph.Relation, 0, len(groups))
	for key, rows := range groups {
		out = append(out, provenance.AggregateRelation(key, rows))
	}
	slices.SortFunc(out, func(a, b graph.Relation) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Chunks returns the chunks with the given ids, in the order of the ids;
// unknown ids are skipped. Chunks are identified within their document, so
// an id two documents share returns both chunks (ordered by document).
func (s *Store) Chunks(ctx context.Context, namespace string, ids []string) ([]graph.Chunk, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read chunks: %w", err)
	}
	ids = distinct(ids)
	found := make(map[string][]graph.Chunk, len(ids))
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(found)
		result, err := tx.Run(ctx, chunksOfIDs, map[string]any{"scope": s.scope(namespace), "ids": ids})
		if err != nil {
			return nil, err
		}
		for record, err := range result.Records(ctx) {
			if err != nil {
				return nil, err
			}
			c, err := chunkOf(record)
			if isNull(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			found[c.ID] = append(found[c.ID], c)
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chunks: %w", err)
	}
	var out []graph.Chunk
	for _, id := range ids {
		chunks := found[id]
		slices.SortFunc(chunks, func(a, b graph.Chunk) int { return cmp.Compare(a.DocID, b.DocID) })
		out = append(out, chunks...)
	}
	return out, nil
}

// Counts sizes the namespace.
func (s *Store) Counts(ctx context.Context, namespace string) (graph.Counts, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.Counts{}, fmt.Errorf("count: %w", err)
	}
	var counts graph.Counts
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		rows, err := collect(ctx, tx, countScope, map[string]any{"scope": s.scope(namespace)},
			func(r *neo4j.Record) (graph.Counts, error) {
				var c graph.Counts
				var err error
				for _, field := range []struct {
					key string
					to  *int
				}{{"documents", &c.Documents}, {"chunks", &c.Chunks}, {"entities", &c.Entities}, {"relations", &c.Relations},
					{"communities", &c.Communities}} {
					if *field.to, err = recordInt(r, field.key); err != nil {
						return graph.Counts{}, err
					}
				}
				return c, nil
			})
		if err != nil {
			return nil, err
		}
		if len(rows) != 1 {
			return nil, fmt.Errorf("%d rows of counts", len(rows))
		}
		counts = rows[0]
		return nil, nil
	})
	if err != nil {
		return graph.Counts{}, fmt.Errorf("count namespace %s: %w", namespace, err)
	}
	return counts, nil
}

// Snapshot returns every entity and relation of the namespace, sorted by
// key, entities with their current summaries as in Entities.
func (s *Store) Snapshot(ctx context.Context, namespace string) (graph.Snapshot, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	entityGroups := make(map[string][]provenance.EntityRow)
	relationGroups := make(map[provenance.RelationKey][]provenance.RelationRow)
	sums := summaries{}
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		clear(entityGroups)
		clear(relationGroups)
		clear(sums)
		params := map[string]any{"scope": s.scope(namespace)}
		if err := readEntityMentions(ctx, tx, entityMentionsOfScope, params, entityGroups, nil); err != nil {
			return nil, err
		}
		if err := readSummaries(ctx, tx, summariesOfScope, params, sums); err != nil {
			return nil, err
		}
		return nil, readRelationMentions(ctx, tx, relationMentionsOfScope, params, func(key provenance.RelationKey, row provenance.RelationRow) {
			relationGroups[key] = append(relationGroups[key], row)
		})
	})
	if err != nil {
		return graph.Snapshot{}, fmt.Errorf("snapshot namespace %s: %w", namespace, err)
	}
	var snap graph.Snapshot
	for _, key := range slices.Sorted(maps.Keys(entityGroups)) {
		e := provenance.AggregateEntity(key, entityGroups[key])
		sums.apply(&e)
		snap.Entities = append(snap.Entities, e)
	}
	relationKeys := slices.SortedFunc(maps.Keys(relationGroups), func(a, b provenance.RelationKey) int {
		return cmp.Or(cmp.Compare(a.Src, b.Src), cmp.Compare(a.Dst, b.Dst))
	})
	for _, key := range relationKeys {
		snap.Relations = append(snap.Relations, provenance.AggregateRelation(key, relationGroups[key]))
	}
	return snap, nil
}

// readEntityMentions runs a query returning entityMentionColumns and groups
// its rows by entity key; each, unless nil, reads more of every record.
func readEntityMentions(ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any,
	groups map[string][]provenance.EntityRow, each func(key string, r *neo4j.Record) error) error {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	for record, err := range result.Records(ctx) {
		if err != nil {
			return err
		}
		key, row, err := entityRowOf(record)
		if isNull(err) {
			continue
		}
		if err != nil {
			return err
		}
		groups[key] = append(groups[key], row)
		if each != nil {
			if err := each(key, record); err != nil {
				return err
			}
		}
	}
	return nil
}

// readRelationMentions runs a query returning relationMentionColumns and
// hands each row to add.
func readRelationMentions(ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any,
	add func(provenance.RelationKey, provenance.RelationRow)) error {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	for record, err := range result.Records(ctx) {
		if err != nil {
			return err
		}
		key, row, err := relationRowOf(record)
		if isNull(err) {
			continue
		}
		if err != nil {
			return err
		}
		add(key, row)
	}
	return nil
}

func entityRowOf(r *neo4j.Record) (string, provenance.EntityRow, error) {
	var (
		key string
		row provenance.EntityRow
		err error
	)
	for _, field := range []struct {
		key string
		to  *string
	}{
		{"key", &key}, {"doc_id", &row.DocID}, {"chunk_id", &row.ChunkID},
		{"name", &row.Name}, {"type", &row.Type}, {"description", &row.Description},
	} {
		if *field.to, err = recordString(r, field.key); err != nil {
			return "", provenance.EntityRow{}, err
		}
	}
	if row.Index, err = recordInt(r, "chunk_index"); err != nil {
		return "", provenance.EntityRow{}, err
	}
	return key, row, nil
}

func relationRowOf(r *neo4j.Record) (provenance.RelationKey, provenance.RelationRow, error) {
	var (
		key provenance.RelationKey
		row provenance.RelationRow
		err error
	)
	for _, field := range []struct {
		key string
		to  *string
	}{
		{"src", &key.Src}, {"dst", &key.Dst}, {"doc_id", &row.DocID}, {"chunk_id", &row.ChunkID},
		{"description", &row.Description},
	} {
		if *field.to, err = recordString(r, field.key); err != nil {
			return provenance.RelationKey{}, provenance.RelationRow{}, err
		}
	}
	if row.Index, err = recordInt(r, "chunk_index"); err != nil {
		return provenance.RelationKey{}, provenance.RelationRow{}, err
	}
	if row.Keywords, err = recordStrings(r, "keywords"); err != nil {
		return provenance.RelationKey{}, provenance.RelationRow{}, err
	}
	if row.Weight, err = recordFloat(r, "weight"); err != nil {
		return provenance.RelationKey{}, provenance.RelationRow{}, err
	}
	return key, row, nil
}

func chunkOf(r *neo4j.Record) (graph.Chunk, error) {
	var (
		c   graph.Chunk
		err error
	)
	for _, field := range []struct {
		key string
		to  *string
	}{{"chunk_id", &c.ID}, {"doc_id", &c.DocID}, {"text", &c.Text}} {
		if *field.to, err = recordString(r, field.key); err != nil {
			return graph.Chunk{}, err
		}
	}
	if c.Index, err = recordInt(r, "chunk_index"); err != nil {
		return graph.Chunk{}, err
	}
	if c.Tokens, err = recordInt(r, "tokens"); err != nil {
		return graph.Chunk{}, err
	}
	return c, nil
}

// nullError reports a null where the store always writes a value: the node
// or relationship was deleted by a transaction that committed while the
// read ran (reads are read-committed), so the row is to be skipped.
type nullError struct{ column string }

func (e nullError) Error() string { return "column " + e.column + ": null" }

func isNull(err error) bool {
	var null nullError
	return errors.As(err, &null)
}

// recordValue returns a record's non-null value of type T.
func recordValue[T neo4j.RecordValue](r *neo4j.Record, key string) (T, error) {
	v, isNil, err := neo4j.GetRecordValue[T](r, key)
	if err != nil {
		return v, fmt.Errorf("column %s: %w", key, err)
	}
	if isNil {
		return v, nullError{column: key}
	}
	return v, nil
}

func recordString(r *neo4j.Record, key string) (string, error) { return recordValue[string](r, key) }

func recordFloat(r *neo4j.Record, key string) (float64, error) { return recordValue[float64](r, key) }

func recordInt(r *neo4j.Record, key string) (int, error) {
	v, err := recordValue[int64](r, key)
	return int(v), err
}

// recordMaps returns a list of maps; null is an empty list.
func recordMaps(r *neo4j.Record, key string) ([]map[string]any, error) {
	values, _, err := neo4j.GetRecordValue[[]any](r, key)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", key, err)
	}
	out := make([]map[string]any, len(values))
	for i, v := range values {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("column %s: item %d is %T, not a map", key, i, v)
		}
		out[i] = m
	}
	return out, nil
}

func mapString(m map[string]any, key string) (string, error) {
	s, ok := m[key].(string)
	if !ok {
		return "", fmt.Errorf("map key %s is %T, not a string", key, m[key])
	}
	return s, nil
}

// recordStrings returns a list of strings; null is an empty list.
func recordStrings(r *neo4j.Record, key string) ([]string, error) {
	values, _, err := neo4j.GetRecordValue[[]any](r, key)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", key, err)
	}
	out := make([]string, len(values))
	for i, v := range values {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("column %s: item %d is %T, not a string", key, i, v)
		}
		out[i] = s
	}
	return out, nil
}

// distinct returns values without repeats, keeping first occurrences.
func distinct(values []string) []string {
	seen := make(map[string]bool, len(values))
	out := make([]string, 0, len(values))
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
