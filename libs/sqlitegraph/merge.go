package sqlitegraph

import (
	"context"
	"database/sql"
	"encoding/json"
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
	contrib := contributionOf(chunk)
	result := graph.MergeResult{Entities: len(contrib.entities), Relations: len(contrib.relations)}
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

// stmt binds a prepared statement to the transaction.
func (m merger) stmt(stmt *sql.Stmt) *sql.Stmt { return m.tx.StmtContext(m.ctx, stmt) }

// chunkArgs are the leading (namespace, doc_id, chunk_id) arguments.
func (m merger) chunkArgs(more ...any) []any {
	return append([]any{m.chunk.Namespace, m.chunk.DocID, m.chunk.ChunkID}, more...)
}

// replace swaps the chunk's stored contribution for contrib and returns the
// document's distinct entity and relation counts afterwards.
func (m merger) replace(contrib contribution) (docEntities, docRelations int, err error) {
	oldEntities, err := m.previousEntities()
	if err != nil {
		return 0, 0, fmt.Errorf("read previous entities: %w", err)
	}
	rows, err := m.stmt(m.st.chunkRelationKeys).QueryContext(m.ctx, m.chunkArgs()...)
	if err != nil {
		return 0, 0, fmt.Errorf("read previous relations: %w", err)
	}
	oldRelations, err := scanRelationKeys(rows)
	if err != nil {
		return 0, 0, fmt.Errorf("read previous relations: %w", err)
	}
	for _, stmt := range []*sql.Stmt{m.st.deleteChunkEntities, m.st.deleteChunkRelations, m.st.deleteChunk} {
		if _, err := m.stmt(stmt).ExecContext(m.ctx, m.chunkArgs()...); err != nil {
			return 0, 0, fmt.Errorf("delete previous contribution: %w", err)
		}
	}

	if _, err := m.stmt(m.st.insertChunk).ExecContext(m.ctx,
		m.chunkArgs(m.chunk.JobID, m.chunk.Index, m.chunk.Text, m.chunk.Tokens)...); err != nil {
		return 0, 0, fmt.Errorf("insert chunk: %w", err)
	}
	newEntities := make([]string, len(contrib.entities))
	insertEntity := m.stmt(m.st.insertEntity)
	for i, e := range contrib.entities {
		newEntities[i] = e.key
		if _, err := insertEntity.ExecContext(m.ctx, m.chunkArgs(m.chunk.Index, e.key, e.name, e.typ, e.description)...); err != nil {
			return 0, 0, fmt.Errorf("insert entity %q: %w", e.key, err)
		}
	}
	newRelations := make([]relationKey, len(contrib.relations))
	insertRelation := m.stmt(m.st.insertRelation)
	for i, r := range contrib.relations {
		newRelations[i] = relationKey{r.src, r.dst}
		keywords, err := encodeKeywords(r.keywords)
		if err != nil {
			return 0, 0, fmt.Errorf("relation %q-%q: %w", r.src, r.dst, err)
		}
		if _, err := insertRelation.ExecContext(m.ctx,
			m.chunkArgs(m.chunk.Index, r.src, r.dst, r.description, keywords, r.weight)...); err != nil {
			return 0, 0, fmt.Errorf("insert relation %q-%q: %w", r.src, r.dst, err)
		}
	}

	// The document's counts only change for keys this chunk gained or lost
	// that no other chunk of the document mentions; checking just those
	// keeps a merge proportional to the chunk, not to the document.
	entityDelta, err := docDelta(m, oldEntities, newEntities, m.st.entityElsewhere,
		func(key string) []any { return m.chunkArgs(key) })
	if err != nil {
		return 0, 0, fmt.Errorf("count document entities: %w", err)
	}
	relationDelta, err := docDelta(m, oldRelations, newRelations, m.st.relationElsewhere,
		func(key relationKey) []any { return m.chunkArgs(key.src, key.dst) })
	if err != nil {
		return 0, 0, fmt.Errorf("count document relations: %w", err)
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

func (m merger) previousEntities() ([]string, error) {
	rows, err := m.stmt(m.st.chunkEntityKeys).QueryContext(m.ctx, m.chunkArgs()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, rows.Err()
}

// docDelta returns how much the document's distinct count of K changes when
// the chunk's keys go from before to after: +1 for each gained key and -1
// for each lost key that no other chunk of the document mentions (the
// elsewhere statement, given elsewhereArgs(key), answers that).
func docDelta[K comparable](m merger, before, after []K, elsewhere *sql.Stmt, elsewhereArgs func(K) []any) (int, error) {
	inBefore := make(map[K]bool, len(before))
	for _, k := range before {
		inBefore[k] = true
	}
	inAfter := make(map[K]bool, len(after))
	for _, k := range after {
		inAfter[k] = true
	}
	var changed []K
	for _, k := range before {
		if !inAfter[k] {
			changed = append(changed, k)
		}
	}
	for _, k := range after {
		if !inBefore[k] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return 0, nil
	}
	stmt := m.stmt(elsewhere)
	delta := 0
	for _, k := range changed {
		var mentioned bool
		if err := stmt.QueryRowContext(m.ctx, elsewhereArgs(k)...).Scan(&mentioned); err != nil {
			return 0, err
		}
		switch {
		case mentioned:
		case inAfter[k]:
			delta++
		default:
			delta--
		}
	}
	return delta, nil
}

// DeleteDocument removes the document's chunks and every mention they made;
// entities and relations nothing else mentions disappear with them.
func (s *Store) DeleteDocument(ctx context.Context, namespace, docID string) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("delete document %s: %w", docID, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, stmt := range []*sql.Stmt{s.st.deleteDocEntities, s.st.deleteDocRelations, s.st.deleteDocChunks, s.st.deleteDocument} {
			if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, namespace, docID); err != nil {
				return err
			}
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
