package sqlitevec

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// Reading a probed cluster one index row at a time cost more than scoring
// it: at 10,000 documents (128,499 entity vectors, 358 clusters) a local
// query stepped through 11,000 code rows of its 32 probed clusters, and
// the per-row work of SQLite and database/sql was 38 % of the query's CPU,
// the dot products 15 % of that. So each cluster of a trained partition is
// also kept packed, all its ids and codes in one row (packed_clusters), and
// a search reads one row a probed cluster.
//
// Keeping a packed row exact on every write would rewrite a whole cluster
// for each vector. Instead the packed rows are a snapshot, and triggers
// put every vector written after it into pending_codes, keyed by cluster,
// so a search reads a probed cluster's packed row and its pending rows:
//
//   - a vector inserted, or updated (its code or cluster changed), has a
//     pending row, which wins over its entry in a packed row;
//   - a vector deleted loses its pending row; its packed entry stays until
//     the next packing, and rescoring (which reads the exact vectors by id)
//     finds nothing for it, so at worst it takes one candidate's place.
//
// A partition is packed again when its pending and stale entries pass a
// quarter of its packed ones (so a search reads at most that many rows one
// at a time, and each vector is packed a bounded number of times as the
// partition grows), and always when it is trained. packed_partitions
// records the training version a packing belongs to; a search of a
// partition trained again without being packed (by an earlier version of
// this code sharing the file) reads the cluster index instead, as before.
const packedSchema = `
CREATE TABLE IF NOT EXISTS packed_clusters (
	namespace TEXT NOT NULL,
	kind      TEXT NOT NULL,
	cluster   INTEGER NOT NULL,
	dim       INTEGER NOT NULL,
	entries   BLOB NOT NULL,
	PRIMARY KEY (namespace, kind, cluster)
);
CREATE TABLE IF NOT EXISTS packed_partitions (
	namespace TEXT NOT NULL,
	kind      TEXT NOT NULL,
	version   INTEGER NOT NULL,
	entries   INTEGER NOT NULL,
	PRIMARY KEY (namespace, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_codes (
	namespace TEXT NOT NULL,
	kind      TEXT NOT NULL,
	cluster   INTEGER NOT NULL,
	id        TEXT NOT NULL,
	code      BLOB,
	PRIMARY KEY (namespace, kind, cluster, id)
);
CREATE TRIGGER IF NOT EXISTS vector_pending_inserted AFTER INSERT ON vectors WHEN NEW.cluster >= 0 BEGIN
	INSERT OR REPLACE INTO pending_codes (namespace, kind, cluster, id, code)
	VALUES (NEW.namespace, NEW.kind, NEW.cluster, NEW.id, NEW.code);
END;
CREATE TRIGGER IF NOT EXISTS vector_pending_updated AFTER UPDATE OF code ON vectors BEGIN
	DELETE FROM pending_codes WHERE namespace = OLD.namespace AND kind = OLD.kind AND cluster = OLD.cluster AND id = OLD.id;
	INSERT OR REPLACE INTO pending_codes (namespace, kind, cluster, id, code)
	SELECT NEW.namespace, NEW.kind, NEW.cluster, NEW.id, NEW.code WHERE NEW.cluster >= 0;
END;
CREATE TRIGGER IF NOT EXISTS vector_pending_deleted AFTER DELETE ON vectors BEGIN
	DELETE FROM pending_codes WHERE namespace = OLD.namespace AND kind = OLD.kind AND cluster = OLD.cluster AND id = OLD.id;
END;
`

// repackShare is the share of a partition's packed entries that pending and
// stale ones may reach before it is packed again: 1/repackShare.
const repackShare = 4

// migratePacked creates the packed clusters and packs every trained
// partition whose packing is missing (a file written before they existed)
// or out of date.
func migratePacked(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, packedSchema); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT namespace, kind FROM partitions WHERE trained_rows > 0`)
	if err != nil {
		return err
	}
	var trained []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.namespace, &p.kind); err != nil {
			rows.Close()
			return err
		}
		trained = append(trained, p)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, p := range trained {
		if err := maybeRepack(ctx, tx, p); err != nil {
			return fmt.Errorf("pack %s/%s: %w", p.namespace, p.kind, err)
		}
	}
	return nil
}

// maybeRepack packs a trained partition again if its packing is of an
// earlier training or its pending and stale entries have grown past
// 1/repackShare of the packed ones.
func maybeRepack(ctx context.Context, tx *sql.Tx, p partition) error {
	var rows, trained, version int64
	err := tx.QueryRowContext(ctx, `SELECT rows, trained_rows, version FROM partitions WHERE namespace = ? AND kind = ?`,
		p.namespace, p.kind).Scan(&rows, &trained, &version)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && trained == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read partition: %w", err)
	}
	var packedVersion, packed int64
	err = tx.QueryRowContext(ctx, `SELECT version, entries FROM packed_partitions WHERE namespace = ? AND kind = ?`,
		p.namespace, p.kind).Scan(&packedVersion, &packed)
	if errors.Is(err, sql.ErrNoRows) {
		return pack(ctx, tx, p)
	}
	if err != nil {
		return fmt.Errorf("read packing: %w", err)
	}
	if packedVersion != version {
		return pack(ctx, tx, p)
	}
	var pending int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_codes WHERE namespace = ? AND kind = ?`,
		p.namespace, p.kind).Scan(&pending); err != nil {
		return fmt.Errorf("count pending codes: %w", err)
	}
	// Every row is packed or pending, or both (a packed row written
	// again): the packed entries not among the rows still there are stale.
	stale := max(packed-(rows-pending), 0)
	if (pending+stale)*repackShare <= packed {
		return nil
	}
	return pack(ctx, tx, p)
}

// pack writes a packed row for each cluster of the partition, from the
// cluster index, and empties its pending codes but for the rows without a
// code (written by a version before codes), which stay pending.
func pack(ctx context.Context, tx *sql.Tx, p partition) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM packed_clusters WHERE namespace = ? AND kind = ?`, p.namespace, p.kind); err != nil {
		return fmt.Errorf("drop packed clusters: %w", err)
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO packed_clusters (namespace, kind, cluster, dim, entries) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insert.Close()
	rows, err := tx.QueryContext(ctx, `SELECT cluster, id, dim, code FROM vectors INDEXED BY vectors_cluster_code
		WHERE namespace = ? AND kind = ? AND cluster >= 0 AND code IS NOT NULL ORDER BY cluster`, p.namespace, p.kind)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		cluster, dim = unassigned, 0
		entries      []byte
		packed       int64
	)
	flush := func() error {
		if cluster == unassigned {
			return nil
		}
		_, err := insert.ExecContext(ctx, p.namespace, p.kind, cluster, dim, entries)
		return err
	}
	for rows.Next() {
		var (
			c, d     int
			id, code sql.RawBytes
		)
		if err := rows.Scan(&c, &id, &d, &code); err != nil {
			return err
		}
		if c != cluster {
			if err := flush(); err != nil {
				return fmt.Errorf("write packed cluster: %w", err)
			}
			cluster, dim, entries = c, d, entries[:0]
		}
		if d != dim || len(code) != codeBytes(d) {
			return fmt.Errorf("row %q of cluster %d: dimension %d and a %d-byte code, the cluster's rows have %d", id, c, d, len(code), dim)
		}
		entries = appendEntry(entries, id, code)
		packed++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return fmt.Errorf("write packed cluster: %w", err)
	}
	// Training moves rows between clusters without the triggers seeing
	// it, so the uncoded rows are put back in the clusters they are in now.
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending_codes WHERE namespace = ? AND kind = ?`, p.namespace, p.kind); err != nil {
		return fmt.Errorf("empty pending codes: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pending_codes (namespace, kind, cluster, id, code)
		SELECT namespace, kind, cluster, id, NULL FROM vectors INDEXED BY vectors_cluster_code
		WHERE namespace = ? AND kind = ? AND cluster >= 0 AND code IS NULL`, p.namespace, p.kind); err != nil {
		return fmt.Errorf("keep uncoded rows pending: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO packed_partitions (namespace, kind, version, entries)
		SELECT namespace, kind, version, ? FROM partitions WHERE namespace = ? AND kind = ?
		ON CONFLICT (namespace, kind) DO UPDATE SET version = excluded.version, entries = excluded.entries`,
		packed, p.namespace, p.kind); err != nil {
		return fmt.Errorf("record packing: %w", err)
	}
	return nil
}

// dropPacked removes a partition's packing, when its clusters go.
func dropPacked(ctx context.Context, tx *sql.Tx, p partition) error {
	for _, stmt := range []string{
		`DELETE FROM packed_clusters WHERE namespace = ? AND kind = ?`,
		`DELETE FROM packed_partitions WHERE namespace = ? AND kind = ?`,
		`DELETE FROM pending_codes WHERE namespace = ? AND kind = ?`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, p.namespace, p.kind); err != nil {
			return fmt.Errorf("drop packed clusters: %w", err)
		}
	}
	return nil
}

// appendEntry appends one packed entry: the id's length as a uvarint, the
// id, and the code.
func appendEntry(entries, id, code []byte) []byte {
	entries = binary.AppendUvarint(entries, uint64(len(id)))
	entries = append(entries, id...)
	return append(entries, code...)
}

// searchPacked offers cands the pending rows and the packed entries of the
// clusters, a pending row over the packed entry of the same id, and
// returns the ids of rows without a code (to be scored exactly).
func searchPacked(ctx context.Context, tx *sql.Tx, p partition, unit []float32, clusters []int, cands *topK[struct{}]) (uncoded []string, err error) {
	args := []any{p.namespace, p.kind}
	for _, c := range clusters {
		args = append(args, c)
	}
	where := `WHERE namespace = ? AND kind = ? AND cluster IN (` + placeholders(len(clusters)) + `)`
	rows, err := tx.QueryContext(ctx, `SELECT id, code FROM pending_codes `+where, args...)
	if err != nil {
		return nil, err
	}
	pending := map[string]bool{}
	if uncoded, err = offerCodes(rows, unit, cands, func(id string) { pending[id] = true }); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT cluster, dim, entries FROM packed_clusters `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	width := codeBytes(len(unit))
	for rows.Next() {
		var (
			cluster, dim int
			entries      sql.RawBytes
		)
		if err := rows.Scan(&cluster, &dim, &entries); err != nil {
			return nil, fmt.Errorf("scan packed cluster: %w", err)
		}
		if dim != len(unit) {
			return nil, fmt.Errorf("query dimension %d, stored vectors have %d", len(unit), dim)
		}
		for len(entries) > 0 {
			n, k := binary.Uvarint(entries)
			if k <= 0 || uint64(len(entries)-k) < n+uint64(width) {
				return nil, fmt.Errorf("packed cluster %d is corrupt", cluster)
			}
			id, code := entries[k:k+int(n)], entries[k+int(n):k+int(n)+width]
			entries = entries[k+int(n)+width:]
			if pending[string(id)] {
				continue
			}
			cands.offer(dotCode(unit, code), id, none)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return uncoded, nil
}

// none is the item of a candidate that is known by its id alone.
func none() struct{} { return struct{}{} }
