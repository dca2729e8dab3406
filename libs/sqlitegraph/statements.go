package sqlitegraph

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are the fixed-text statements of the write path, prepared
// once per store: database/sql then keeps them prepared per connection and
// Tx.StmtContext reuses them, which saves re-parsing about ten statements
// per merge.
type statements struct {
	chunkEntityKeys      *sql.Stmt
	chunkRelationKeys    *sql.Stmt
	deleteChunkEntities  *sql.Stmt
	deleteChunkRelations *sql.Stmt
	deleteChunk          *sql.Stmt
	insertChunk          *sql.Stmt
	insertEntity         *sql.Stmt
	insertRelation       *sql.Stmt
	entityElsewhere      *sql.Stmt
	relationElsewhere    *sql.Stmt
	addDocumentCounts    *sql.Stmt
	deleteDocEntities    *sql.Stmt
	deleteDocRelations   *sql.Stmt
	deleteDocChunks      *sql.Stmt
	deleteDocument       *sql.Stmt
	all                  []*sql.Stmt
}

func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{}
	var errs []error
	prepare := func(query string) *sql.Stmt {
		stmt, err := db.PrepareContext(ctx, query)
		if err != nil {
			errs = append(errs, fmt.Errorf("prepare %q: %w", query, err))
			return nil
		}
		st.all = append(st.all, stmt)
		return stmt
	}

	st.chunkEntityKeys = prepare(
		`SELECT entity_key FROM entity_mentions WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.chunkRelationKeys = prepare(
		`SELECT src, dst FROM relation_mentions WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	// Without INDEXED BY, SQLite deletes by scanning the namespace's whole
	// primary-key range instead of using the chunk index.
	st.deleteChunkEntities = prepare(
		`DELETE FROM entity_mentions INDEXED BY entity_mentions_by_chunk
		WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.deleteChunkRelations = prepare(
		`DELETE FROM relation_mentions INDEXED BY relation_mentions_by_chunk
		WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.deleteChunk = prepare(
		`DELETE FROM chunks WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.insertChunk = prepare(
		`INSERT INTO chunks (namespace, doc_id, chunk_id, job_id, chunk_index, text, tokens)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	st.insertEntity = prepare(
		`INSERT INTO entity_mentions (namespace, doc_id, chunk_id, chunk_index, entity_key, name, type, description)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	st.insertRelation = prepare(
		`INSERT INTO relation_mentions (namespace, doc_id, chunk_id, chunk_index, src, dst, description, keywords, weight)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	st.entityElsewhere = prepare(
		`SELECT EXISTS (SELECT 1 FROM entity_mentions
		WHERE namespace = ? AND doc_id = ? AND chunk_id <> ? AND entity_key = ?)`)
	st.relationElsewhere = prepare(
		`SELECT EXISTS (SELECT 1 FROM relation_mentions
		WHERE namespace = ? AND doc_id = ? AND chunk_id <> ? AND src = ? AND dst = ?)`)
	st.addDocumentCounts = prepare(
		`INSERT INTO documents (namespace, doc_id, entities, relations) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, doc_id) DO UPDATE SET
			entities = entities + excluded.entities,
			relations = relations + excluded.relations
		RETURNING entities, relations`)
	st.deleteDocEntities = prepare(
		`DELETE FROM entity_mentions INDEXED BY entity_mentions_by_chunk WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocRelations = prepare(
		`DELETE FROM relation_mentions INDEXED BY relation_mentions_by_chunk WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocChunks = prepare(
		`DELETE FROM chunks INDEXED BY chunks_by_doc WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocument = prepare(
		`DELETE FROM documents WHERE namespace = ? AND doc_id = ?`)

	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, st.close())
	}
	return st, nil
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range st.all {
		errs = append(errs, stmt.Close())
	}
	return errors.Join(errs...)
}
