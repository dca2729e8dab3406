package sqlitevec_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/corpusgen"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// indexedCorpus fills a store with the entity-name vectors of the first docs
// documents of the benchmark corpus, as the vector indexer embeds them, and
// returns the documents' fact questions embedded, which are what a local
// query searches with.
func indexedCorpus(t testing.TB, s *sqlitevec.Store, docs int) (queries [][]float32, entities int) {
	t.Helper()
	ctx := t.Context()
	gen, err := corpusgen.New(corpusgen.DefaultConfig())
	require.NoError(t, err)
	embed := hashembed.New(256)
	seen := map[string]bool{}
	var questions []string
	for range docs {
		doc := gen.Next()
		questions = append(questions, doc.Fact.Question)
		var keys []string
		for _, p := range doc.Paragraphs {
			for _, sen := range p.Sentences {
				for _, m := range sen.Mentions {
					if k := events.EntityKey(m.Name); !seen[k] {
						seen[k] = true
						keys = append(keys, k)
					}
				}
			}
		}
		vecs, err := embed.Embed(ctx, keys)
		require.NoError(t, err)
		items := make([]vector.Item, len(keys))
		for i, k := range keys {
			items[i] = vector.Item{Namespace: "ns", Kind: "entity", ID: k, DocID: doc.ID, Vector: vecs[i]}
		}
		require.NoError(t, s.Upsert(ctx, items))
	}
	queries, err = embed.Embed(ctx, questions)
	require.NoError(t, err)
	return queries, len(seen)
}

func ids(hits []vector.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

// recallAt10 is the share of the exact top 10 that the index's top 10 finds
// (ties with the exact tenth score broken by id, as the store breaks them).
func recallAt10(t *testing.T, s *sqlitevec.Store, queries [][]float32) float64 {
	t.Helper()
	found, total := 0, 0
	for _, q := range queries {
		exact, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10, Exact: true})
		require.NoError(t, err)
		approx, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10})
		require.NoError(t, err)
		got := ids(approx)
		for _, id := range ids(exact) {
			total++
			if slices.Contains(got, id) {
				found++
			}
		}
	}
	return float64(found) / float64(total)
}

// tiedRecallAt10 counts an index hit as found when its score reaches the
// exact tenth score: with hashed embeddings many names score the same, and
// any of them is an equally right tenth.
func tiedRecallAt10(t *testing.T, s *sqlitevec.Store, queries [][]float32) float64 {
	t.Helper()
	found, total := 0, 0
	for _, q := range queries {
		exact, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10, Exact: true})
		require.NoError(t, err)
		approx, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10})
		require.NoError(t, err)
		total += len(exact)
		for _, h := range approx {
			if h.Score >= exact[len(exact)-1].Score-1e-6 {
				found++
			}
		}
	}
	return float64(found) / float64(total)
}

func TestIndexRecallOnBenchmarkQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes a few thousand documents' entities")
	}
	// The default options on 14,000 vectors; BenchmarkIndexRecall measures
	// them on larger partitions. Under the race detector, a partition a
	// tenth of that size, indexed from 1,024 vectors.
	docs, opts := 500, sqlitevec.Options{}
	if underRace {
		docs, opts = 50, sqlitevec.Options{MinIndexedRows: 1024, Probes: 8} // a quarter of the clusters
	}
	s, err := sqlitevec.OpenWith(t.Context(), filepath.Join(t.TempDir(), "vectors.db"), opts)
	require.NoError(t, err)
	defer s.Close()
	queries, entities := indexedCorpus(t, s, docs)
	require.Greater(t, entities, 1024, "the partition is big enough to be indexed")
	queries = queries[:min(len(queries), 100)]
	recall, tied := recallAt10(t, s, queries), tiedRecallAt10(t, s, queries)
	t.Logf("%d entity vectors, recall@10 %.3f (counting ties with the tenth: %.3f)", entities, recall, tied)
	require.GreaterOrEqual(t, recall, 0.95)
}

func TestIndexDeletesAndRetrains(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vectors.db")
	s, err := sqlitevec.OpenWith(ctx, path, sqlitevec.Options{MinIndexedRows: 256})
	require.NoError(t, err)
	defer s.Close()
	queries, _ := indexedCorpus(t, s, 60)

	// Every document's vectors go with it, from the index as from the rows.
	for i := range 30 {
		require.NoError(t, s.DeleteDocument(ctx, "ns", fmt.Sprintf("synthetic-%06d", i)))
	}
	for _, q := range queries {
		hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 20})
		require.NoError(t, err)
		for _, h := range hits {
			var n int
			_, err := fmt.Sscanf(h.DocID, "synthetic-%06d", &n)
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 30, "a vector of a deleted document was found")
		}
	}
	requireIndexConsistent(t, path)
	require.GreaterOrEqual(t, recallAt10(t, s, queries), 0.95)
}

// TestPackedClustersFollowWrites updates, deletes and adds vectors of a
// packed partition, few enough that it is not packed again, and checks
// that searches read the pending rows over the packed ones; then it
// deletes enough to be packed again.
func TestPackedClustersFollowWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vectors.db")
	// Every cluster probed, so an indexed search must find what exact
	// search finds: only a stale or missing code could make them differ.
	s, err := sqlitevec.OpenWith(ctx, path, sqlitevec.Options{MinIndexedRows: 256, Probes: 1000})
	require.NoError(t, err)
	defer s.Close()
	queries, _ := indexedCorpus(t, s, 40)
	requireIndexConsistent(t, path)

	rng := rand.New(rand.NewPCG(7, 7))
	hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: queries[0], TopK: 30, Exact: true})
	require.NoError(t, err)
	// Written again unchanged (as the vector indexer writes every entity
	// of every chunk), they are left alone: nothing becomes pending.
	before := pendingCodes(t, path)
	var keys []string
	for _, h := range hits {
		keys = append(keys, h.ID)
	}
	same, err := hashembed.New(256).Embed(ctx, keys)
	require.NoError(t, err)
	var unchanged []vector.Item
	for i, h := range hits {
		unchanged = append(unchanged, vector.Item{Namespace: "ns", Kind: "entity", ID: h.ID, DocID: h.DocID, Vector: same[i]})
	}
	require.NoError(t, s.Upsert(ctx, unchanged))
	require.Equal(t, before, pendingCodes(t, path), "an unchanged vector is not written again")

	var moved []vector.Item
	for _, h := range hits {
		moved = append(moved, vector.Item{Namespace: "ns", Kind: "entity", ID: h.ID, DocID: h.DocID, Vector: randomVector(rng, 256)})
	}
	require.NoError(t, s.Upsert(ctx, moved))
	require.NoError(t, s.DeleteDocument(ctx, "ns", "synthetic-000001"))
	require.NoError(t, s.Upsert(ctx, []vector.Item{{Namespace: "ns", Kind: "entity", ID: "added", DocID: "added", Vector: queries[1]}}))
	requireIndexConsistent(t, path)
	require.Positive(t, pendingCodes(t, path), "the writes are pending, not packed")

	requireIndexedIsExact := func() {
		t.Helper()
		probes := append(slices.Clone(queries[:10]), moved[0].Vector, moved[1].Vector)
		for _, q := range probes {
			exact, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 5, Exact: true})
			require.NoError(t, err)
			approx, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 5})
			require.NoError(t, err)
			require.Equal(t, exact, approx)
		}
	}
	requireIndexedIsExact()
	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: moved[0].Vector, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, moved[0].ID, hits[0].ID, "a moved vector is found where it is now")
	hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "entity", Vector: queries[1], TopK: 1})
	require.NoError(t, err)
	require.Equal(t, "added", hits[0].ID)

	// Deleting a third of the documents leaves more stale entries than the
	// bound: the partition is packed again, and nothing is pending.
	for i := range 14 {
		require.NoError(t, s.DeleteDocument(ctx, "ns", fmt.Sprintf("synthetic-%06d", 2+i)))
	}
	requireIndexConsistent(t, path)
	require.Zero(t, pendingCodes(t, path), "packed again")
	requireIndexedIsExact()

	// An earlier version sharing the file trains again without packing:
	// searches read the cluster index until the next write packs again.
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE partitions SET version = version + 1`)
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM packed_clusters WHERE cluster % 2 = 0`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	requireIndexedIsExact()
	require.NoError(t, s.Upsert(ctx, []vector.Item{{Namespace: "ns", Kind: "entity", ID: "added-2", DocID: "added", Vector: queries[2]}}))
	requireIndexConsistent(t, path)
	requireIndexedIsExact()
}

func pendingCodes(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM pending_codes`).Scan(&n))
	return n
}

// requireIndexConsistent checks the file's index against its rows: the kept
// partition size is the row count, and a trained partition's rows all sit in
// one of its clusters.
func requireIndexConsistent(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var kept, counted, trained, clusters, outside int
	require.NoError(t, db.QueryRow(`SELECT rows, trained_rows FROM partitions WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&kept, &trained))
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM vectors WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&counted))
	require.Equal(t, counted, kept, "kept partition size")
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM centroids WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&clusters))
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM vectors WHERE namespace = 'ns' AND kind = 'entity' AND (cluster < 0 OR cluster >= ?)`, clusters).Scan(&outside))
	if trained > 0 {
		require.Positive(t, clusters)
		require.Zero(t, outside, "rows outside the clusters of a trained partition")
	}
	var uncoded int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM vectors WHERE code IS NULL OR length(code) != 4 + dim`).Scan(&uncoded))
	require.Zero(t, uncoded, "rows without a code of their dimension")
	if trained > 0 {
		requirePackingConsistent(t, db)
	}
}

// packedCode is where a packed or pending entry puts a row.
type packedCode struct {
	cluster int
	code    string
}

// codesByID reads the cluster and code of each id of the test partition in
// table.
func codesByID(t *testing.T, db *sql.DB, table string) map[string]packedCode {
	t.Helper()
	rows, err := db.Query(`SELECT cluster, id, code FROM ` + table + ` WHERE namespace = 'ns' AND kind = 'entity'`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]packedCode{}
	for rows.Next() {
		var c packedCode
		var id string
		require.NoError(t, rows.Scan(&c.cluster, &id, &c.code))
		out[id] = c
	}
	require.NoError(t, rows.Err())
	return out
}

// requirePackingConsistent checks a trained partition's packed clusters
// against its rows: it is packed for its current training, every row is
// pending or packed in its cluster with its code, every pending entry is a
// row's, and the stale packed entries are within the repacking bound.
func requirePackingConsistent(t *testing.T, db *sql.DB) {
	t.Helper()
	var version, packedVersion, packedEntries int
	require.NoError(t, db.QueryRow(`SELECT version FROM partitions WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&version))
	require.NoError(t, db.QueryRow(`SELECT version, entries FROM packed_partitions WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&packedVersion, &packedEntries))
	require.Equal(t, version, packedVersion, "packed for the current training")

	packed := map[string]packedCode{}
	rows, err := db.Query(`SELECT cluster, dim, entries FROM packed_clusters WHERE namespace = 'ns' AND kind = 'entity'`)
	require.NoError(t, err)
	for rows.Next() {
		var cluster, dim int
		var entries []byte
		require.NoError(t, rows.Scan(&cluster, &dim, &entries))
		for len(entries) > 0 {
			n, k := binary.Uvarint(entries)
			require.Positive(t, k)
			id := string(entries[k : k+int(n)])
			packed[id] = packedCode{cluster, string(entries[k+int(n) : k+int(n)+4+dim])}
			entries = entries[k+int(n)+4+dim:]
		}
	}
	require.NoError(t, rows.Err())
	require.Len(t, packed, packedEntries, "packed entries recorded")

	pending := codesByID(t, db, "pending_codes")
	all := codesByID(t, db, "vectors")
	current := 0
	for id, c := range all {
		if p, ok := pending[id]; ok {
			require.Equal(t, c, p, "pending entry of row %s", id)
			continue
		}
		require.Equal(t, c, packed[id], "packed entry of row %s", id)
		current++
	}
	stale := len(packed) - current
	for id := range pending {
		_, ok := all[id]
		require.True(t, ok, "pending entry %s of no row", id)
	}
	require.LessOrEqual(t, 4*(len(pending)+stale), packedEntries, "pending %d and stale %d entries past a quarter of %d packed", len(pending), stale, packedEntries)
}

const killWriterEnv = "SQLITEVEC_TEST_KILL_WRITER"

// TestIndexSurvivesKill kills a process in the middle of writing and
// training, then checks that the file's index is consistent and searches
// find what exact search finds.
func TestIndexSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "vectors.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKillWriterHelper$")
	cmd.Env = append(os.Environ(), killWriterEnv+"="+path)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	// Let it write past the first trainings, then kill it mid-stream.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if rows := partitionRows(t, path); rows > 3000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.Greater(t, partitionRows(t, path), 3000, "the writer got far enough")

	s, err := sqlitevec.OpenWith(t.Context(), path, sqlitevec.Options{MinIndexedRows: 512})
	require.NoError(t, err)
	defer s.Close()
	requireIndexConsistent(t, path)
	queries, _ := indexedCorpus(t, s, 20) // and writing goes on
	requireIndexConsistent(t, path)
	require.GreaterOrEqual(t, recallAt10(t, s, queries), 0.95)
}

func partitionRows(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", path+"?_busy_timeout=10000")
	require.NoError(t, err)
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT rows FROM partitions WHERE namespace = 'ns' AND kind = 'entity'`).Scan(&rows); err != nil {
		return 0
	}
	return rows
}

// TestKillWriterHelper is the process TestIndexSurvivesKill kills: it writes
// until it is killed.
func TestKillWriterHelper(t *testing.T) {
	path := os.Getenv(killWriterEnv)
	if path == "" {
		t.Skip("run by TestIndexSurvivesKill")
	}
	s, err := sqlitevec.OpenWith(context.Background(), path, sqlitevec.Options{MinIndexedRows: 512, RetrainGrowth: 2})
	require.NoError(t, err)
	indexedCorpus(t, s, 100_000)
}

// BenchmarkIndexRecall reports the index's recall@10 against exact search
// and both searches' latency, with the default options, on the entity
// vectors of KG_BENCH_DOCS documents of the benchmark corpus (default 1,000:
// 26,000 vectors).
func BenchmarkIndexRecall(b *testing.B) {
	docs := 1000
	if v := os.Getenv("KG_BENCH_DOCS"); v != "" {
		if _, err := fmt.Sscan(v, &docs); err != nil {
			b.Fatal(err)
		}
	}
	s, err := sqlitevec.Open(b.Context(), filepath.Join(b.TempDir(), "vectors.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	queries, entities := indexedCorpus(b, s, docs)
	var exact, approx time.Duration
	found := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := queries[i%len(queries)]
		t0 := time.Now()
		want, err := s.Search(b.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10, Exact: true})
		t1 := time.Now()
		got, err2 := s.Search(b.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 10})
		exact, approx = exact+t1.Sub(t0), approx+time.Since(t1)
		if err != nil || err2 != nil {
			b.Fatal(err, err2)
		}
		for _, id := range ids(want) {
			if slices.Contains(ids(got), id) {
				found++
			}
		}
	}
	b.ReportMetric(float64(entities), "vectors")
	b.ReportMetric(float64(found)/float64(10*b.N), "recall@10")
	b.ReportMetric(float64(exact.Microseconds())/1000/float64(b.N), "exact-ms")
	b.ReportMetric(float64(approx.Microseconds())/1000/float64(b.N), "index-ms")
}

// TestOpenAddsIndexToOlderFile opens a file written before the index
// existed: its rows are counted, and a partition big enough is trained on
// the next write.
func TestOpenAddsIndexToOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE vectors (namespace TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
		doc_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (namespace, kind, id))`)
	require.NoError(t, err)
	for i := range 300 {
		v := make([]byte, 8)
		v[i%2*4+3] = 0x3f // 0.5 in one of two components
		_, err = db.Exec(`INSERT INTO vectors VALUES ('ns', 'entity', ?, 'old', 2, ?)`, fmt.Sprintf("old-%03d", i), v)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s, err := sqlitevec.OpenWith(t.Context(), path, sqlitevec.Options{MinIndexedRows: 256})
	require.NoError(t, err)
	defer s.Close()
	n, err := s.Count(t.Context(), "ns", "entity")
	require.NoError(t, err)
	require.Equal(t, 300, n)
	require.Equal(t, 300, partitionRows(t, path))
	require.NoError(t, s.Upsert(t.Context(), []vector.Item{{Namespace: "ns", Kind: "entity", ID: "new", DocID: "new", Vector: []float32{1, 0.01}}}))
	requireIndexConsistent(t, path)
	hits, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: []float32{1, 0.01}, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, "new", hits[0].ID)
}

// TestOpenCodesRowsOfEarlierVersion opens a file of the version before
// codes (a cluster index without them) and checks that every row gets its
// code and that indexed searches find what exact search finds.
func TestOpenCodesRowsOfEarlierVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	opts := sqlitevec.Options{MinIndexedRows: 256, Probes: 1000} // every cluster: only the codes can differ
	s, err := sqlitevec.OpenWith(t.Context(), path, opts)
	require.NoError(t, err)
	queries, _ := indexedCorpus(t, s, 20)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, stmt := range []string{
		`DROP TRIGGER vector_pending_inserted`,
		`DROP TRIGGER vector_pending_updated`,
		`DROP TRIGGER vector_pending_deleted`,
		`DROP TABLE pending_codes`,
		`DROP TABLE packed_clusters`,
		`DROP TABLE packed_partitions`,
		`DROP INDEX vectors_cluster_code`,
		`ALTER TABLE vectors DROP COLUMN code`,
		`CREATE INDEX vectors_cluster ON vectors (namespace, kind, cluster)`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	s, err = sqlitevec.OpenWith(t.Context(), path, opts)
	require.NoError(t, err)
	defer s.Close()
	requireIndexConsistent(t, path)
	db, err = sql.Open("sqlite", path)
	require.NoError(t, err)
	var oldIndex int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'vectors_cluster'`).Scan(&oldIndex))
	require.NoError(t, db.Close())
	require.Zero(t, oldIndex, "the index without codes is dropped")
	// A row written by the earlier version after this one opened the file
	// has no code, and is still found.
	db, err = sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE vectors SET code = NULL WHERE rowid IN (SELECT rowid FROM vectors ORDER BY rowid LIMIT 50)`)
	require.NoError(t, err)
	var uncodedID string
	var blob []byte
	require.NoError(t, db.QueryRow(`SELECT id, vector FROM vectors ORDER BY rowid LIMIT 1`).Scan(&uncodedID, &blob))
	require.NoError(t, db.Close())
	own := make([]float32, len(blob)/4)
	for i := range own {
		own[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
	}
	hits, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: own, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, uncodedID, hits[0].ID, "a row without a code is found by its own vector")
	for _, q := range queries[:10] {
		exact, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 5, Exact: true})
		require.NoError(t, err)
		approx, err := s.Search(t.Context(), vector.Query{Namespace: "ns", Kind: "entity", Vector: q, TopK: 5})
		require.NoError(t, err)
		require.Equal(t, exact, approx)
	}
}
