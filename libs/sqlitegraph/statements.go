package sqlitegraph

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

const (
	// maxBatchRows is the most rows one multi-row statement takes; at most
	// 5 parameters a row (and 4 shared) stay far below SQLite's limit of
	// 32766 parameters.
	maxBatchRows = 128
	// batchRowsDivisor spaces the prepared row counts: maxBatchRows,
	// maxBatchRows/2, ..., 1, so n rows take one execution per set bit of
	// n (plus one per maxBatchRows).
	batchRowsDivisor = 2
)

// statements are the statements of the write path and the per-key reads,
// prepared once per store:
// database/sql then keeps them prepared per connection and Tx.StmtContext
// reuses them, which saves re-parsing them on every merge.
type statements struct {
	storedChunk           *sql.Stmt
	storedEntities        *sql.Stmt
	storedRelations       *sql.Stmt
	upsertChunk           *sql.Stmt
	documentCounts        *sql.Stmt
	addDocumentCounts     *sql.Stmt
	insertEntities        batchStatement
	insertRelations       batchStatement
	deleteEntities        batchStatement
	deleteRelations       batchStatement
	entitiesNotElsewhere  batchStatement
	relationsNotElsewhere batchStatement
	deleteDocEntities     *sql.Stmt
	deleteDocRelations    *sql.Stmt
	deleteDocChunks       *sql.Stmt
	deleteDocument        *sql.Stmt
	bumpGeneration        *sql.Stmt
	// The reads a query makes once per key: parsing them again for each
	// of a local query's entities cost more than running them.
	entityMentions     *sql.Stmt
	entityMentionCount *sql.Stmt
	neighboursByBucket *sql.Stmt
	relationMentions   *sql.Stmt
	relationWeights    batchStatement
	all                []*sql.Stmt
}

// batchStatement is one statement over a variable number of rows (VALUES
// rows or IN-list items), prepared for a few fixed row counts: n rows take a
// handful of executions of prepared statements instead of one execution per
// row or a fresh parse per merge.
type batchStatement struct {
	rows  []int       // descending, ending with 1
	stmts []*sql.Stmt // stmts[i] takes rows[i] rows
}

// run calls fn for consecutive runs of the rows, each with the statement for
// its row count and its arguments: shared, then the run's rows' arguments
// (width of them a row).
func (b batchStatement) run(shared, rowArgs []any, width int, fn func(stmt *sql.Stmt, args []any) error) error {
	args := make([]any, 0, len(shared)+min(len(rowArgs), b.rows[0]*width))
	for len(rowArgs) > 0 {
		i := 0
		for b.rows[i]*width > len(rowArgs) {
			i++
		}
		n := b.rows[i] * width
		args = append(append(args[:0], shared...), rowArgs[:n]...)
		if err := fn(b.stmts[i], args); err != nil {
			return err
		}
		rowArgs = rowArgs[n:]
	}
	return nil
}

// rowPlaceholders returns rows comma-separated "(prefix?, ?, ...)" groups of
// width anonymous parameters each. Anonymous parameters keep binding linear:
// the driver looks up every parameter's name, and SQLite finds numbered
// parameters' names by a linear scan.
func rowPlaceholders(rows, width int, prefix string) string {
	row := "(" + prefix + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
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
	prepareBatch := func(query func(rows int) string) batchStatement {
		var b batchStatement
		for rows := maxBatchRows; rows >= 1; rows /= batchRowsDivisor {
			b.rows = append(b.rows, rows)
			b.stmts = append(b.stmts, prepare(query(rows)))
		}
		return b
	}

	st.storedChunk = prepare(
		`SELECT job_id, chunk_index, text, tokens FROM chunks
		WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	// Without INDEXED BY, SQLite reads a chunk's rows by scanning the
	// namespace's whole primary-key range instead of using the chunk index.
	st.storedEntities = prepare(
		`SELECT entity_key, chunk_index, name, type, description
		FROM entity_mentions INDEXED BY entity_mentions_by_chunk
		WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.storedRelations = prepare(
		`SELECT src, dst, chunk_index, description, keywords, weight
		FROM relation_mentions INDEXED BY relation_mentions_by_chunk
		WHERE namespace = ? AND doc_id = ? AND chunk_id = ?`)
	st.upsertChunk = prepare(
		`INSERT INTO chunks (namespace, doc_id, chunk_id, job_id, chunk_index, text, tokens)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (namespace, chunk_id, doc_id) DO UPDATE SET
			job_id = excluded.job_id, chunk_index = excluded.chunk_index,
			text = excluded.text, tokens = excluded.tokens`)
	st.documentCounts = prepare(
		`SELECT entities, relations FROM documents WHERE namespace = ? AND doc_id = ?`)
	st.addDocumentCounts = prepare(
		`INSERT INTO documents (namespace, doc_id, entities, relations) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, doc_id) DO UPDATE SET
			entities = entities + excluded.entities,
			relations = relations + excluded.relations
		RETURNING entities, relations`)

	// The multi-row statements take (namespace, doc_id, chunk_id) as ?1-?3,
	// the inserts also chunk_index as ?4, so rows carry only their own
	// values. OR FAIL spares SQLite journaling every page a multi-row
	// insert touches so it could undo the statement alone: a failed merge
	// rolls back its whole transaction anyway.
	st.insertEntities = prepareBatch(func(rows int) string {
		return `INSERT OR FAIL INTO entity_mentions (namespace, doc_id, chunk_id, chunk_index, entity_key, name, type, description)
		VALUES ` + rowPlaceholders(rows, entityRowWidth, "?1, ?2, ?3, ?4, ")
	})
	st.insertRelations = prepareBatch(func(rows int) string {
		return `INSERT OR FAIL INTO relation_mentions (namespace, doc_id, chunk_id, chunk_index, src, dst, description, keywords, weight)
		VALUES ` + rowPlaceholders(rows, relationRowWidth, "?1, ?2, ?3, ?4, ")
	})
	st.deleteEntities = prepareBatch(func(rows int) string {
		return `DELETE FROM entity_mentions
		WHERE namespace = ?1 AND doc_id = ?2 AND chunk_id = ?3
		AND entity_key IN (VALUES ` + rowPlaceholders(rows, 1, "") + `)`
	})
	st.deleteRelations = prepareBatch(func(rows int) string {
		return `DELETE FROM relation_mentions
		WHERE namespace = ?1 AND doc_id = ?2 AND chunk_id = ?3
		AND (src, dst) IN (VALUES ` + rowPlaceholders(rows, 2, "") + `)`
	})
	// These count the keys no other chunk of the document mentions. The
	// one-row table c puts ?1-?3 before the keys' anonymous parameters, which
	// SQLite then numbers from 4 on.
	st.entitiesNotElsewhere = prepareBatch(func(rows int) string {
		return `SELECT COUNT(*) FROM (SELECT ?1 AS namespace, ?2 AS doc_id, ?3 AS chunk_id) AS c,
			(VALUES ` + rowPlaceholders(rows, 1, "") + `) AS k
		WHERE NOT EXISTS (SELECT 1 FROM entity_mentions AS m
			WHERE m.namespace = c.namespace AND m.entity_key = k.column1
			AND m.doc_id = c.doc_id AND m.chunk_id <> c.chunk_id)`
	})
	st.relationsNotElsewhere = prepareBatch(func(rows int) string {
		return `SELECT COUNT(*) FROM (SELECT ?1 AS namespace, ?2 AS doc_id, ?3 AS chunk_id) AS c,
			(VALUES ` + rowPlaceholders(rows, 2, "") + `) AS k
		WHERE NOT EXISTS (SELECT 1 FROM relation_mentions AS m
			WHERE m.namespace = c.namespace AND m.src = k.column1 AND m.dst = k.column2
			AND m.doc_id = c.doc_id AND m.chunk_id <> c.chunk_id)`
	})

	st.deleteDocEntities = prepare(
		`DELETE FROM entity_mentions INDEXED BY entity_mentions_by_chunk WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocRelations = prepare(
		`DELETE FROM relation_mentions INDEXED BY relation_mentions_by_chunk WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocChunks = prepare(
		`DELETE FROM chunks INDEXED BY chunks_by_doc WHERE namespace = ? AND doc_id = ?`)
	st.deleteDocument = prepare(
		`DELETE FROM documents WHERE namespace = ? AND doc_id = ?`)

	st.bumpGeneration = prepare(
		`INSERT INTO namespaces (namespace, generation, communities_generation) VALUES (?, 1, 0)
		ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1`)

	// The primary key's order: one range of the index, cut. The limit is
	// written out: SQLite plans a statement again for every new value
	// bound to a LIMIT parameter, which took twice as long as the read.
	st.entityMentions = prepare(
		`SELECT ` + entityColumns + ` FROM entity_mentions
		WHERE namespace = ? AND entity_key = ? ORDER BY doc_id, chunk_id LIMIT ` + strconv.Itoa(graph.MaxMentionsRead))
	st.entityMentionCount = prepare(
		`SELECT COUNT(*) FROM entity_mentions WHERE namespace = ? AND entity_key = ?`)
	st.neighboursByBucket = prepare(
		`SELECT n.bucket, n.other_key, d.degree
		FROM entity_neighbours n
		JOIN entity_degrees d ON d.namespace = n.namespace AND d.entity_key = n.other_key
		WHERE n.namespace = ? AND n.entity_key = ?
		ORDER BY n.bucket DESC`)
	// dst as a one-value range: with dst = ?, SQLite seeks the dst index
	// and then the table for each mention, and with (src, dst) IN (VALUES
	// ...) it scans the namespace; the range makes it read the relation's
	// primary-key rows alone.
	st.relationMentions = prepare(
		`SELECT ` + relationColumns + ` FROM relation_mentions
		WHERE namespace = ?1 AND src = ?2 AND dst >= ?3 AND dst <= ?3`)
	st.relationWeights = prepareBatch(func(rows int) string {
		return `SELECT k.column1, k.column2,
			(SELECT SUM(m.weight) FROM relation_mentions m WHERE m.namespace = ?1
				AND m.src = k.column1 AND m.dst >= k.column2 AND m.dst <= k.column2)
		FROM (VALUES ` + rowPlaceholders(rows, 2, "") + `) AS k`
	})

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
