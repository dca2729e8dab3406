package sqlitevec

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// The approximate index is an inverted file (IVF): once a (namespace, kind)
// partition holds Options.MinIndexedRows vectors, k-means splits it into
// about √n clusters whose unit-length centroids are stored next to the
// vectors, and every row records its nearest centroid in its cluster
// column. A search ranks the centroids (a few hundred dot products) and
// scans only the rows of the Options.Probes nearest clusters, each cluster
// read as one packed row of its codes (see packed.go): about Probes·√n
// rows instead of n, each scored by its code (see codes.go).
//
// Everything lives in the SQLite file and changes in the writer's
// transaction, so processes sharing the file see one index, a killed
// process leaves nothing to repair, and deleting a row removes it from the
// index. New rows go to their nearest centroid; when a partition has grown
// RetrainGrowth times since its clusters were trained, the next write
// retrains them and reassigns every row (amortised, a constant cost per
// inserted row). Only the centroids are held in memory, a few hundred
// kilobytes a partition.

// Options tune the approximate index. The zero value takes the defaults.
type Options struct {
	// MinIndexedRows is the partition size from which searches use the
	// index; smaller partitions are scanned. Default 4096.
	MinIndexedRows int
	// Probes is how many clusters a search scans. Default 32.
	Probes int
	// RetrainGrowth is how much a partition grows before its clusters
	// are trained again. Default 4.
	RetrainGrowth int
	// TrainingSample bounds the vectors k-means trains on. Default 8192.
	TrainingSample int
	// Rescore is how many candidates a search ranked by the rows' codes
	// scores again with their exact vectors, per result. Default 2 (4 found
	// the same recall@10 on the benchmark queries, 0.966, at twice the reads).
	Rescore int
}

func (o Options) withDefaults() Options {
	o.MinIndexedRows = cmp.Or(o.MinIndexedRows, 4096)
	o.Probes = cmp.Or(o.Probes, 32)
	o.RetrainGrowth = cmp.Or(o.RetrainGrowth, 4)
	o.TrainingSample = cmp.Or(o.TrainingSample, 8192)
	o.Rescore = cmp.Or(o.Rescore, 2)
	return o
}

const (
	// unassigned is the cluster of a row of a partition without clusters.
	unassigned = -1
	// kmeansIterations of Lloyd's algorithm: the clusters only need to
	// be good enough that the probed ones hold the nearest rows.
	kmeansIterations = 8
	maxClusters      = 4096
)

// clusterCount is the number of clusters for a partition of n rows.
func clusterCount(n int) int {
	return min(max(int(math.Sqrt(float64(n))), 8), maxClusters)
}

// centroids are a partition's trained cluster centres (unit vectors), with
// the version they were read at.
type centroids struct {
	version int64
	vectors [][]float32
}

// nearest returns the index of the centroid with the highest dot product.
func (c *centroids) nearest(unit []float32) int {
	best, bestScore := 0, float32(math.Inf(-1))
	for i, v := range c.vectors {
		if s := dotFloats(unit, v); s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// probes returns the n clusters nearest to unit, nearest first.
func (c *centroids) probes(unit []float32, n int) []int {
	type scored struct {
		cluster int
		score   float32
	}
	all := make([]scored, len(c.vectors))
	for i, v := range c.vectors {
		all[i] = scored{i, dotFloats(unit, v)}
	}
	slices.SortFunc(all, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	out := make([]int, 0, min(n, len(all)))
	for _, s := range all[:min(n, len(all))] {
		out = append(out, s.cluster)
	}
	return out
}

// centroidCache keeps each partition's centroids in memory, re-read when
// the partition's version in the file has changed (another writer, or
// this one, retrained).
type centroidCache struct {
	mu sync.Mutex
	m  map[partition]*centroids
}

// load returns the partition's current centroids, nil if it has none.
func (c *centroidCache) load(ctx context.Context, q querier, p partition) (*centroids, error) {
	var version int64
	err := q.QueryRowContext(ctx, `SELECT version FROM partitions WHERE namespace = ? AND kind = ?`, p.namespace, p.kind).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index version: %w", err)
	}
	c.mu.Lock()
	cached := c.m[p]
	c.mu.Unlock()
	if cached != nil && cached.version == version {
		return cached, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT vector FROM centroids WHERE namespace = ? AND kind = ? ORDER BY cluster`, p.namespace, p.kind)
	if err != nil {
		return nil, fmt.Errorf("read centroids: %w", err)
	}
	defer rows.Close()
	loaded := &centroids{version: version}
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, fmt.Errorf("read centroids: %w", err)
		}
		loaded.vectors = append(loaded.vectors, decode(blob))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read centroids: %w", err)
	}
	if len(loaded.vectors) == 0 {
		loaded = nil
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[partition]*centroids{}
	}
	c.m[p] = loaded
	c.mu.Unlock()
	return loaded, nil
}

// querier is what reading centroids needs: a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// maybeRetrain trains the partition's clusters if it has outgrown them.
func (s *Store) maybeRetrain(ctx context.Context, tx *sql.Tx, p partition) error {
	var rows, trained int
	err := tx.QueryRowContext(ctx, `SELECT rows, trained_rows FROM partitions WHERE namespace = ? AND kind = ?`, p.namespace, p.kind).Scan(&rows, &trained)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read partition size: %w", err)
	}
	if rows < s.opts.MinIndexedRows || rows < s.opts.RetrainGrowth*trained {
		return nil
	}
	return s.train(ctx, tx, p, rows)
}

// train runs k-means on a sample of the partition, stores the centroids
// and assigns every row to its nearest one.
func (s *Store) train(ctx context.Context, tx *sql.Tx, p partition, n int) error {
	k := clusterCount(n)
	// A deterministic reservoir sample of the rows, in primary-key order.
	rng := rand.New(rand.NewPCG(uint64(n), 0x1f))
	sampleSize := min(max(s.opts.TrainingSample, k), n)
	sample := make([][]float32, 0, sampleSize)
	seen := 0
	err := scanVectors(ctx, tx, p, func(_ string, v []float32) {
		seen++
		if len(sample) < sampleSize {
			sample = append(sample, v)
		} else if j := rng.IntN(seen); j < sampleSize {
			sample[j] = v
		}
	})
	if err != nil {
		return fmt.Errorf("sample partition: %w", err)
	}
	c := &centroids{vectors: kmeans(sample, k, rng)}

	type assignment struct {
		id      string
		cluster int
	}
	var assigned []assignment
	if err := scanVectors(ctx, tx, p, func(id string, v []float32) {
		assigned = append(assigned, assignment{id, c.nearest(v)})
	}); err != nil {
		return fmt.Errorf("assign rows: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM centroids WHERE namespace = ? AND kind = ?`, p.namespace, p.kind); err != nil {
		return fmt.Errorf("replace centroids: %w", err)
	}
	for i, v := range c.vectors {
		if _, err := tx.ExecContext(ctx, `INSERT INTO centroids (namespace, kind, cluster, vector) VALUES (?, ?, ?, ?)`,
			p.namespace, p.kind, i, encode(v)); err != nil {
			return fmt.Errorf("store centroids: %w", err)
		}
	}
	update, err := tx.PrepareContext(ctx, `UPDATE vectors SET cluster = ? WHERE namespace = ? AND kind = ? AND id = ?`)
	if err != nil {
		return fmt.Errorf("assign rows: %w", err)
	}
	defer update.Close()
	for _, a := range assigned {
		if _, err := update.ExecContext(ctx, a.cluster, p.namespace, p.kind, a.id); err != nil {
			return fmt.Errorf("assign rows: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE partitions SET trained_rows = ?, version = version + 1 WHERE namespace = ? AND kind = ?`,
		n, p.namespace, p.kind); err != nil {
		return fmt.Errorf("record training: %w", err)
	}
	if err := pack(ctx, tx, p); err != nil {
		return fmt.Errorf("pack clusters: %w", err)
	}
	return nil
}

// scanVectors streams the partition's rows.
func scanVectors(ctx context.Context, tx *sql.Tx, p partition, fn func(id string, v []float32)) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, vector FROM vectors WHERE namespace = ? AND kind = ?`, p.namespace, p.kind)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   string
			blob sql.RawBytes
		)
		if err := rows.Scan(&id, &blob); err != nil {
			return err
		}
		fn(id, decode(blob))
	}
	return rows.Err()
}

// kmeans clusters unit vectors into k unit centroids (spherical k-means:
// each centroid is its members' normalised mean).
func kmeans(points [][]float32, k int, rng *rand.Rand) [][]float32 {
	k = min(k, len(points))
	dim := len(points[0])
	cents := make([][]float32, k)
	for i, j := range rng.Perm(len(points))[:k] {
		cents[i] = slices.Clone(points[j])
	}
	c := &centroids{vectors: cents}
	sums := make([][]float64, k)
	for i := range sums {
		sums[i] = make([]float64, dim)
	}
	counts := make([]int, k)
	for range kmeansIterations {
		for i := range sums {
			clear(sums[i])
			counts[i] = 0
		}
		for _, pt := range points {
			n := c.nearest(pt)
			counts[n]++
			for d, x := range pt {
				sums[n][d] += float64(x)
			}
		}
		for i := range cents {
			if counts[i] == 0 {
				// An empty cluster restarts at a random point.
				cents[i] = slices.Clone(points[rng.IntN(len(points))])
				continue
			}
			var norm float64
			for _, x := range sums[i] {
				norm += x * x
			}
			if norm == 0 {
				continue
			}
			norm = math.Sqrt(norm)
			for d, x := range sums[i] {
				cents[i][d] = float32(x / norm)
			}
		}
	}
	return cents
}

func dotFloats(a, b []float32) float32 {
	var sum float32
	for i, x := range a {
		sum += x * b[i]
	}
	return sum
}
