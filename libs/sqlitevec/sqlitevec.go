// Package sqlitevec is an embedded vector store persisted in one SQLite file.
//
// Vectors are stored L2-normalised as little-endian float32 blobs, so the
// cosine similarity of a row is one dot product with the normalised query.
// A search scans rows and keeps the best TopK in a bounded min-heap: every
// row of (namespace, kind[, doc]) for an exact search and for small
// partitions, and only the rows of the nearest clusters of an inverted-file
// index for large ones (see ivf.go), read as one-byte-a-dimension codes,
// a cluster's in one row (see packed.go), and the best few rescored
// exactly (see codes.go), so a search's work
// grows with the square root of the partition rather than with its size.
//
// The file may be shared by several processes on one machine (the vector
// indexer writes while the query service reads): the database runs in WAL
// mode, so readers never block the writer, every connection waits on a busy
// lock instead of failing, and write transactions begin IMMEDIATE so two
// writers queue on the lock rather than deadlocking on a read-to-write
// upgrade.
package sqlitevec

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/kgraph-dev/kgraph/libs/vector"
)

// busyTimeoutMillis bounds how long a connection waits for another process's
// lock before reporting SQLITE_BUSY.
const busyTimeoutMillis = 10000

// journalSizeLimitBytes truncates the WAL back to this size whenever a
// checkpoint has copied all of it into the database, so the file does not
// keep the size of its largest moment.
const journalSizeLimitBytes = 64 << 20

// cacheKiB is each connection's page cache, and maxOpenConns bounds the
// connections, so the store's cache memory is at most their product (32
// MiB). A search used to read its probed clusters' rows by rowid,
// scattered over the file (it reads their codes from one index now): with
// SQLite's default 2 MiB cache every page of them was a pread, a fifth of
// a local query's time at 5,000 documents. 16 MiB a
// connection (for both stores) was slower than 8 at 10,000 documents, not
// faster (local p95 170 against 137 ms in alternating runs: the probed
// rows are 180 MB, which no cache of this size holds, and the operating
// system's page cache serves them) and held 64 MiB more.
const (
	cacheKiB     = 8 << 10
	maxOpenConns = 4
)

const schema = `
CREATE TABLE IF NOT EXISTS vectors (
	namespace TEXT NOT NULL,
	kind      TEXT NOT NULL,
	id        TEXT NOT NULL,
	doc_id    TEXT NOT NULL,
	dim       INTEGER NOT NULL,
	vector    BLOB NOT NULL,
	cluster   INTEGER NOT NULL DEFAULT -1,
	code      BLOB,
	PRIMARY KEY (namespace, kind, id)
);
CREATE INDEX IF NOT EXISTS vectors_namespace_doc ON vectors (namespace, doc_id);
`

// indexSchema is the inverted-file index: a cluster per row, its rows'
// codes by cluster (see codes.go), the clusters' centroids, and each partition's size (kept by triggers, as rows come and
// go) with the size its clusters were trained at.
const indexSchema = `
CREATE INDEX IF NOT EXISTS vectors_cluster_code ON vectors (namespace, kind, cluster, id, code);
CREATE TABLE IF NOT EXISTS centroids (
	namespace TEXT NOT NULL,
	kind      TEXT NOT NULL,
	cluster   INTEGER NOT NULL,
	vector    BLOB NOT NULL,
	PRIMARY KEY (namespace, kind, cluster)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (
	namespace    TEXT NOT NULL,
	kind         TEXT NOT NULL,
	rows         INTEGER NOT NULL,
	trained_rows INTEGER NOT NULL DEFAULT 0,
	version      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (namespace, kind)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS vector_inserted AFTER INSERT ON vectors BEGIN
	INSERT INTO partitions (namespace, kind, rows) VALUES (NEW.namespace, NEW.kind, 1)
	ON CONFLICT (namespace, kind) DO UPDATE SET rows = rows + 1;
END;
CREATE TRIGGER IF NOT EXISTS vector_deleted AFTER DELETE ON vectors BEGIN
	UPDATE partitions SET rows = rows - 1 WHERE namespace = OLD.namespace AND kind = OLD.kind;
END;
`

// Store is a vector store over one SQLite file. It is safe for concurrent use
// by goroutines and by other processes opening the same file.
type Store struct {
	db        *sql.DB
	opts      Options
	centroids centroidCache
}

// Open opens (creating if needed) the vector store at path, with the
// index's default options.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith opens (creating if needed) the vector store at path.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open vector store: invalid path %q", path)
	}
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate&_pragma=journal_size_limit(%d)&_pragma=cache_size(%d)",
		path, busyTimeoutMillis, journalSizeLimitBytes, -cacheKiB)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open vector store %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	s := &Store{db: db, opts: opts.withDefaults()}
	if err := s.withTx(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("create vector schema in %s: %w", path, err)
	}
	return s, nil
}

// Close closes the underlying database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close vector store: %w", err)
	}
	return nil
}

// migrate creates the schema, and adds the index to a file written before
// it existed.
func migrate(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	var hasCluster bool
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM pragma_table_info('vectors') WHERE name = 'cluster'`).Scan(&hasCluster); err != nil {
		return err
	}
	if !hasCluster {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE vectors ADD COLUMN cluster INTEGER NOT NULL DEFAULT -1`); err != nil {
			return err
		}
	}
	if err := migrateCodes(ctx, tx); err != nil {
		return fmt.Errorf("code the vectors: %w", err)
	}
	var hasPartitions bool
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'partitions'`).Scan(&hasPartitions); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, indexSchema); err != nil {
		return err
	}
	if !hasPartitions {
		// Rows written before the index was kept are counted once; the
		// next write to a partition big enough trains its clusters.
		if _, err := tx.ExecContext(ctx, `INSERT INTO partitions (namespace, kind, rows)
			SELECT namespace, kind, COUNT(*) FROM vectors GROUP BY namespace, kind`); err != nil {
			return err
		}
	}
	if err := migratePacked(ctx, tx); err != nil {
		return fmt.Errorf("pack the clusters: %w", err)
	}
	return nil
}

type partition struct{ namespace, kind string }

// Upsert inserts or replaces items, atomically: if any item is invalid
// nothing is written. All vectors of one (namespace, kind) must share a
// dimension; to change it, delete the old vectors first.
func (s *Store) Upsert(ctx context.Context, items []vector.Item) error {
	if len(items) == 0 {
		return nil
	}
	units := make([][]float32, len(items))
	dims := map[partition]int{}
	for i, it := range items {
		if it.Namespace == "" || it.Kind == "" || it.ID == "" {
			return fmt.Errorf("upsert vector %q: namespace, kind and id are required (namespace %q, kind %q)", it.ID, it.Namespace, it.Kind)
		}
		unit, err := vector.Unit(it.Vector)
		if err != nil {
			return fmt.Errorf("upsert vector %s/%s/%s: %w", it.Namespace, it.Kind, it.ID, err)
		}
		p := partition{it.Namespace, it.Kind}
		if d, ok := dims[p]; ok && d != len(unit) {
			return fmt.Errorf("upsert vector %s/%s/%s: dimension %d, batch has %d", it.Namespace, it.Kind, it.ID, len(unit), d)
		}
		dims[p] = len(unit)
		units[i] = unit
	}

	return s.withTx(ctx, func(tx *sql.Tx) error {
		for p, dim := range dims {
			var stored int
			err := tx.QueryRowContext(ctx,
				`SELECT dim FROM vectors WHERE namespace = ? AND kind = ? LIMIT 1`, p.namespace, p.kind).Scan(&stored)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("read dimension of %s/%s: %w", p.namespace, p.kind, err)
			case stored != dim:
				return fmt.Errorf("upsert into %s/%s: dimension %d, stored vectors have %d", p.namespace, p.kind, dim, stored)
			}
		}
		cents := map[partition]*centroids{}
		for p, dim := range dims {
			c, err := s.centroids.load(ctx, tx, p)
			if err != nil {
				return fmt.Errorf("upsert into %s/%s: %w", p.namespace, p.kind, err)
			}
			if c != nil && len(c.vectors[0]) != dim {
				// The partition was emptied and takes another dimension
				// now: its clusters are of no use.
				if err := s.dropClusters(ctx, tx, p); err != nil {
					return fmt.Errorf("upsert into %s/%s: %w", p.namespace, p.kind, err)
				}
				c = nil
			}
			cents[p] = c
		}
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO vectors (namespace, kind, id, doc_id, dim, vector, cluster, code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (namespace, kind, id) DO UPDATE SET
				doc_id = excluded.doc_id, dim = excluded.dim, vector = excluded.vector, cluster = excluded.cluster, code = excluded.code
			WHERE vectors.vector != excluded.vector OR vectors.doc_id != excluded.doc_id
				OR vectors.cluster != excluded.cluster OR vectors.code IS NOT excluded.code`)
		if err != nil {
			return fmt.Errorf("prepare vector upsert: %w", err)
		}
		defer stmt.Close()
		// A row written again unchanged is left alone (the WHERE above): the
		// vector indexer writes every entity of every chunk, and most of
		// them are already there, with the vector of their name.
		for i, it := range items {
			cluster := unassigned
			if c := cents[partition{it.Namespace, it.Kind}]; c != nil {
				cluster = c.nearest(units[i])
			}
			if _, err := stmt.ExecContext(ctx, it.Namespace, it.Kind, it.ID, it.DocID, len(it.Vector), encode(units[i]), cluster, quantise(units[i])); err != nil {
				return fmt.Errorf("upsert vector %s/%s/%s: %w", it.Namespace, it.Kind, it.ID, err)
			}
		}
		for p := range dims {
			if err := s.maybeRetrain(ctx, tx, p); err != nil {
				return fmt.Errorf("index %s/%s: %w", p.namespace, p.kind, err)
			}
			if err := maybeRepack(ctx, tx, p); err != nil {
				return fmt.Errorf("pack %s/%s: %w", p.namespace, p.kind, err)
			}
		}
		return nil
	})
}

// dropClusters removes a partition's clusters: its rows are scanned again
// until it has grown enough to train new ones.
func (s *Store) dropClusters(ctx context.Context, tx *sql.Tx, p partition) error {
	for _, stmt := range []string{
		`DELETE FROM centroids WHERE namespace = ? AND kind = ?`,
		`UPDATE vectors SET cluster = -1 WHERE namespace = ? AND kind = ?`,
		`UPDATE partitions SET trained_rows = 0, version = version + 1 WHERE namespace = ? AND kind = ?`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, p.namespace, p.kind); err != nil {
			return fmt.Errorf("drop clusters: %w", err)
		}
	}
	return dropPacked(ctx, tx, p)
}

// Search returns the q.TopK items most similar to q.Vector, best first; ties
// are broken by ID so results are deterministic.
func (s *Store) Search(ctx context.Context, q vector.Query) ([]vector.Hit, error) {
	if q.TopK < 1 {
		return nil, fmt.Errorf("search %s/%s: TopK %d, want at least 1", q.Namespace, q.Kind, q.TopK)
	}
	unit, err := vector.Unit(q.Vector)
	if err != nil {
		return nil, fmt.Errorf("search %s/%s: query %w", q.Namespace, q.Kind, err)
	}
	// One read transaction, so the partition's size, its centroids and its
	// rows are of one state of the file.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var (
		clusters []int
		packed   bool
	)
	if !q.Exact && q.DocID == "" {
		if clusters, packed, err = s.probe(ctx, tx, partition{q.Namespace, q.Kind}, unit); err != nil {
			return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
		}
	}
	var best []ranked[hitRow]
	if clusters != nil {
		best, err = s.searchClusters(ctx, tx, q, unit, clusters, packed)
	} else {
		best, err = scanAll(ctx, tx, q, unit)
	}
	if err != nil {
		return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
	}
	hits := make([]vector.Hit, len(best))
	for i, b := range best {
		hits[i] = vector.Hit{ID: b.id, DocID: b.item.docID, Score: b.score}
	}
	return hits, nil
}

// hitRow is what a search keeps of a row besides its score and id.
type hitRow struct{ docID string }

// scanAll scores every row of the partition (of one document, if q names
// one) with its exact vector.
func scanAll(ctx context.Context, tx *sql.Tx, q vector.Query, unit []float32) ([]ranked[hitRow], error) {
	query := `SELECT id, doc_id, vector FROM vectors WHERE namespace = ? AND kind = ?`
	args := []any{q.Namespace, q.Kind}
	if q.DocID != "" {
		query += ` AND doc_id = ?`
		args = append(args, q.DocID)
	}
	return exactBest(ctx, tx, unit, q.TopK, query, args...)
}

// exactBest runs query, which selects (id, doc_id, vector) rows, and
// returns the topK rows whose exact vectors score best, best first.
func exactBest(ctx context.Context, tx *sql.Tx, unit []float32, topK int, query string, args ...any) ([]ranked[hitRow], error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	best := newTopK[hitRow](topK)
	var id, docID, blob sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&id, &docID, &blob); err != nil {
			return nil, fmt.Errorf("scan row: %w", err)
		}
		if len(blob) != 4*len(unit) {
			return nil, fmt.Errorf("query dimension %d, stored vectors have %d", len(unit), len(blob)/4)
		}
		best.offer(dot(unit, blob), id, func() hitRow { return hitRow{docID: string(docID)} })
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return best.sorted(), nil
}

// placeholders is n comma-separated "?".
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// searchClusters ranks the rows of the probed clusters by their codes, read
// packed (see packed.go) or, for a partition whose packing is out of date,
// from the covering index, and rescores the best few times TopK of them
// with their exact vectors (see codes.go).
func (s *Store) searchClusters(ctx context.Context, tx *sql.Tx, q vector.Query, unit []float32, clusters []int, packed bool) ([]ranked[hitRow], error) {
	p := partition{q.Namespace, q.Kind}
	cands := newTopK[struct{}](q.TopK * s.opts.Rescore)
	var (
		uncoded []string
		err     error
	)
	if packed {
		uncoded, err = searchPacked(ctx, tx, p, unit, clusters, cands)
	} else {
		uncoded, err = searchIndex(ctx, tx, p, unit, clusters, cands)
	}
	if err != nil {
		return nil, err
	}
	ids := uncoded
	for _, c := range cands.sorted() {
		ids = append(ids, c.id)
	}
	return rescore(ctx, tx, p, unit, ids, q.TopK)
}

// searchIndex offers cands the rows of the clusters, one row of the
// covering index at a time, and returns the ids of rows without a code (to
// be scored exactly).
func searchIndex(ctx context.Context, tx *sql.Tx, p partition, unit []float32, clusters []int, cands *topK[struct{}]) (uncoded []string, err error) {
	// Rows written without a cluster (none once trained, but harmless)
	// are scanned too.
	query := `SELECT id, code FROM vectors INDEXED BY vectors_cluster_code
		WHERE namespace = ? AND kind = ? AND cluster IN (-1, ` + placeholders(len(clusters)) + `)`
	args := []any{p.namespace, p.kind}
	for _, c := range clusters {
		args = append(args, c)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return offerCodes(rows, unit, cands, nil)
}

// offerCodes offers cands the rows, which select (id, code), calls seen
// (when not nil) with each id, and returns the ids of rows without a code:
// written into the file by an earlier version after it was opened by this
// one, they are scored exactly. It closes rows.
func offerCodes(rows *sql.Rows, unit []float32, cands *topK[struct{}], seen func(id string)) (uncoded []string, err error) {
	defer rows.Close()
	var id, code sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&id, &code); err != nil {
			return nil, fmt.Errorf("scan code: %w", err)
		}
		if seen != nil {
			seen(string(id))
		}
		if code == nil {
			uncoded = append(uncoded, string(id))
			continue
		}
		if len(code) != codeBytes(len(unit)) {
			return nil, fmt.Errorf("query dimension %d, stored vectors have %d", len(unit), len(code)-4)
		}
		cands.offer(dotCode(unit, code), id, none)
	}
	return uncoded, rows.Close()
}

// probe returns the clusters a search of the partition scans, or nil when it
// scans every row: a partition too small for the index or not trained yet,
// or a query of another dimension (which the scan then reports); and
// whether the clusters are packed for the partition's current training.
func (s *Store) probe(ctx context.Context, tx *sql.Tx, p partition, unit []float32) (clusters []int, packed bool, err error) {
	var rows int
	err = tx.QueryRowContext(ctx, `SELECT p.rows, k.version IS p.version FROM partitions p
		LEFT JOIN packed_partitions k ON k.namespace = p.namespace AND k.kind = p.kind
		WHERE p.namespace = ? AND p.kind = ?`, p.namespace, p.kind).Scan(&rows, &packed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && rows < s.opts.MinIndexedRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read partition size: %w", err)
	}
	c, err := s.centroids.load(ctx, tx, p)
	if err != nil || c == nil || len(c.vectors[0]) != len(unit) {
		return nil, false, err
	}
	return c.probes(unit, s.opts.Probes), packed, nil
}

// DeleteDocument removes every item of docID in namespace, whatever its kind.
func (s *Store) DeleteDocument(ctx context.Context, namespace, docID string) error {
	if namespace == "" || docID == "" {
		return fmt.Errorf("delete document %q in namespace %q: namespace and document id are required", docID, namespace)
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		kinds, err := documentKinds(ctx, tx, namespace, docID)
		if err != nil {
			return fmt.Errorf("delete vectors of document %s in %s: %w", docID, namespace, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM vectors WHERE namespace = ? AND doc_id = ?`, namespace, docID); err != nil {
			return fmt.Errorf("delete vectors of document %s in %s: %w", docID, namespace, err)
		}
		for _, kind := range kinds {
			if err := maybeRepack(ctx, tx, partition{namespace, kind}); err != nil {
				return fmt.Errorf("pack %s/%s: %w", namespace, kind, err)
			}
		}
		return nil
	})
}

// documentKinds returns the kinds of the document's vectors.
func documentKinds(ctx context.Context, tx *sql.Tx, namespace, docID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT kind FROM vectors WHERE namespace = ? AND doc_id = ?`, namespace, docID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var kinds []string
	for rows.Next() {
		var kind string
		if err := rows.Scan(&kind); err != nil {
			return nil, err
		}
		kinds = append(kinds, kind)
	}
	return kinds, rows.Err()
}

// Count returns how many items (namespace, kind) holds.
func (s *Store) Count(ctx context.Context, namespace, kind string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM vectors WHERE namespace = ? AND kind = ?`, namespace, kind).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count vectors of %s/%s: %w", namespace, kind, err)
	}
	return n, nil
}

func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("roll back transaction: %w", err)
	}
	return nil
}

func encode(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decode(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// dot multiplies q with a vector still in its encoded form, sparing a
// decode allocation per row. len(b) must be 4*len(q).
func dot(q []float32, b []byte) float32 {
	var sum float32
	for i, x := range q {
		sum += x * math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return sum
}

// Store is a vector.Store.
var _ vector.Store = (*Store)(nil)
