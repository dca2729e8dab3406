package sqlitegraph

import (
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"

	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// MergeChunk replaces the chunk's previous contribution (if any) with this
// one in a single transaction, so a redelivered chunk changes nothing and a
// corrected chunk replaces the old version.
func (s *Store) MergeChunk(ctx context.Context, chunk graph.ChunkGraph) (graph.MergeResult, error) {
	switch {
	case chunk.Namespace == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: empty namespace", chunk.ChunkID)
	case chunk.DocID == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: empty document id", chunk.ChunkID)
	case chunk.ChunkID == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk of document %s: empty chunk id", chunk.DocID)
	}
	contrib := provenance.ContributionOf(chunk)
	result := graph.MergeResult{Entities: len(contrib.Entities), Relations: len(contrib.Relations)}
	err := s.write(ctx, func(tx *sql.Tx) error {
		m := merger{ctx: ctx, tx: tx, st: s.st, chunk: chunk}
		var err error
		result.DocEntities, result.DocRelations, err = m.replace(contrib)
		return err
	})
	if err != nil {
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: %w", chunk.ChunkID, err)
	}
	return result, nil
}

// merger runs one chunk's merge inside a write transaction.
type merger struct {
	ctx   context.Context
	tx    *sql.Tx
	st    *statements
	chunk graph.ChunkGraph
}

// Arguments per row of the multi-row statements.
const (
	entityKeyWidth   = 1 // entity_key
	relationKeyWidth = 2 // src, dst
	entityRowWidth   = 4 // entity_key, name, type, description
	relationRowWidth = 5 // src, dst, description, keywords, weight
)

// storedChunk is a chunk row's values.
type storedChunk struct {
	jobID  string
	index  int
	text   string
	tokens int
}

// storedEntity and storedRelation are a chunk's mention rows' values
// besides their keys, as stored and as about to be stored.
type storedEntity struct {
	index       int
	name        string
	typ         string
	description string
}

type storedRelation struct {
	index       int
	description string
	keywords    string
	weight      float64
}

// rowChanges are the writes that turn a chunk's stored mention rows of one
// kind into its new ones, as flat statement arguments.
type rowChanges struct {
	gained  []any // keys the chunk did not mention before
	lost    []any // keys the chunk no longer mentions
	changed []any // keys the chunk still mentions with other values
	rows    []any // the new rows of the gained and changed keys
}

// changes reports whether any row is written.
func (c rowChanges) changes() bool { return len(c.rows) > 0 || len(c.lost) > 0 }

// diffRows compares a chunk's stored rows (consumed) with its new ones.
func diffRows[K, V comparable](stored map[K]V, keys []K, values []V, keyArgs func(K) []any, rowArgs func(K, V) []any) rowChanges {
	var c rowChanges
	for i, k := range keys {
		old, had := stored[k]
		delete(stored, k)
		switch {
		case !had:
			c.gained = append(c.gained, keyArgs(k)...)
		case old != values[i]:
			c.changed = append(c.changed, keyArgs(k)...)
		default:
			continue
		}
		c.rows = append(c.rows, rowArgs(k, values[i])...)
	}
	for k := range stored {
		c.lost = append(c.lost, keyArgs(k)...)
	}
	return c
}

// stmt binds a prepared statement to the transaction.
func (m merger) stmt(stmt *sql.Stmt) *sql.Stmt { return m.tx.StmtContext(m.ctx, stmt) }

// chunkArgs are the leading (namespace, doc_id, chunk_id) arguments.
func (m merger) chunkArgs(more ...any) []any {
	return append([]any{m.chunk.Namespace, m.chunk.DocID, m.chunk.ChunkID}, more...)
}

// replace swaps the chunk's stored contribution for contrib and returns the
// document's distinct entity and relation counts afterwards. It only writes
// rows that differ from the stored ones: a new chunk only inserts, and a
// redelivered one writes nothing, where deleting and re-inserting its rows
// would rewrite hundreds of pages. A merge that writes anything bumps the
// namespace's generation; a redelivery leaves it alone, so derived data
// (communities) built from the generation stays current.
func (m merger) replace(contrib provenance.Contribution) (docEntities, docRelations int, err error) {
	chunkWritten, err := m.writeChunkRow()
	if err != nil {
		return 0, 0, err
	}
	entities, err := m.entityChanges(contrib.Entities)
	if err != nil {
		return 0, 0, fmt.Errorf("read previous entities: %w", err)
	}
	relations, err := m.relationChanges(contrib.Relations)
	if err != nil {
		return 0, 0, fmt.Errorf("read previous relations: %w", err)
	}

	// Changed rows are deleted and inserted again; updating them in place
	// would take an upsert, whose statement journal costs more than the
	// rare change saves.
	if err := m.exec(m.st.deleteEntities, m.chunkArgs(), append(entities.lost, entities.changed...), entityKeyWidth); err != nil {
		return 0, 0, fmt.Errorf("delete previous entities: %w", err)
	}
	if err := m.exec(m.st.deleteRelations, m.chunkArgs(), append(relations.lost, relations.changed...), relationKeyWidth); err != nil {
		return 0, 0, fmt.Errorf("delete previous relations: %w", err)
	}
	if err := m.exec(m.st.insertEntities, m.chunkArgs(m.chunk.Index), entities.rows, entityRowWidth); err != nil {
		return 0, 0, fmt.Errorf("insert entities: %w", err)
	}
	if err := m.exec(m.st.insertRelations, m.chunkArgs(m.chunk.Index), relations.rows, relationRowWidth); err != nil {
		return 0, 0, fmt.Errorf("insert relations: %w", err)
	}

	if chunkWritten || entities.changes() || relations.changes() {
		if _, err := m.stmt(m.st.bumpGeneration).ExecContext(m.ctx, m.chunk.Namespace); err != nil {
			return 0, 0, fmt.Errorf("bump generation: %w", err)
		}
	}

	// The document's counts only change for keys this chunk gained or lost
	// that no other chunk of the document mentions; checking just those
	// keeps a merge proportional to the chunk, not to the document.
	entityDelta, err := m.docDelta(m.st.entitiesNotElsewhere, entities, entityKeyWidth)
	if err != nil {
		return 0, 0, fmt.Errorf("count document entities: %w", err)
	}
	relationDelta, err := m.docDelta(m.st.relationsNotElsewhere, relations, relationKeyWidth)
	if err != nil {
		return 0, 0, fmt.Errorf("count document relations: %w", err)
	}
	return m.documentCounts(entityDelta, relationDelta)
}

// writeChunkRow stores the chunk's row unless it is stored as it is, and
// reports whether it wrote.
func (m merger) writeChunkRow() (bool, error) {
	var stored storedChunk
	err := m.stmt(m.st.storedChunk).QueryRowContext(m.ctx, m.chunkArgs()...).
		Scan(&stored.jobID, &stored.index, &stored.text, &stored.tokens)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("read previous chunk: %w", err)
	case stored == storedChunk{jobID: m.chunk.JobID, index: m.chunk.Index, text: m.chunk.Text, tokens: m.chunk.Tokens}:
		return false, nil
	}
	if _, err := m.stmt(m.st.upsertChunk).ExecContext(m.ctx,
		m.chunkArgs(m.chunk.JobID, m.chunk.Index, m.chunk.Text, m.chunk.Tokens)...); err != nil {
		return false, fmt.Errorf("write chunk: %w", err)
	}
	return true, nil
}

func (m merger) entityChanges(entities []provenance.EntityMention) (rowChanges, error) {
	rows, err := m.stmt(m.st.storedEntities).QueryContext(m.ctx, m.chunkArgs()...)
	if err != nil {
		return rowChanges{}, err
	}
	stored, err := scanStored(rows, func(key *string, e *storedEntity) []any {
		return []any{key, &e.index, &e.name, &e.typ, &e.description}
	})
	if err != nil {
		return rowChanges{}, err
	}
	keys := make([]string, len(entities))
	values := make([]storedEntity, len(entities))
	for i, e := range entities {
		keys[i] = e.Key
		values[i] = storedEntity{m.chunk.Index, e.Name, e.Type, e.Description}
	}
	return diffRows(stored, keys, values,
		func(key string) []any { return []any{key} },
		func(key string, e storedEntity) []any { return []any{key, e.name, e.typ, e.description} },
	), nil
}

func (m merger) relationChanges(relations []provenance.RelationMention) (rowChanges, error) {
	rows, err := m.stmt(m.st.storedRelations).QueryContext(m.ctx, m.chunkArgs()...)
	if err != nil {
		return rowChanges{}, err
	}
	stored, err := scanStored(rows, func(k *provenance.RelationKey, r *storedRelation) []any {
		return []any{&k.Src, &k.Dst, &r.index, &r.description, &r.keywords, &r.weight}
	})
	if err != nil {
		return rowChanges{}, err
	}
	keys := make([]provenance.RelationKey, len(relations))
	values := make([]storedRelation, len(relations))
	for i, r := range relations {
		keywords, err := encodeKeywords(r.Keywords)
		if err != nil {
			return rowChanges{}, fmt.Errorf("relation %q-%q: %w", r.Src, r.Dst, err)
		}
		keys[i] = provenance.RelationKey{Src: r.Src, Dst: r.Dst}
		values[i] = storedRelation{m.chunk.Index, r.Description, keywords, r.Weight}
	}
	return diffRows(stored, keys, values,
		func(k provenance.RelationKey) []any { return []any{k.Src, k.Dst} },
		func(k provenance.RelationKey, r storedRelation) []any {
			return []any{k.Src, k.Dst, r.description, r.keywords, r.weight}
		},
	), nil
}

// scanStored reads rows of a key and its values, scanned into the
// destinations dest returns; it closes rows.
func scanStored[K comparable, V any](rows *sql.Rows, dest func(*K, *V) []any) (map[K]V, error) {
	defer rows.Close()
	out := make(map[K]V)
	for rows.Next() {
		var (
			k K
			v V
		)
		if err := rows.Scan(dest(&k, &v)...); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// exec runs a multi-row statement over rows.
func (m merger) exec(b batchStatement, shared, rows []any, width int) error {
	return b.run(shared, rows, width, func(stmt *sql.Stmt, args []any) error {
		_, err := m.stmt(stmt).ExecContext(m.ctx, args...)
		return err
	})
}

// docDelta returns how much the document's distinct count of one kind of
// key changes with the chunk's changes (width arguments a key): +1 for each
// gained and -1 for each lost key no other chunk of the document mentions,
// as notElsewhere counts them.
func (m merger) docDelta(notElsewhere batchStatement, c rowChanges, width int) (int, error) {
	count := func(keys []any) (int, error) {
		total := 0
		err := notElsewhere.run(m.chunkArgs(), keys, width, func(stmt *sql.Stmt, args []any) error {
			var n int
			if err := m.stmt(stmt).QueryRowContext(m.ctx, args...).Scan(&n); err != nil {
				return err
			}
			total += n
			return nil
		})
		return total, err
	}
	added, err := count(c.gained)
	if err != nil {
		return 0, err
	}
	removed, err := count(c.lost)
	if err != nil {
		return 0, err
	}
	return added - removed, nil
}

// documentCounts applies the deltas to the document's counts and returns
// them. Unchanged counts are only read, so the document row is not
// rewritten by every merge.
func (m merger) documentCounts(entityDelta, relationDelta int) (docEntities, docRelations int, err error) {
	if entityDelta == 0 && relationDelta == 0 {
		err := m.stmt(m.st.documentCounts).QueryRowContext(m.ctx, m.chunk.Namespace, m.chunk.DocID).
			Scan(&docEntities, &docRelations)
		if err == nil {
			return docEntities, docRelations, nil
		}
		// The document's first chunk creates its row below.
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, fmt.Errorf("read document counts: %w", err)
		}
	}
	err = m.stmt(m.st.addDocumentCounts).QueryRowContext(m.ctx,
		m.chunk.Namespace, m.chunk.DocID, entityDelta, relationDelta).Scan(&docEntities, &docRelations)
	if err != nil {
		return 0, 0, fmt.Errorf("update document counts: %w", err)
	}
	if docEntities < 0 || docRelations < 0 {
		return 0, 0, fmt.Errorf("document %s counts went negative (%d entities, %d relations)",
			m.chunk.DocID, docEntities, docRelations)
	}
	return docEntities, docRelations, nil
}

// DeleteDocument removes the document's chunks and every mention they made;
// entities and relations nothing else mentions disappear with them.
func (s *Store) DeleteDocument(ctx context.Context, namespace, docID string) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("delete document %s: %w", docID, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var removed int64
		for _, stmt := range []*sql.Stmt{s.st.deleteDocEntities, s.st.deleteDocRelations, s.st.deleteDocChunks, s.st.deleteDocument} {
			res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, namespace, docID)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			removed += n
		}
		if removed == 0 {
			return nil
		}
		if _, err := tx.StmtContext(ctx, s.st.bumpGeneration).ExecContext(ctx, namespace); err != nil {
			return fmt.Errorf("bump generation: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete document %s: %w", docID, err)
	}
	return nil
}

func encodeKeywords(keywords []string) (string, error) {
	if keywords == nil {
		keywords = []string{}
	}
	b, err := json.Marshal(keywords)
	if err != nil {
		return "", fmt.Errorf("encode keywords: %w", err)
	}
	return string(b), nil
}

func decodeKeywords(encoded string) ([]string, error) {
	var keywords []string
	if err := json.Unmarshal([]byte(encoded), &keywords); err != nil {
		return nil, fmt.Errorf("decode keywords: %w", err)
	}
	return keywords, nil
}
