package query

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/corpusgen"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// The corpus benchmarks query the embedded stores holding a generated
// corpus (libs/corpusgen) merged the way the offline extractor would have
// extracted it: an entity per name of a chunk described by the first
// sentence naming it, a relation per pair of names in one sentence.
//
//	cd services/query && KG_BENCH_DOCS=2000 GOWORK=off go test -run='^$' -bench=Corpus -benchtime=200x .
//
// KG_BENCH_DOCS sizes the corpus (default 500); KG_BENCH_DIR keeps the built
// stores between runs (they take a while to build at thousands of documents).
const benchNamespace = "bench"

// paragraphsPerChunk makes chunks of about 1,200 tokens, as kgraph's default.
const paragraphsPerChunk = 12

// chunkGraphs turns a generated document into its chunks' extractions.
func chunkGraphs(doc corpusgen.Document) []graph.ChunkGraph {
	var out []graph.ChunkGraph
	for start := 0; start < len(doc.Paragraphs); start += paragraphsPerChunk {
		paras := doc.Paragraphs[start:min(start+paragraphsPerChunk, len(doc.Paragraphs))]
		index := len(out)
		cg := graph.ChunkGraph{Namespace: benchNamespace, DocID: doc.ID, JobID: "job-" + doc.ID,
			ChunkID: fmt.Sprintf("%s-chunk-%04d", doc.ID, index), Index: index}
		var texts []string
		seen := map[string]bool{}
		for _, p := range paras {
			texts = append(texts, p.Text)
			for _, s := range p.Sentences {
				for i, m := range s.Mentions {
					if !seen[m.Name] {
						seen[m.Name] = true
						cg.Entities = append(cg.Entities, events.Entity{Name: m.Name, Type: m.Type, Description: s.Text})
					}
					for _, o := range s.Mentions[i+1:] {
						if o.Name != m.Name {
							cg.Relations = append(cg.Relations, events.Relation{Source: m.Name, Target: o.Name, Description: s.Text, Weight: 1})
						}
					}
				}
			}
		}
		cg.Text = strings.Join(texts, "\n\n")
		cg.Tokens = len(strings.Fields(cg.Text)) * 4 / 3
		out = append(out, cg)
	}
	return out
}

type benchCorpus struct {
	graph   *sqlitegraph.Store
	vectors *sqlitevec.Store
	facts   []corpusgen.Fact
}

// openBenchCorpus builds (or reopens) the stores of the first docs
// documents of the default corpus.
func openBenchCorpus(b *testing.B, docs int) benchCorpus {
	b.Helper()
	ctx := context.Background()
	dir := os.Getenv("KG_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, fmt.Sprintf("corpus-%d", docs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	g, err := sqlitegraph.Open(ctx, filepath.Join(dir, "graph.db"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := sqlitevec.Open(ctx, filepath.Join(dir, "vectors.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close(); v.Close() })
	gen, err := corpusgen.New(corpusgen.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	bc := benchCorpus{graph: g, vectors: v}
	built := filepath.Join(dir, "built")
	_, statErr := os.Stat(built)
	embed := hashembed.New(256)
	start := time.Now()
	for i := range docs {
		doc := gen.Next()
		bc.facts = append(bc.facts, doc.Fact)
		if statErr == nil {
			continue
		}
		for _, cg := range chunkGraphs(doc) {
			if _, err := g.MergeChunk(ctx, cg); err != nil {
				b.Fatal(err)
			}
			texts := []string{cg.Text}
			for _, e := range cg.Entities {
				texts = append(texts, events.EntityKey(e.Name))
			}
			vecs, err := embed.Embed(ctx, texts)
			if err != nil {
				b.Fatal(err)
			}
			items := []vector.Item{{Namespace: benchNamespace, Kind: KindChunk, ID: cg.ChunkID, DocID: cg.DocID, Vector: vecs[0]}}
			for j, e := range cg.Entities {
				items = append(items, vector.Item{Namespace: benchNamespace, Kind: KindEntity, ID: events.EntityKey(e.Name), DocID: cg.DocID, Vector: vecs[j+1]})
			}
			if err := v.Upsert(ctx, items); err != nil {
				b.Fatal(err)
			}
		}
		if (i+1)%500 == 0 {
			b.Logf("built %d documents in %s", i+1, time.Since(start).Round(time.Second))
		}
	}
	if statErr != nil {
		if err := os.WriteFile(built, []byte(strconv.Itoa(docs)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return bc
}

func benchDocs(b *testing.B) int {
	if s := os.Getenv("KG_BENCH_DOCS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("KG_BENCH_DOCS=%q, want a positive number", s)
		}
		return n
	}
	return 500
}

// BenchmarkCorpusLocal is an uncached local query with only_context (no
// LLM step) about a planted fact, and reports the share of questions whose
// fact reached the context (fact-recall).
func BenchmarkCorpusLocal(b *testing.B) { benchCorpusMode(b, events.ModeLocal) }

// BenchmarkCorpusNaive is the same for a naive query.
func BenchmarkCorpusNaive(b *testing.B) { benchCorpusMode(b, events.ModeNaive) }

func benchCorpusMode(b *testing.B, mode string) {
	bc := openBenchCorpus(b, benchDocs(b))
	counts, err := bc.graph.Counts(context.Background(), benchNamespace)
	if err != nil {
		b.Fatal(err)
	}
	svc := New(Config{}, nil, slog.New(slog.DiscardHandler), hashembed.New(256), bc.vectors, bc.graph)
	b.Logf("%d documents, %d chunks, %d entities, %d relations", counts.Documents, counts.Chunks, counts.Entities, counts.Relations)
	var found int
	var latencies []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		fact := bc.facts[(i*7919)%len(bc.facts)]
		t0 := time.Now()
		res, err := svc.Answer(b.Context(), events.QueryRequest{Namespace: benchNamespace, Question: fact.Question, Mode: mode, OnlyContext: true, NoCache: true})
		latencies = append(latencies, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(res.Context, fact.Answer) {
			found++
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(float64(found)/float64(len(latencies)), "fact-recall")
}
