package neo4jgraph_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/graphtest"
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
)

const (
	uriEnv  = "NEO4J_URI"
	skipEnv = "KG_SKIP_NEO4J"
)

const missingServer = uriEnv + " is not set. The neo4jgraph tests need a Neo4j server: start the test server " +
	"with `make neo4j-start` (or tools/neo4j-testserver/start.sh 7687 .tmp/neo4j) and run them with " +
	uriEnv + "=bolt://127.0.0.1:7687; set " + skipEnv + "=1 to skip them deliberately"

// serverConfig is the Neo4j server the tests use. Without one the tests
// fail, never skip silently: CI must run them.
func serverConfig(t testing.TB) neo4jgraph.Config {
	t.Helper()
	uri := os.Getenv(uriEnv)
	if uri == "" {
		if os.Getenv(skipEnv) == "1" {
			t.Skipf("%s=1: skipping the Neo4j graph store tests", skipEnv)
		}
		t.Fatal(missingServer)
	}
	return neo4jgraph.Config{
		URI:      uri,
		User:     os.Getenv("NEO4J_USER"),
		Password: os.Getenv("NEO4J_PASSWORD"),
		Database: os.Getenv("NEO4J_DATABASE"),
	}
}

// openStore opens a store on a fresh partition of the test server's
// database, so every store starts empty, and deletes the partition when the
// test ends. Separate partitions (not a cleared database) are needed because
// one test may compare two stores, and keep any other data on the server.
func openStore(t testing.TB) *neo4jgraph.Store {
	t.Helper()
	s, _ := openPartition(t)
	return s
}

// openPartition is openStore that also returns the store's configuration,
// to open the same partition again.
func openPartition(t testing.TB) (*neo4jgraph.Store, neo4jgraph.Config) {
	t.Helper()
	cfg := serverConfig(t)
	cfg.Partition = "test-" + rand.Text()
	s, err := neo4jgraph.Open(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		// t.Context is already cancelled here, and the store may be closed.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cleaner, err := neo4jgraph.Open(ctx, cfg)
		if err != nil {
			t.Errorf("reopen partition %s to delete it: %v", cfg.Partition, err)
			return
		}
		defer cleaner.Close()
		if err := cleaner.DeletePartition(ctx); err != nil {
			t.Errorf("delete partition: %v", err)
		}
	})
	return s, cfg
}

func TestMain(m *testing.M) {
	if os.Getenv(uriEnv) == "" && os.Getenv(skipEnv) != "1" {
		fmt.Fprintln(os.Stderr, missingServer)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

func TestContract(t *testing.T) {
	graphtest.Run(t, func(t *testing.T) graph.Store { return openStore(t) })
}

func TestOpenUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := neo4jgraph.Open(ctx, neo4jgraph.Config{URI: "bolt://127.0.0.1:1"})
	require.Error(t, err)
	_, err = neo4jgraph.Open(ctx, neo4jgraph.Config{})
	require.ErrorContains(t, err, "empty URI")
}

func TestConcurrentOpens(t *testing.T) {
	// Services start together and each creates the schema if missing.
	cfg := serverConfig(t)
	const stores = 4
	errs := make(chan error, stores)
	var wg sync.WaitGroup
	for range stores {
		wg.Go(func() {
			s, err := neo4jgraph.Open(t.Context(), cfg)
			if err != nil {
				errs <- err
				return
			}
			_, err = s.Counts(t.Context(), "ns")
			errs <- errors.Join(err, s.Close())
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestPartitionsAreIsolated(t *testing.T) {
	a, b := openStore(t), openStore(t)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	chunk := graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", ChunkID: "c0", Text: "in a",
		Entities:  []events.Entity{{Name: "Scrooge", Type: "PERSON", Description: "in a"}},
		Relations: []events.Relation{{Source: "Scrooge", Target: "Marley", Weight: 1}},
	}
	_, err := a.MergeChunk(ctx, chunk)
	require.NoError(t, err)

	counts, err := b.Counts(ctx, "ns")
	require.NoError(t, err)
	require.Equal(t, graph.Counts{}, counts)
	es, err := b.Entities(ctx, "ns", []string{"SCROOGE"})
	require.NoError(t, err)
	require.Empty(t, es)

	// The same ids in b are b's own, and deleting them leaves a alone.
	chunk.Text = "in b"
	_, err = b.MergeChunk(ctx, chunk)
	require.NoError(t, err)
	require.NoError(t, b.DeleteDocument(ctx, "ns", "doc"))
	cs, err := a.Chunks(ctx, "ns", []string{"c0"})
	require.NoError(t, err)
	require.Equal(t, []graph.Chunk{{ID: "c0", DocID: "doc", Text: "in a"}}, cs)
	counts, err = a.Counts(ctx, "ns")
	require.NoError(t, err)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts)
	nodes, err := b.NodesInPartition(ctx)
	require.NoError(t, err)
	require.Zero(t, nodes)
}

func TestFullTextIndexFindsEntitiesByName(t *testing.T) {
	s := openStore(t)
	defer s.Close()
	ctx := t.Context()
	_, err := s.MergeChunk(ctx, graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", ChunkID: "c0",
		Entities: []events.Entity{
			{Name: "Ebenezer Scrooge", Type: "PERSON"}, {Name: "Jacob Marley", Type: "PERSON"}, {Name: "Fezziwig"},
		},
	})
	require.NoError(t, err)
	// The index is eventually consistent.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		keys, err := s.SearchEntityKeys(ctx, "ns", "scrooge OR marley")
		require.NoError(c, err)
		require.Equal(c, []string{"EBENEZER SCROOGE", "JACOB MARLEY"}, keys)
	}, 30*time.Second, 100*time.Millisecond)
	keys, err := s.SearchEntityKeys(ctx, "other", "scrooge")
	require.NoError(t, err)
	require.Empty(t, keys)
}

// hostileStrings would break or alter a query built by pasting them into
// Cypher text.
func hostileStrings() []string {
	return []string{
		`O'Brien`,
		`Say "hello"`,
		"`backtick` name`",
		"``",
		`$param and ${var} $1 $$`,
		`{braces} [brackets] (parens) {uid: 'x'}`,
		"line one\nline two\r\nthree\ttab",
		`') MATCH (n) DETACH DELETE n //`,
		`"}) RETURN 1 UNION MATCH (n) RETURN n //`,
		"MATCH (n) DETACH DELETE n",
		"CALL db.labels() YIELD label RETURN label",
		"MERGE CREATE SET REMOVE WITH UNWIND RETURN",
		`:Label:Other`,
		`\u0027 \' \" \\ backslashes \\\\`,
		"/* block */ // line",
		"Ünïcødé 東京 🎄 \u00a0nbsp",
		"NULL",
		"1:2:3 looks like a uid 0:",
	}
}

func TestHostileStringsRoundTrip(t *testing.T) {
	s := openStore(t)
	defer s.Close()
	ctx := t.Context()
	canary := openStore(t)
	defer canary.Close()
	_, err := canary.MergeChunk(ctx, graph.ChunkGraph{
		Namespace: "canary", DocID: "d", ChunkID: "c", Entities: []events.Entity{{Name: "Canary", Type: "BIRD"}},
	})
	require.NoError(t, err)

	for i, text := range hostileStrings() {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			// The string is every user-supplied field at once.
			namespace, docID, chunkID := "ns "+text, "doc "+text, "chunk "+text
			other := "Other " + text
			c := graph.ChunkGraph{
				Namespace: namespace, DocID: docID, JobID: "job " + text, ChunkID: chunkID, Index: 3,
				Text: text, Tokens: 7,
				Entities: []events.Entity{
					{Name: "Name " + text, Type: "TYPE " + text, Description: "Description " + text},
					{Name: other, Type: "T", Description: text},
				},
				Relations: []events.Relation{{
					Source: "Name " + text, Target: other, Description: "rel " + text,
					Keywords: []string{text, "kw " + text}, Weight: 1.5,
				}},
			}
			result, err := s.MergeChunk(ctx, c)
			require.NoError(t, err)
			require.Equal(t, graph.MergeResult{Entities: 2, Relations: 1, DocEntities: 2, DocRelations: 1}, result)

			key, otherKey := events.EntityKey("Name "+text), events.EntityKey(other)
			es, err := s.Entities(ctx, namespace, []string{key})
			require.NoError(t, err)
			require.Equal(t, []graph.Entity{{
				Key: key, Name: "Name " + text, Type: "TYPE " + text, Description: "Description " + text,
				Mentions: 1, ChunkIDs: []string{chunkID},
			}}, es)

			src, dst := key, otherKey
			if dst < src {
				src, dst = dst, src
			}
			rs, err := s.RelationsOf(ctx, namespace, []string{key}, 0)
			require.NoError(t, err)
			require.Equal(t, []graph.Relation{{
				Source: src, Target: dst, Description: "rel " + text,
				Keywords: sortedStrings(text, "kw "+text), Weight: 1.5, Mentions: 1, ChunkIDs: []string{chunkID},
			}}, rs)

			cs, err := s.Chunks(ctx, namespace, []string{chunkID})
			require.NoError(t, err)
			require.Equal(t, []graph.Chunk{{ID: chunkID, DocID: docID, Index: 3, Text: text, Tokens: 7}}, cs)

			counts, err := s.Counts(ctx, namespace)
			require.NoError(t, err)
			require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts)

			require.NoError(t, s.DeleteDocument(ctx, namespace, docID))
			counts, err = s.Counts(ctx, namespace)
			require.NoError(t, err)
			require.Equal(t, graph.Counts{}, counts)
		})
	}

	// Nothing outside the store's own data was touched.
	counts, err := canary.Counts(ctx, "canary")
	require.NoError(t, err)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 1}, counts)
	nodes, err := s.NodesInPartition(ctx)
	require.NoError(t, err)
	require.Zero(t, nodes, "deleting every document leaves no node behind")
}

func sortedStrings(values ...string) []string {
	return slices.Sorted(slices.Values(values))
}

// overlappingDocument is one document whose chunks all draw their entities
// from one small vocabulary, so concurrent merges of any two documents
// contend for the same entity nodes and relations.
func overlappingDocument(namespace string, doc, chunks int) []graph.ChunkGraph {
	const vocabulary, perChunk = 10, 6
	docID := fmt.Sprintf("doc-%02d", doc)
	out := make([]graph.ChunkGraph, chunks)
	for i := range out {
		var es []events.Entity
		var rs []events.Relation
		for j := range perChunk {
			n := (doc*3 + i*7 + j) % vocabulary
			es = append(es, events.Entity{
				Name: fmt.Sprintf("Entity %d", n), Type: fmt.Sprintf("T%d", (doc+j)%3),
				Description: fmt.Sprintf("%s/%d/%d", docID, i, j),
			})
			for k := range j {
				rs = append(rs, events.Relation{
					Source: es[k].Name, Target: es[j].Name, Description: fmt.Sprintf("%s %d", docID, i%3),
					Keywords: []string{fmt.Sprintf("k%d", (i+k)%4)}, Weight: float64(1+(i+j+k)%5) / 4,
				})
			}
		}
		out[i] = graph.ChunkGraph{
			Namespace: namespace, DocID: docID, JobID: "job", ChunkID: fmt.Sprintf("%s-%03d", docID, i), Index: i,
			Text: fmt.Sprintf("text %d", i), Tokens: i, Entities: es, Relations: rs,
		}
	}
	return out
}

// TestConcurrentOverlappingWriters has more writers than the contract
// suite, every chunk touching the same ten entities and dense relations
// among them, with redeliveries and a document deleted and re-ingested
// while the others merge: the result must equal sequential merging.
func TestConcurrentOverlappingWriters(t *testing.T) {
	const (
		namespace    = "concurrent"
		docs         = 8
		chunksPerDoc = 20
	)
	documents := make([][]graph.ChunkGraph, docs)
	for d := range documents {
		documents[d] = overlappingDocument(namespace, d, chunksPerDoc)
	}

	sequential := openStore(t)
	defer sequential.Close()
	for _, doc := range documents {
		for _, c := range doc {
			_, err := sequential.MergeChunk(t.Context(), c)
			require.NoError(t, err)
		}
	}

	concurrent := openStore(t)
	defer concurrent.Close()
	ctx := t.Context()
	errs := make(chan error, docs)
	var wg sync.WaitGroup
	for d := range docs {
		wg.Go(func() {
			rng := mathrand.New(mathrand.NewPCG(uint64(d), 42))
			mergeAll := func(chunks []graph.ChunkGraph) error {
				for _, i := range rng.Perm(len(chunks)) {
					if _, err := concurrent.MergeChunk(ctx, chunks[i]); err != nil {
						return err
					}
					// Redeliver a chunk of the next document now and then.
					if rng.IntN(4) == 0 {
						next := documents[(d+1)%docs]
						if _, err := concurrent.MergeChunk(ctx, next[rng.IntN(len(next))]); err != nil {
							return err
						}
					}
				}
				return nil
			}
			err := mergeAll(documents[d])
			if err == nil && d%3 == 0 {
				// Delete the document while the others write, then ingest it again.
				err = concurrent.DeleteDocument(ctx, namespace, documents[d][0].DocID)
				if err == nil {
					err = mergeAll(documents[d])
				}
			}
			if err != nil {
				errs <- fmt.Errorf("writer %d: %w", d, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	wantSnap, err := sequential.Snapshot(ctx, namespace)
	require.NoError(t, err)
	gotSnap, err := concurrent.Snapshot(ctx, namespace)
	require.NoError(t, err)
	require.Equal(t, wantSnap, gotSnap)
	wantCounts, err := sequential.Counts(ctx, namespace)
	require.NoError(t, err)
	gotCounts, err := concurrent.Counts(ctx, namespace)
	require.NoError(t, err)
	require.Equal(t, wantCounts, gotCounts)
	require.Equal(t, graph.Counts{Documents: docs, Chunks: docs * chunksPerDoc, Entities: 10, Relations: 45}, gotCounts)
	require.NoError(t, concurrent.CheckLinks(ctx, namespace), "kept links and degrees under concurrent writers")
	for _, doc := range documents {
		last := doc[len(doc)-1]
		want, err := sequential.MergeChunk(ctx, last)
		require.NoError(t, err)
		got, err := concurrent.MergeChunk(ctx, last)
		require.NoError(t, err)
		require.Equal(t, want, got, "document %s", last.DocID)
	}
}

// TestGenerationCountsConcurrentChanges merges documents concurrently, each
// chunk twice, and deletes some of them: the generation counts every change
// exactly once however the merges interleave, and no redelivery.
func TestGenerationCountsConcurrentChanges(t *testing.T) {
	const (
		namespace    = "generations"
		docs         = 12
		chunksPerDoc = 5
		deleted      = 4
	)
	s := openStore(t)
	defer s.Close()
	ctx := t.Context()
	errs := make(chan error, docs)
	var wg sync.WaitGroup
	for d := range docs {
		wg.Go(func() {
			chunks := overlappingDocument(namespace, d, chunksPerDoc)
			for _, c := range append(chunks, chunks...) {
				if _, err := s.MergeChunk(ctx, c); err != nil {
					errs <- fmt.Errorf("document %d: %w", d, err)
					return
				}
			}
			if d < deleted {
				if err := s.DeleteDocument(ctx, namespace, chunks[0].DocID); err != nil {
					errs <- fmt.Errorf("delete document %d: %w", d, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	generation, err := s.Generation(ctx, namespace)
	require.NoError(t, err)
	require.Equal(t, uint64(docs*chunksPerDoc+deleted), generation)
	counts, err := s.Counts(ctx, namespace)
	require.NoError(t, err)
	require.Equal(t, docs-deleted, counts.Documents)
}

// TestDerivedDataIsPartitionScoped checks that generations, communities and
// summaries stay in their partition, and that nothing of them is left
// after the partition is deleted.
func TestDerivedDataIsPartitionScoped(t *testing.T) {
	a, b := openStore(t), openStore(t)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	chunk := graph.ChunkGraph{
		Namespace: "ns", DocID: "doc", ChunkID: "c0",
		Entities: []events.Entity{{Name: "Scrooge", Type: "PERSON", Description: "A miser."}},
	}
	_, err := a.MergeChunk(ctx, chunk)
	require.NoError(t, err)
	require.NoError(t, a.SetSummaries(ctx, "ns", []graph.Summary{
		{Key: "SCROOGE", SourceHash: graph.DescriptionHash("A miser."), Text: "Stingy."},
	}))
	community := graph.Community{ID: "c0-x", Keys: []string{"SCROOGE"}, Title: "Scrooge alone", Hash: "h"}
	require.NoError(t, a.ReplaceCommunities(ctx, "ns", 1, []graph.Community{community}))

	gen, err := b.Generation(ctx, "ns")
	require.NoError(t, err)
	require.Zero(t, gen)
	built, err := b.CommunitiesBuilt(ctx, "ns")
	require.NoError(t, err)
	require.Zero(t, built)
	cs, err := b.Communities(ctx, "ns", -1)
	require.NoError(t, err)
	require.Empty(t, cs)
	_, err = b.MergeChunk(ctx, chunk)
	require.NoError(t, err)
	es, err := b.Entities(ctx, "ns", []string{"SCROOGE"})
	require.NoError(t, err)
	require.Equal(t, "A miser.", es[0].Description, "a's summary does not apply in b")

	es, err = a.Entities(ctx, "ns", []string{"SCROOGE"})
	require.NoError(t, err)
	require.Equal(t, "Stingy.", es[0].Description)
	cs, err = a.Communities(ctx, "ns", -1)
	require.NoError(t, err)
	require.Equal(t, []graph.Community{community}, cs)

	nodes, err := a.AllNodesInPartition(ctx)
	require.NoError(t, err)
	require.Equal(t, 3+1+1+1+1, nodes, "document, chunk, entity, generation shard, namespace, community, summary")
	require.NoError(t, a.DeletePartition(ctx))
	nodes, err = a.AllNodesInPartition(ctx)
	require.NoError(t, err)
	require.Zero(t, nodes)
	es, err = b.Entities(ctx, "ns", []string{"SCROOGE"})
	require.NoError(t, err)
	require.Len(t, es, 1, "deleting a's partition leaves b alone")
}
