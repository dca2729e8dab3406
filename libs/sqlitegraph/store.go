// Package sqlitegraph is the embedded knowledge-graph store: an SQLite file
// holding every chunk's contribution (per-chunk provenance), aggregated into
// entities and relations at read time.
//
// Several processes on one machine may open the same file at once (the graph
// writer writes while the query service reads): the database runs in WAL
// mode, so readers never block the writer, and write transactions take the
// write lock up front (BEGIN IMMEDIATE), so concurrent writers queue on the
// busy timeout instead of failing half-way through a transaction.
package sqlitegraph

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

const (
	// schemaVersion is stored in PRAGMA user_version; a file written by a
	// newer schema is refused rather than misread.
	schemaVersion = 8
	// busyTimeoutMillis bounds how long a statement waits for another
	// process's lock before failing with SQLITE_BUSY.
	busyTimeoutMillis = 10000
	// maxOpenConns is small: writes are serialised anyway, the pool only
	// lets reads run next to a write.
	maxOpenConns = 4
	// maxKeysPerQuery keeps IN lists well below SQLite's variable limit.
	maxKeysPerQuery = 500
	// cacheKiB is each connection's page cache. SQLite's default of 2 MiB
	// is smaller than what one merge of a large chunk dirties (about 500
	// pages for 60 entities and 150 relations), and a full cache spills
	// dirty pages to the WAL in the middle of the transaction. 8 MiB is
	// four times that; with maxOpenConns the store holds at most 32 MiB of
	// cache, which counts against kg serve's 400 MiB.
	cacheKiB = 8 << 10
	// walAutocheckpointPages lets the WAL grow to 64 MiB before a commit
	// copies it back into the database (SQLite's default is 1000 pages):
	// merges rewrite the same pages over and over, and a checkpoint writes
	// each page once however often it changed, so rarer checkpoints write
	// (and fsync) less.
	walAutocheckpointPages = 16384
	// journalSizeLimitBytes truncates the WAL back to this size whenever a
	// checkpoint has copied all of it into the database. Without a limit
	// the file keeps the size of its largest moment: one stretch during
	// which readers held old snapshots made it 605 MB, next to a 556 MB
	// database, and it stayed that big.
	journalSizeLimitBytes = walAutocheckpointPages * 4096
)

// Degree buckets: degrees below 2^bucketShift share bucket 0, and bucket
// b > 0 holds the degrees in [2^(b+bucketShift-1), 2^(b+bucketShift)).
// Most entities never leave bucket 0, so their neighbours' rows never move;
// a hub's weakly connected neighbours all sit in bucket 0, which a local
// query of the hub rarely reaches. maxDegreeBucket is the highest bucket
// told apart.
const (
	bucketShift     = 6
	maxDegreeBucket = 26
)

// maxDegreeIn is the highest degree bucket b holds.
func maxDegreeIn(bucket int) int { return 1<<(bucket+bucketShift) - 1 }

// degreeBucket is the SQL expression of the bucket of the degree in
// column. A binary search of CASEs, five comparisons: the triggers evaluate
// it for every relation written, and SQLite's log2 is a compile-time option.
func degreeBucket(column string) string {
	var search func(lo, hi int) string // the bucket in [lo, hi)
	search = func(lo, hi int) string {
		if hi-lo == 1 {
			return strconv.Itoa(lo)
		}
		mid := (lo + hi) / 2
		return fmt.Sprintf("CASE WHEN %s < %d THEN %s ELSE %s END", column, maxDegreeIn(mid-1)+1, search(lo, mid), search(mid, hi))
	}
	return "(" + search(0, maxDegreeBucket+1) + ")"
}

// schemaStatements create the schema; each is idempotent.
func schemaStatements() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS documents (
		namespace TEXT NOT NULL,
		doc_id    TEXT NOT NULL,
		entities  INTEGER NOT NULL,
		relations INTEGER NOT NULL,
		PRIMARY KEY (namespace, doc_id)
	) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS chunks (
		namespace   TEXT NOT NULL,
		chunk_id    TEXT NOT NULL,
		doc_id      TEXT NOT NULL,
		job_id      TEXT NOT NULL,
		chunk_index INTEGER NOT NULL,
		text        TEXT NOT NULL,
		tokens      INTEGER NOT NULL,
		PRIMARY KEY (namespace, chunk_id, doc_id)
	) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (namespace, doc_id)`,
		// The primary key also serves lookups by (namespace, entity_key).
		`CREATE TABLE IF NOT EXISTS entity_mentions (
		namespace   TEXT NOT NULL,
		entity_key  TEXT NOT NULL,
		doc_id      TEXT NOT NULL,
		chunk_id    TEXT NOT NULL,
		chunk_index INTEGER NOT NULL,
		name        TEXT NOT NULL,
		type        TEXT NOT NULL,
		description TEXT NOT NULL,
		PRIMARY KEY (namespace, entity_key, doc_id, chunk_id)
	) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS entity_mentions_by_chunk ON entity_mentions (namespace, doc_id, chunk_id)`,
		// The primary key also serves lookups by (namespace, src).
		`CREATE TABLE IF NOT EXISTS relation_mentions (
		namespace   TEXT NOT NULL,
		src         TEXT NOT NULL,
		dst         TEXT NOT NULL,
		doc_id      TEXT NOT NULL,
		chunk_id    TEXT NOT NULL,
		chunk_index INTEGER NOT NULL,
		description TEXT NOT NULL,
		keywords    TEXT NOT NULL,
		weight      REAL NOT NULL,
		PRIMARY KEY (namespace, src, dst, doc_id, chunk_id),
		CHECK (src < dst)
	) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS relation_mentions_by_dst ON relation_mentions (namespace, dst)`,
		`CREATE INDEX IF NOT EXISTS relation_mentions_by_chunk ON relation_mentions (namespace, doc_id, chunk_id)`,
		// Schema version 2: generations, communities and summaries. A
		// version 1 file gets these tables on open; its rows stay as they are.
		`CREATE TABLE IF NOT EXISTS namespaces (
		namespace              TEXT NOT NULL PRIMARY KEY,
		generation             INTEGER NOT NULL,
		communities_generation INTEGER NOT NULL,
		communities_built_at   INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID`,
		communitiesTable("communities"),
		`CREATE TABLE IF NOT EXISTS entity_summaries (
		namespace   TEXT NOT NULL,
		entity_key  TEXT NOT NULL,
		source_hash TEXT NOT NULL,
		text        TEXT NOT NULL,
		PRIMARY KEY (namespace, entity_key)
	) WITHOUT ROWID`,
		// Schema version 3: degrees kept, not counted at read time. An
		// entity's degree is the number of distinct relations touching it;
		// the triggers keep it as mention rows come and go (merges only
		// insert and delete them), so every writer of the file keeps it,
		// in the transaction that changed the mentions.
		`CREATE TABLE IF NOT EXISTS entity_degrees (
		namespace  TEXT NOT NULL,
		entity_key TEXT NOT NULL,
		degree     INTEGER NOT NULL,
		PRIMARY KEY (namespace, entity_key)
	) WITHOUT ROWID`,
		// Schema version 5: each entity's neighbours, ordered by the
		// magnitude of their degree (its bucket, see degreeBucket), so
		// that a local query ranks a hub's relations by reading the few
		// buckets its best neighbours are in rather than all of them. A
		// neighbour's rows move to another bucket only when its degree
		// crosses a power of two, at most twice its final degree row moves
		// in all: a constant cost per relation. The triggers below keep
		// degrees and neighbours together, in the transaction that changed
		// the mentions.
		`CREATE TABLE IF NOT EXISTS entity_neighbours (
		namespace  TEXT NOT NULL,
		entity_key TEXT NOT NULL,
		bucket     INTEGER NOT NULL,
		other_key  TEXT NOT NULL,
		PRIMARY KEY (namespace, entity_key, bucket, other_key)
	) WITHOUT ROWID`,
		// No index by other_key: the table is symmetric, so the rows naming
		// an entity as the neighbour are found through its own rows, and
		// their bucket is that of its degree.
		`DROP INDEX IF EXISTS entity_neighbours_by_other`,
		// Earlier versions' triggers (version 4's kept degrees only); the
		// statements run on every migration, so the bodies are current.
		`DROP TRIGGER IF EXISTS relation_mention_inserted`,
		`DROP TRIGGER IF EXISTS relation_mention_deleted`,
		`DROP TRIGGER IF EXISTS relation_inserted`,
		`DROP TRIGGER IF EXISTS relation_deleted`,
		`DROP TRIGGER IF EXISTS entity_degree_changed`,
		`CREATE TRIGGER relation_inserted AFTER INSERT ON relation_mentions
	WHEN NOT EXISTS (SELECT 1 FROM relation_mentions
		WHERE namespace = NEW.namespace AND src = NEW.src AND dst = NEW.dst
		AND (doc_id != NEW.doc_id OR chunk_id != NEW.chunk_id))
	BEGIN
		INSERT INTO entity_degrees (namespace, entity_key, degree)
		VALUES (NEW.namespace, NEW.src, 1), (NEW.namespace, NEW.dst, 1)
		ON CONFLICT (namespace, entity_key) DO UPDATE SET degree = degree + 1;
		INSERT INTO entity_neighbours (namespace, entity_key, bucket, other_key)
		SELECT NEW.namespace, NEW.src, ` + degreeBucket("degree") + `, NEW.dst FROM entity_degrees
		WHERE namespace = NEW.namespace AND entity_key = NEW.dst
		UNION ALL
		SELECT NEW.namespace, NEW.dst, ` + degreeBucket("degree") + `, NEW.src FROM entity_degrees
		WHERE namespace = NEW.namespace AND entity_key = NEW.src;
	END`,
		`CREATE TRIGGER relation_deleted AFTER DELETE ON relation_mentions
	WHEN NOT EXISTS (SELECT 1 FROM relation_mentions
		WHERE namespace = OLD.namespace AND src = OLD.src AND dst = OLD.dst)
	BEGIN
		DELETE FROM entity_neighbours
		WHERE namespace = OLD.namespace AND entity_key = OLD.src AND other_key = OLD.dst
		AND bucket = (SELECT ` + degreeBucket("degree") + ` FROM entity_degrees WHERE namespace = OLD.namespace AND entity_key = OLD.dst);
		DELETE FROM entity_neighbours
		WHERE namespace = OLD.namespace AND entity_key = OLD.dst AND other_key = OLD.src
		AND bucket = (SELECT ` + degreeBucket("degree") + ` FROM entity_degrees WHERE namespace = OLD.namespace AND entity_key = OLD.src);
		UPDATE entity_degrees SET degree = degree - 1
		WHERE namespace = OLD.namespace AND entity_key IN (OLD.src, OLD.dst);
		DELETE FROM entity_degrees
		WHERE namespace = OLD.namespace AND entity_key IN (OLD.src, OLD.dst) AND degree <= 0;
	END`,
		`CREATE TRIGGER entity_degree_changed AFTER UPDATE OF degree ON entity_degrees
	WHEN ` + degreeBucket("NEW.degree") + ` != ` + degreeBucket("OLD.degree") + `
	BEGIN
		UPDATE entity_neighbours SET bucket = ` + degreeBucket("NEW.degree") + `
		WHERE namespace = NEW.namespace AND bucket = ` + degreeBucket("OLD.degree") + ` AND other_key = NEW.entity_key
		AND entity_key IN (SELECT other_key FROM entity_neighbours WHERE namespace = NEW.namespace AND entity_key = NEW.entity_key);
	END`,
		// A local query ranks a chunk by the entities it mentions, knowing
		// only the chunk's id.
		`CREATE INDEX IF NOT EXISTS entity_mentions_by_chunk_id ON entity_mentions (namespace, chunk_id)`,
		// Schema version 4: the communities of an entity, so a local query
		// reads the reports of its entities' communities only.
		`CREATE TABLE IF NOT EXISTS community_members (
		namespace    TEXT NOT NULL,
		entity_key   TEXT NOT NULL,
		level        INTEGER NOT NULL,
		community_id TEXT NOT NULL,
		PRIMARY KEY (namespace, entity_key, level, community_id)
	) WITHOUT ROWID`,
	}
}

// Store is a knowledge-graph store in one SQLite file. It is safe for
// concurrent use, also by several processes opening the same file.
type Store struct {
	db *sql.DB
	st *statements
	// writeSlot serialises this process's write transactions so they queue
	// in Go (honouring their contexts) instead of polling SQLite's lock.
	writeSlot chan struct{}
}

// Open opens (creating if needed) the store in the SQLite file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open graph store: empty path")
	}
	params := url.Values{}
	params.Set("_txlock", "immediate")
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMillis))
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "NORMAL")
	params.Add("_pragma", "cache_size("+strconv.Itoa(-cacheKiB)+")")
	params.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walAutocheckpointPages)+")")
	params.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimitBytes)+")")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open graph store %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	s := &Store{db: db, writeSlot: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open graph store %s: %w", path, err), db.Close())
	}
	if s.st, err = prepareStatements(ctx, db); err != nil {
		return nil, errors.Join(fmt.Errorf("open graph store %s: %w", path, err), db.Close())
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > schemaVersion {
			return fmt.Errorf("schema version %d is newer than supported %d", version, schemaVersion)
		}
		if version == schemaVersion {
			return nil
		}
		for _, stmt := range schemaStatements() {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		// Namespaces merged before generations were counted start at 1, so
		// their communities (generation 0) count as out of date.
		if _, err := tx.ExecContext(ctx,
			`INSERT OR IGNORE INTO namespaces (namespace, generation, communities_generation)
			SELECT DISTINCT namespace, 1, 0 FROM chunks`); err != nil {
			return fmt.Errorf("seed generations: %w", err)
		}
		// Degrees and neighbour lists are recounted from the mentions by
		// every upgrade from before version 6 (the lists came with 5).
		if version < 6 {
			if err := countDegrees(ctx, tx); err != nil {
				return err
			}
		}
		// Schema version 6: when communities were built (unix milliseconds,
		// 0 for builds before).
		if err := addColumn(ctx, tx, "namespaces", "communities_built_at", "INTEGER NOT NULL DEFAULT 0"); err != nil {
			return err
		}
		if version < 4 {
			if err := addColumn(ctx, tx, "communities", "members", "INTEGER NOT NULL DEFAULT 0"); err != nil {
				return err
			}
			// A new file's communities never had a keys column.
			hasKeys, err := hasColumn(ctx, tx, "communities", "keys")
			if err != nil {
				return err
			}
			if hasKeys {
				if _, err := tx.ExecContext(ctx, `UPDATE communities SET members = json_array_length(keys)`); err != nil {
					return fmt.Errorf("count community members: %w", err)
				}
				if _, err := tx.ExecContext(ctx,
					`INSERT OR IGNORE INTO community_members (namespace, entity_key, level, community_id)
					SELECT c.namespace, k.value, c.level, c.community_id FROM communities c, json_each(c.keys) k`); err != nil {
					return fmt.Errorf("list community members: %w", err)
				}
			}
		}
		// Schema version 7: a community's members are only in
		// community_members. Its row held them as JSON too, before its
		// report: SQLite walks a long value's overflow pages to reach the
		// columns after it, and reading the report of one of the 57
		// top-level communities of a 10,000-document corpus went through
		// 33 KB of member list.
		hasKeys, err := hasColumn(ctx, tx, "communities", "keys")
		if err != nil {
			return err
		}
		if hasKeys {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE communities DROP COLUMN keys`); err != nil {
				return fmt.Errorf("drop community member lists: %w", err)
			}
		}
		if version < 8 && version > 0 {
			if err := reorderCommunities(ctx, tx); err != nil {
				return err
			}
		}
		// A global query reads the best rated reports, in this order (after
		// the members column exists).
		if _, err := tx.ExecContext(ctx,
			`CREATE INDEX IF NOT EXISTS communities_by_rating ON communities (namespace, rating DESC, members DESC, community_id)`); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
		return nil
	})
}

// communitiesTable is the statement creating the communities table under
// name. What a local query ranks communities by comes first, the report's
// body last: a row of a few kilobytes spills past the page into overflow
// pages, which SQLite reads only for the columns stored there.
func communitiesTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
		namespace          TEXT NOT NULL,
		level              INTEGER NOT NULL,
		community_id       TEXT NOT NULL,
		parent             TEXT NOT NULL,
		title              TEXT NOT NULL,
		rating             REAL NOT NULL,
		members            INTEGER NOT NULL DEFAULT 0,
		hash               TEXT NOT NULL,
		summary            TEXT NOT NULL,
		rating_explanation TEXT NOT NULL,
		findings           TEXT NOT NULL,
		PRIMARY KEY (namespace, level, community_id)
	) WITHOUT ROWID`
}

// reorderCommunities rewrites a communities table of a schema before 8,
// whose members and hash came after the report, in the columns' order of
// communitiesTable (schema version 8).
func reorderCommunities(ctx context.Context, tx *sql.Tx) error {
	const columns = `namespace, level, community_id, parent, title, rating, members, hash, summary, rating_explanation, findings`
	for _, stmt := range []string{
		communitiesTable("communities_v8"),
		`INSERT INTO communities_v8 (` + columns + `) SELECT ` + columns + ` FROM communities`,
		`DROP TABLE communities`,
		`ALTER TABLE communities_v8 RENAME TO communities`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("reorder community columns: %w", err)
		}
	}
	return nil
}

// countDegrees recounts every entity's degree and neighbour list from the
// relation mentions.
func countDegrees(ctx context.Context, tx *sql.Tx) error {
	// A file of version 2 or older has relations but no degrees yet.
	if _, err := tx.ExecContext(ctx, `DELETE FROM entity_degrees`); err != nil {
		return fmt.Errorf("reset degrees: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO entity_degrees (namespace, entity_key, degree)
		SELECT namespace, k, COUNT(*) FROM (
			SELECT DISTINCT namespace, src AS k, dst AS other FROM relation_mentions
			UNION ALL
			SELECT DISTINCT namespace, dst AS k, src AS other FROM relation_mentions)
		GROUP BY namespace, k`); err != nil {
		return fmt.Errorf("count degrees: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM entity_neighbours`); err != nil {
		return fmt.Errorf("reset neighbours: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO entity_neighbours (namespace, entity_key, bucket, other_key)
		SELECT r.namespace, r.k, `+degreeBucket("d.degree")+`, r.other FROM (
			SELECT DISTINCT namespace, src AS k, dst AS other FROM relation_mentions
			UNION ALL
			SELECT DISTINCT namespace, dst AS k, src AS other FROM relation_mentions) r
		JOIN entity_degrees d ON d.namespace = r.namespace AND d.entity_key = r.other`); err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	return nil
}

// addColumn adds a column to a table that does not have it yet.
func addColumn(ctx context.Context, tx *sql.Tx, table, column, definition string) error {
	has, err := hasColumn(ctx, tx, table, column)
	if err != nil || has {
		return err
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+definition); err != nil {
		return fmt.Errorf("add column %s.%s: %w", table, column, err)
	}
	return nil
}

// hasColumn reports whether table has the column.
func hasColumn(ctx context.Context, tx *sql.Tx, table, column string) (bool, error) {
	var has bool
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&has); err != nil {
		return false, fmt.Errorf("read columns of %s: %w", table, err)
	}
	return has, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := errors.Join(s.st.close(), s.db.Close()); err != nil {
		return fmt.Errorf("close graph store: %w", err)
	}
	return nil
}

// write runs fn in a write transaction, committing if fn succeeds.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writeSlot }()

	// The DSN's _txlock=immediate makes this BEGIN IMMEDIATE.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, so multi-statement reads see one
// consistent state while another process writes.
func (s *Store) read(ctx context.Context, fn func(*sql.Tx) error) error {
	// ReadOnly makes the driver issue a plain (deferred) BEGIN despite
	// _txlock=immediate, so reads do not take the write lock.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	err = fn(tx)
	return errors.Join(err, ignoreDone(tx.Rollback()))
}

// ignoreDone drops the error of rolling back a transaction database/sql
// already ended (it rolls back by itself when the context is cancelled).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// placeholders returns "?, ?, ..." for n parameters.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// batches splits values into runs of at most maxKeysPerQuery.
func batches(values []string) [][]string {
	var out [][]string
	for len(values) > maxKeysPerQuery {
		out = append(out, values[:maxKeysPerQuery])
		values = values[maxKeysPerQuery:]
	}
	if len(values) > 0 {
		out = append(out, values)
	}
	return out
}

func checkNamespace(namespace string) error {
	if namespace == "" {
		return errors.New("empty namespace")
	}
	return nil
}

// Store is a graph.Store.
var _ graph.Store = (*Store)(nil)
