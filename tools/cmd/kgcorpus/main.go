// Command kgcorpus measures kgraph at corpus scale: it runs `kg serve` as a
// child process, ingests a generated corpus (libs/corpusgen) in waves
// through POST /documents/batch, and after each wave prints the ingest rate
// of the wave, the namespace's size, kg serve's RSS, the bytes on disk,
// uncached query latencies per mode (with only_context: retrieval and
// context assembly), the share of questions whose planted fact reached the
// context, and the LLM calls by kind when the fake LLM is used.
//
//	go build -o bin/kg ./tools/cmd/kg
//	go run ./tools/cmd/kgcorpus -kg bin/kg -docs 10000 -wave 500
//	go run ./tools/cmd/kgcorpus -kg bin/kg -docs 300 -wave 100 -llm fake
//	go run ./tools/cmd/kgcorpus -kg bin/kg -docs 2000 -env KG_GRAPH_STORE=neo4j -env NEO4J_URI=bolt://127.0.0.1:7687 ...
//
// With -measure-only it ingests nothing: kg serve opens -data, which holds
// the first -docs documents of the same corpus from an earlier run, and the
// queries are measured once (to compare two binaries on one directory).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/libs/corpusgen"
	"github.com/kgraph-dev/kgraph/tools/fakellm"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kgcorpus:", err)
		os.Exit(1)
	}
}

// envList is a repeatable -env KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

type config struct {
	kg, data, llm, namespace string
	docs, wave, batch        int
	queries                  int
	settle                   time.Duration
	latency                  time.Duration
	concurrency              int
	corpus                   corpusgen.Config
	env                      envList
	json                     bool
	measureOnly              bool
}

func parse(args []string) (config, error) {
	c := config{corpus: corpusgen.DefaultConfig()}
	fs := flag.NewFlagSet("kgcorpus", flag.ContinueOnError)
	fs.StringVar(&c.kg, "kg", "bin/kg", "path of the kg binary")
	fs.StringVar(&c.data, "data", "", "kg serve's data directory (default: a temporary one, removed at the end)")
	fs.StringVar(&c.llm, "llm", "off", "off: the offline extractor and extractive answers; fake: the fake OpenAI-compatible LLM (heuristic mode)")
	fs.StringVar(&c.namespace, "namespace", "corpus", "namespace to ingest into")
	fs.IntVar(&c.docs, "docs", 2000, "documents to ingest")
	fs.IntVar(&c.wave, "wave", 500, "documents per wave; measurements are taken after each")
	fs.IntVar(&c.batch, "batch", 100, "documents per POST /documents/batch (at most 100)")
	fs.IntVar(&c.queries, "queries", 40, "questions per mode after each wave")
	fs.DurationVar(&c.settle, "settle", 10*time.Minute, "how long to wait after a wave for the communities to be rebuilt")
	fs.DurationVar(&c.latency, "latency", 0, "fake LLM latency per call")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent LLM calls (fake LLM limit = kgraph's provider limit)")
	fs.Uint64Var(&c.corpus.Seed, "seed", c.corpus.Seed, "corpus seed")
	fs.IntVar(&c.corpus.People, "people", c.corpus.People, "people in the name pool")
	fs.IntVar(&c.corpus.Organizations, "organizations", c.corpus.Organizations, "organisations in the name pool")
	fs.IntVar(&c.corpus.Places, "places", c.corpus.Places, "places in the name pool")
	fs.IntVar(&c.corpus.MinParagraphs, "min-paragraphs", c.corpus.MinParagraphs, "fewest paragraphs a document")
	fs.IntVar(&c.corpus.MaxParagraphs, "max-paragraphs", c.corpus.MaxParagraphs, "most paragraphs a document")
	fs.IntVar(&c.corpus.Cast, "cast", c.corpus.Cast, "entities one document draws from the pools")
	fs.Float64Var(&c.corpus.Popular, "popular", c.corpus.Popular, "share of a cast drawn by popularity (the rest uniformly)")
	fs.Float64Var(&c.corpus.Skew, "skew", c.corpus.Skew, "Zipf exponent of the names' popularity")
	fs.Var(&c.env, "env", "KEY=VALUE for kg serve's environment (repeatable), e.g. KG_GRAPH_STORE=neo4j")
	fs.BoolVar(&c.json, "json", false, "print each wave's report as one JSON line")
	fs.BoolVar(&c.measureOnly, "measure-only", false, "ingest nothing: measure the queries once on -data, which holds the first -docs documents of this corpus")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	switch {
	case c.docs < 1 || c.wave < 1 || c.batch < 1 || c.batch > 100 || c.queries < 1:
		return config{}, errors.New("-docs, -wave, -queries must be positive and -batch 1..100")
	case c.measureOnly && c.data == "":
		return config{}, errors.New("-measure-only needs -data: the directory of an earlier run")
	case c.llm != "off" && c.llm != "fake":
		return config{}, fmt.Errorf("-llm must be off or fake, got %q", c.llm)
	}
	return c, c.corpus.Validate()
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	gen, err := corpusgen.New(cfg.corpus)
	if err != nil {
		return err
	}
	data := cfg.data
	if data == "" {
		if data, err = os.MkdirTemp("", "kgcorpus-"); err != nil {
			return err
		}
		defer os.RemoveAll(data)
	}
	env := append([]string{}, cfg.env...)
	var fake *fakellm.Server
	if cfg.llm == "fake" {
		if fake, err = fakellm.New(fakellm.Config{Mode: fakellm.ModeHeuristic, Latency: cfg.latency, MaxConcurrency: cfg.concurrency, Seed: 1}); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		env = append(env, "KG_LLM_BASE_URL=http://"+ln.Addr().String()+"/v1", "KG_LLM_API_KEY=bench", "KG_LLM_MODEL=fakellm",
			fmt.Sprintf("KG_LLM_MAX_CONCURRENCY=%d", cfg.concurrency))
	}
	serve, err := startServe(ctx, cfg.kg, data, env)
	if err != nil {
		return err
	}
	defer serve.stop()

	rep := reporter{w: stdout, json: cfg.json}
	rep.header(cfg, args)
	var (
		facts     []corpusgen.Fact
		textBytes int64
	)
	if cfg.measureOnly {
		w := waveReport{Docs: cfg.docs}
		for range cfg.docs {
			d := gen.Next()
			facts = append(facts, d.Fact)
			w.TextBytes += int64(len(d.Text()))
		}
		if err := measure(ctx, serve.client, cfg, facts, &w); err != nil {
			return err
		}
		w.RSS, w.PeakRSS = serve.rss.current(), serve.rss.peak()
		w.Disk = diskUsage(data)
		rep.wave(w)
		return nil
	}
	for done := 0; done < cfg.docs; {
		n := min(cfg.wave, cfg.docs-done)
		docs := make([]corpusgen.Document, n)
		for i := range docs {
			docs[i] = gen.Next()
			facts = append(facts, docs[i].Fact)
			textBytes += int64(len(docs[i].Text()))
		}
		serve.rss.resetPeak()
		w, err := ingestWave(ctx, serve.client, cfg, docs)
		if err != nil {
			return fmt.Errorf("wave after %d documents: %w", done, err)
		}
		done += n
		w.Docs, w.TextBytes = done, textBytes
		if w.Settled, err = settle(ctx, serve.client, cfg.namespace, cfg.settle); err != nil {
			return err
		}
		if err := measure(ctx, serve.client, cfg, facts, &w); err != nil {
			return err
		}
		w.RSS, w.PeakRSS = serve.rss.current(), serve.rss.peak()
		w.Disk = diskUsage(data)
		if fake != nil {
			w.LLMCalls = fake.Stats().Calls
		}
		rep.wave(w)
	}
	return nil
}

// serveProcess is the kg serve child.
type serveProcess struct {
	cmd    *exec.Cmd
	client e2e.Client
	rss    *rssSampler
}

func startServe(ctx context.Context, kg, data string, env []string) (*serveProcess, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, kg, "serve", "--no-auth", "--data", data, "--http", addr, "--nats", "", "--log-level", "warn")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kg serve: %w", err)
	}
	p := &serveProcess{cmd: cmd, client: e2e.Client{Base: "http://" + addr, HTTP: &http.Client{Timeout: 2 * time.Minute}}}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := p.client.JSON(ctx, http.MethodGet, "/api/v1/health", nil)
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("kg serve did not become healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.rss = sampleRSS(ctx, cmd.Process.Pid)
	return p, nil
}

func (p *serveProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// waveReport is what one wave measured.
type waveReport struct {
	Docs       int                   `json:"documents"`
	TextBytes  int64                 `json:"text_bytes"`
	WaveSecs   float64               `json:"wave_seconds"`
	DocsPerSec float64               `json:"docs_per_second"`
	Settled    float64               `json:"settle_seconds"`
	Stats      map[string]any        `json:"stats"`
	Queries    map[string]modeReport `json:"queries"`
	RSS        int64                 `json:"rss_bytes"`
	PeakRSS    int64                 `json:"peak_rss_bytes"`
	Disk       diskReport            `json:"disk"`
	LLMCalls   map[string]int64      `json:"llm_calls,omitempty"`
}

// ingestWave submits the documents in batches and waits for every job.
func ingestWave(ctx context.Context, c e2e.Client, cfg config, docs []corpusgen.Document) (waveReport, error) {
	start := time.Now()
	var jobs []string
	for i := 0; i < len(docs); i += cfg.batch {
		var batch []map[string]any
		for _, d := range docs[i:min(i+cfg.batch, len(docs))] {
			batch = append(batch, map[string]any{"content": d.Text(), "namespace": cfg.namespace, "doc_id": d.ID})
		}
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/documents/batch", map[string]any{"documents": batch})
		if err != nil || r.Status != http.StatusAccepted {
			return waveReport{}, fmt.Errorf("submit batch: %v %s", err, r.Raw)
		}
		for _, j := range r.Body["jobs"].([]any) {
			jobs = append(jobs, j.(map[string]any)["job_id"].(string))
		}
	}
	for _, id := range jobs {
		job, err := c.WaitJob(ctx, id, time.Hour)
		if err != nil {
			return waveReport{}, err
		}
		if job["status"] != "completed" {
			return waveReport{}, fmt.Errorf("job %s ended %v: %v", id, job["status"], job["error"])
		}
	}
	secs := time.Since(start).Seconds()
	return waveReport{WaveSecs: secs, DocsPerSec: float64(len(docs)) / secs}, nil
}

// settle waits until the namespace's communities are built from its graph
// as it is, and returns how long that took after the wave's last job.
func settle(ctx context.Context, c e2e.Client, ns string, timeout time.Duration) (float64, error) {
	start := time.Now()
	for {
		r, err := c.JSON(ctx, http.MethodGet, "/api/v1/stats?namespace="+ns, nil)
		if err == nil && r.Status == http.StatusOK && r.Body["generation"] == r.Body["communities_generation"] {
			return time.Since(start).Seconds(), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start).Seconds(), nil // measured stale; the report says how long it waited
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// modeReport is one mode's uncached query latencies, and the share of its
// questions whose planted fact reached the context.
type modeReport struct {
	P50, P95, P99 float64 `json:"-"`
	Millis        []float64
	FactRecall    float64
}

func (m modeReport) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{"p50_ms": m.P50, "p95_ms": m.P95, "p99_ms": m.P99, "fact_recall": m.FactRecall})
}

func measure(ctx context.Context, c e2e.Client, cfg config, facts []corpusgen.Fact, w *waveReport) error {
	r, err := c.JSON(ctx, http.MethodGet, "/api/v1/stats?namespace="+cfg.namespace, nil)
	if err != nil || r.Status != http.StatusOK {
		return fmt.Errorf("stats: %v %s", err, r.Raw)
	}
	w.Stats = r.Body
	w.Queries = map[string]modeReport{}
	for _, mode := range []string{"local", "global", "naive"} {
		var m modeReport
		found := 0
		for i := range cfg.queries {
			// Spread over the whole corpus so far, old and new documents.
			fact := facts[(i*7919)%len(facts)]
			t0 := time.Now()
			r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{
				"namespace": cfg.namespace, "question": fact.Question, "mode": mode, "only_context": true, "no_cache": true})
			m.Millis = append(m.Millis, float64(time.Since(t0).Microseconds())/1000)
			if err != nil || r.Status != http.StatusOK {
				return fmt.Errorf("%s query: %v %s", mode, err, r.Raw)
			}
			if ctxText, _ := r.Body["context"].(string); strings.Contains(ctxText, fact.Answer) {
				found++
			}
		}
		m.P50, m.P95, m.P99 = percentile(m.Millis, 0.50), percentile(m.Millis, 0.95), percentile(m.Millis, 0.99)
		m.FactRecall = float64(found) / float64(cfg.queries)
		w.Queries[mode] = m
	}
	return nil
}
