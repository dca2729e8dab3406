package sqlitevec

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
)

// An indexed search scans each probed row's code, not its vector: the unit
// vector quantised to one signed byte a dimension with a float32 scale
// (260 bytes at 256 dimensions instead of 1,024). The codes live in the
// (namespace, kind, cluster, id, code) index, from which each cluster's
// codes are packed into one row (see packed.go), so a cluster is read
// from a few adjacent pages instead of by rowid from all over the table,
// and a few times the requested top-k are then scored again with their
// exact vectors (Options.Rescore). At 10,000 documents the probed
// rows' vectors were 180 MB of scattered pages: the largest share of a
// local query's time.

// codeBytes is the length of the code of a dim-dimensional vector.
func codeBytes(dim int) int { return 4 + dim }

// quantise returns the code of a unit vector: the scale (the largest
// magnitude over 127), then each component divided by it and rounded.
func quantise(unit []float32) []byte {
	var peak float32
	for _, x := range unit {
		peak = max(peak, float32(math.Abs(float64(x))))
	}
	code := make([]byte, codeBytes(len(unit)))
	if peak == 0 {
		return code
	}
	scale := peak / 127
	binary.LittleEndian.PutUint32(code, math.Float32bits(scale))
	for i, x := range unit {
		code[4+i] = byte(int8(math.Round(float64(x / scale))))
	}
	return code
}

// dotCode approximates the dot product of q with the vector code was
// quantised from. len(code) must be codeBytes(len(q)).
func dotCode(q []float32, code []byte) float32 {
	scale := math.Float32frombits(binary.LittleEndian.Uint32(code))
	var sum float32
	for i, x := range q {
		sum += x * float32(int8(code[4+i]))
	}
	return sum * scale
}

// rescore reads the exact vectors of the partition's rows with the ids, in
// one statement, and returns the topK best, best first. An id with no row
// (a stale packed entry of a deleted vector) is skipped.
func rescore(ctx context.Context, tx *sql.Tx, p partition, unit []float32, ids []string, topK int) ([]ranked[hitRow], error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2+len(ids))
	args = append(args, p.namespace, p.kind)
	for _, id := range ids {
		args = append(args, id)
	}
	best, err := exactBest(ctx, tx, unit, topK, `SELECT id, doc_id, vector FROM vectors WHERE namespace = ? AND kind = ? AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("rescore: %w", err)
	}
	return best, nil
}

// codeBatch is how many rows the migration codes at a time.
const codeBatch = 4096

// migrateCodes gives every row written before codes existed its code, a
// batch of rows at a time, and replaces the old cluster index with the one
// that holds the codes (created by indexSchema after this runs).
func migrateCodes(ctx context.Context, tx *sql.Tx) error {
	var hasCode bool
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM pragma_table_info('vectors') WHERE name = 'code'`).Scan(&hasCode); err != nil {
		return err
	}
	if !hasCode {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE vectors ADD COLUMN code BLOB`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS vectors_cluster`); err != nil {
		return err
	}
	update, err := tx.PrepareContext(ctx, `UPDATE vectors SET code = ? WHERE rowid = ?`)
	if err != nil {
		return err
	}
	defer update.Close()
	type coded struct {
		rowid int64
		code  []byte
	}
	batch := make([]coded, 0, codeBatch)
	for after := int64(-1); ; {
		batch = batch[:0]
		rows, err := tx.QueryContext(ctx, `SELECT rowid, vector FROM vectors WHERE code IS NULL AND rowid > ? ORDER BY rowid LIMIT ?`, after, codeBatch)
		if err != nil {
			return err
		}
		for rows.Next() {
			var rowid int64
			var blob sql.RawBytes
			if err := rows.Scan(&rowid, &blob); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, coded{rowid, quantise(decode(blob))})
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, c := range batch {
			if _, err := update.ExecContext(ctx, c.code, c.rowid); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].rowid
	}
}
