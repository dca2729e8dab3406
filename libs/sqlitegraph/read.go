package sqlitegraph

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
)

const (
	entityColumns   = `entity_key, doc_id, chunk_id, chunk_index, name, type, description`
	relationColumns = `src, dst, doc_id, chunk_id, chunk_index, description, keywords, weight`
)

// Entities returns the entities with the given keys, in the order of the
// keys; keys nothing mentions are skipped, repeated keys returned once. An
// entity's Description is its summary while the summary is current (see
// SetSummaries). At most graph.MaxMentionsRead mentions of an entity are
// read (and counted, when there are more).
func (s *Store) Entities(ctx context.Context, namespace string, keys []string) ([]graph.Entity, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read entities: %w", err)
	}
	keys = distinct(keys)
	found := make(map[string]graph.Entity, len(keys))
	err := s.read(ctx, func(tx *sql.Tx) error {
		mentions := tx.StmtContext(ctx, s.st.entityMentions)
		defer mentions.Close()
		for _, key := range keys {
			rows, err := mentions.QueryContext(ctx, namespace, key)
			if err != nil {
				return err
			}
			if err := scanEntities(rows, func(e graph.Entity) { found[e.Key] = e }); err != nil {
				return err
			}
			if e, ok := found[key]; ok && e.Mentions == graph.MaxMentionsRead {
				if err := tx.StmtContext(ctx, s.st.entityMentionCount).QueryRowContext(ctx,
					namespace, key).Scan(&e.Mentions); err != nil {
					return err
				}
				found[key] = e
			}
		}
		sums, err := readSummaries(ctx, tx, namespace, keys)
		if err != nil {
			return fmt.Errorf("read summaries: %w", err)
		}
		for key, e := range found {
			sums.apply(&e)
			found[key] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read entities: %w", err)
	}
	var out []graph.Entity
	for _, key := range keys {
		if e, ok := found[key]; ok {
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
	found := make(map[provenance.RelationKey]graph.Relation)
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, batch := range batches(keys) {
			in := placeholders(len(batch))
			// Two queries rather than one with "src IN .. OR dst IN ..", for
			// which SQLite scans the whole namespace; INDEXED BY pins the
			// plan the ORDER BY would otherwise talk the planner out of.
			for _, query := range []string{
				`SELECT ` + relationColumns + ` FROM relation_mentions
				WHERE namespace = ? AND src IN (` + in + `) ORDER BY src, dst`,
				`SELECT ` + relationColumns + ` FROM relation_mentions INDEXED BY relation_mentions_by_dst
				WHERE namespace = ? AND dst IN (` + in + `) ORDER BY dst, src`,
			} {
				rows, err := tx.QueryContext(ctx, query, withNamespace(namespace, batch)...)
				if err != nil {
					return err
				}
				if err := scanRelations(rows, func(r graph.Relation) { found[provenance.RelationKey{Src: r.Source, Dst: r.Target}] = r }); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	out := make([]graph.Relation, 0, len(found))
	for _, r := range found {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b graph.Relation) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// RelationsBetween returns the relations between each pair of entity keys
// (either way round), in the order of the pairs; pairs without a relation
// are skipped.
func (s *Store) RelationsBetween(ctx context.Context, namespace string, pairs [][2]string) ([]graph.Relation, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	var out []graph.Relation
	seen := map[provenance.RelationKey]bool{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		mentions := tx.StmtContext(ctx, s.st.relationMentions)
		defer mentions.Close()
		for _, p := range pairs {
			k := provenance.RelationKey{Src: min(p[0], p[1]), Dst: max(p[0], p[1])}
			if seen[k] {
				continue
			}
			seen[k] = true
			rows, err := mentions.QueryContext(ctx, namespace, k.Src, k.Dst)
			if err != nil {
				return err
			}
			if err := scanRelations(rows, func(r graph.Relation) { out = append(out, r) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	return out, nil
}

// scanPairs emits the rows of two columns; it closes rows.
func scanPairs[A, B any](rows *sql.Rows, emit func(A, B)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			a A
			b B
		)
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		emit(a, b)
	}
	return rows.Err()
}

// Chunks returns the chunks with the given ids, in the order of the ids;
// unknown ids are skipped. Chunks are identified within their document, so
// an id two documents share returns both chunks.
func (s *Store) Chunks(ctx context.Context, namespace string, ids []string) ([]graph.Chunk, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read chunks: %w", err)
	}
	ids = distinct(ids)
	found := make(map[string][]graph.Chunk, len(ids))
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, batch := range batches(ids) {
			rows, err := tx.QueryContext(ctx,
				`SELECT chunk_id, doc_id, chunk_index, text, tokens FROM chunks
				WHERE namespace = ? AND chunk_id IN (`+placeholders(len(batch))+`)
				ORDER BY chunk_id, doc_id`,
				withNamespace(namespace, batch)...)
			if err != nil {
				return err
			}
			if err := scanChunks(rows, func(c graph.Chunk) { found[c.ID] = append(found[c.ID], c) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chunks: %w", err)
	}
	var out []graph.Chunk
	for _, id := range ids {
		out = append(out, found[id]...)
	}
	return out, nil
}

// Counts sizes the namespace.
func (s *Store) Counts(ctx context.Context, namespace string) (graph.Counts, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.Counts{}, fmt.Errorf("count: %w", err)
	}
	var c graph.Counts
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx,
			`SELECT
				(SELECT COUNT(*) FROM documents WHERE namespace = ?),
				(SELECT COUNT(*) FROM chunks WHERE namespace = ?),
				(SELECT COUNT(*) FROM (SELECT DISTINCT entity_key FROM entity_mentions WHERE namespace = ?)),
				(SELECT COUNT(*) FROM (SELECT DISTINCT src, dst FROM relation_mentions WHERE namespace = ?)),
				(SELECT COUNT(*) FROM communities WHERE namespace = ?)`,
			namespace, namespace, namespace, namespace, namespace).Scan(&c.Documents, &c.Chunks, &c.Entities, &c.Relations, &c.Communities)
	})
	if err != nil {
		return graph.Counts{}, fmt.Errorf("count namespace %s: %w", namespace, err)
	}
	return c, nil
}

// Snapshot returns every entity and relation of the namespace, sorted by
// key, with current summaries as descriptions like Entities.
func (s *Store) Snapshot(ctx context.Context, namespace string) (graph.Snapshot, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	var snap graph.Snapshot
	err := s.read(ctx, func(tx *sql.Tx) error {
		sums, err := readSummaries(ctx, tx, namespace, nil)
		if err != nil {
			return fmt.Errorf("read summaries: %w", err)
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT `+entityColumns+` FROM entity_mentions WHERE namespace = ?
			ORDER BY entity_key`, namespace)
		if err != nil {
			return err
		}
		if err := scanEntities(rows, func(e graph.Entity) {
			sums.apply(&e)
			snap.Entities = append(snap.Entities, e)
		}); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx,
			`SELECT `+relationColumns+` FROM relation_mentions WHERE namespace = ?
			ORDER BY src, dst`, namespace)
		if err != nil {
			return err
		}
		return scanRelations(rows, func(r graph.Relation) { snap.Relations = append(snap.Relations, r) })
	})
	if err != nil {
		return graph.Snapshot{}, fmt.Errorf("snapshot namespace %s: %w", namespace, err)
	}
	return snap, nil
}

// EachEdge calls fn with every relation's endpoints and summed weight, in
// (Source, Target) order, summed by SQLite without reading a description,
// inside one read transaction.
func (s *Store) EachEdge(ctx context.Context, namespace string, fn func(graph.Edge) error) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("read edges: %w", err)
	}
	var fnErr error
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT src, dst, SUM(weight) FROM relation_mentions WHERE namespace = ? GROUP BY src, dst ORDER BY src, dst`, namespace)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e graph.Edge
			if err := rows.Scan(&e.Source, &e.Target, &e.Weight); err != nil {
				return err
			}
			if fnErr = fn(e); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr // the caller's error, not the store's: passed on as is
	}
	if err != nil {
		return fmt.Errorf("read edges of %s: %w", namespace, err)
	}
	return nil
}

// scanEntities aggregates rows of entityColumns, grouped by key, emitting
// one entity per key; it closes rows.
func scanEntities(rows *sql.Rows, emit func(graph.Entity)) error {
	defer rows.Close()
	var (
		key   string
		group []provenance.EntityRow
	)
	for rows.Next() {
		var (
			rowKey string
			r      provenance.EntityRow
		)
		if err := rows.Scan(&rowKey, &r.DocID, &r.ChunkID, &r.Index, &r.Name, &r.Type, &r.Description); err != nil {
			return err
		}
		if len(group) > 0 && rowKey != key {
			emit(provenance.AggregateEntity(key, group))
			group = group[:0]
		}
		key = rowKey
		group = append(group, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(group) > 0 {
		emit(provenance.AggregateEntity(key, group))
	}
	return nil
}

// scanRelations aggregates rows of relationColumns, grouped by (src, dst),
// emitting one relation per key; it closes rows.
func scanRelations(rows *sql.Rows, emit func(graph.Relation)) error {
	defer rows.Close()
	var (
		key   provenance.RelationKey
		group []provenance.RelationRow
	)
	for rows.Next() {
		var (
			rowKey   provenance.RelationKey
			r        provenance.RelationRow
			keywords string
		)
		if err := rows.Scan(&rowKey.Src, &rowKey.Dst, &r.DocID, &r.ChunkID, &r.Index, &r.Description, &keywords, &r.Weight); err != nil {
			return err
		}
		var err error
		if r.Keywords, err = decodeKeywords(keywords); err != nil {
			return fmt.Errorf("relation %q-%q: %w", rowKey.Src, rowKey.Dst, err)
		}
		if len(group) > 0 && rowKey != key {
			emit(provenance.AggregateRelation(key, group))
			group = group[:0]
		}
		key = rowKey
		group = append(group, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(group) > 0 {
		emit(provenance.AggregateRelation(key, group))
	}
	return nil
}

func scanChunks(rows *sql.Rows, emit func(graph.Chunk)) error {
	defer rows.Close()
	for rows.Next() {
		var c graph.Chunk
		if err := rows.Scan(&c.ID, &c.DocID, &c.Index, &c.Text, &c.Tokens); err != nil {
			return err
		}
		emit(c)
	}
	return rows.Err()
}

// withNamespace returns the query arguments namespace, values...
func withNamespace(namespace string, values []string) []any {
	args := make([]any, 0, len(values)+1)
	args = append(args, namespace)
	for _, v := range values {
		args = append(args, v)
	}
	return args
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
