package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// cachedQuestion is asked again and again in the cached-query runs; the
// generated corpus names these people in every chunk.
const cachedQuestion = "How is Ada Lovelace connected to Charles Babbage?"

// measure runs every phase and returns the report.
func measure(ctx context.Context, cfg config, command string, logs io.Writer) (report, error) {
	rep := report{Date: time.Now().UTC(), Command: command, Machine: machine(cfg), Note: sharedCoresNote}

	chiURL, chiSized, stopChi, err := startChi()
	if err != nil {
		return report{}, err
	}
	defer stopChi()

	fmt.Fprintln(logs, "kgload: starting kg serve")
	srv, err := startServe(ctx, cfg, logs)
	if err != nil {
		return report{}, err
	}
	defer srv.stop()
	fmt.Fprintln(logs, "kgload: ingesting the generated document")
	if rep.Corpus, err = srv.ingest(ctx, cfg); err != nil {
		return report{}, err
	}
	cachedBody := queryBody(cachedQuestion, cfg.Namespace, false, false)
	fmt.Fprintln(logs, "kgload: warming the query cache")
	if err := srv.warmQuery(ctx, cachedBody); err != nil {
		return report{}, err
	}
	// The second baseline sends the cached answer's own bytes, so the
	// difference to it is the edge's work rather than the reply's size.
	answer, err := srv.client.Do(ctx, http.MethodPost, "/api/v1/query", "application/json", cachedBody)
	if err != nil || answer.Status != http.StatusOK {
		return report{}, fmt.Errorf("fetch the cached answer: %v (status %d)", err, answer.Status)
	}
	chiSized.reply.Store(&answer.Raw)
	// The uncached run asks about these people in turn, so consecutive
	// requests do not ask the same thing.
	people := []string{"Ada Lovelace", "Charles Babbage", "Mary Somerville", "Michael Faraday", "George Boole",
		"Florence Nightingale", "Charles Dickens", "Humphry Davy"}
	uncached := make([][]byte, len(people))
	for i, p := range people {
		uncached[i] = queryBody("What did "+p+" do, and with whom?", cfg.Namespace, true, true)
	}
	if err := checkUncached(ctx, srv, uncached[0]); err != nil {
		return report{}, err
	}
	if idle, err := readRSS(srv.pid()); err == nil {
		rep.IdleRSSMiB = mib(idle)
	}

	header := http.Header{"Content-Type": {"application/json"}}
	if srv.apiKey != "" {
		header.Set(cfg.APIKeyHeader, srv.apiKey)
	}
	get := func(url string) []vegeta.Target {
		return []vegeta.Target{{Method: http.MethodGet, URL: url, Header: header}}
	}
	post := func(url string, bodies ...[]byte) []vegeta.Target {
		ts := make([]vegeta.Target, len(bodies))
		for i, b := range bodies {
			ts[i] = vegeta.Target{Method: http.MethodPost, URL: url, Body: b, Header: header}
		}
		return ts
	}
	healthURL, queryURL := srv.base+"/api/v1/health", srv.base+"/api/v1/query"
	onKG := func(p phase) phase {
		p.ServePID, p.PprofAddr = srv.pid(), srv.pprofAddr
		return p
	}
	phases := []phase{
		{Name: phaseChi, Description: "bare chi handler in the generator's process, small JSON reply", Targets: get(chiURL), Rate: cfg.MaxRate},
		{Name: phaseChiSized, Description: "bare chi handler answering a POST with the cached answer's bytes", Targets: post(chiSized.url, cachedBody), Rate: cfg.MaxRate},
		onKG(phase{Name: phaseHealth, Description: "edge health: NATS, KV, graph and vector store checks", Targets: get(healthURL), Rate: cfg.MaxRate}),
		onKG(phase{Name: phaseQueryCached, Description: "local query answered from the response cache (same question)", Targets: post(queryURL, cachedBody),
			Rate: cfg.MaxRate, CountCached: true}),
	}
	if cfg.PacedRate > 0 {
		phases = append(phases,
			phase{Name: phaseChiPaced, Description: "bare chi at a fixed rate", Targets: get(chiURL), Rate: cfg.PacedRate},
			onKG(phase{Name: phaseHealthPaced, Description: "edge health at a fixed rate", Targets: get(healthURL), Rate: cfg.PacedRate}),
			onKG(phase{Name: phaseQueryCachedPaced, Description: "cached local query at a fixed rate", Targets: post(queryURL, cachedBody),
				Rate: cfg.PacedRate, CountCached: true}))
	}
	if cfg.UncachedRate > 0 {
		phases = append(phases, onKG(phase{Name: phaseQueryUncachedPaced,
			Description: fmt.Sprintf("local query, no_cache and only_context (retrieval and context, no LLM), %d questions in turn", len(uncached)),
			Targets:     post(queryURL, uncached...), Rate: cfg.UncachedRate, CountCached: true}))
	}
	for _, p := range phases {
		fmt.Fprintf(logs, "kgload: %s (rate %s) for %s\n", p.Name, rateName(p.Rate), cfg.Duration)
		res, err := runPhase(ctx, cfg, p)
		if err != nil {
			return report{}, err
		}
		rep.Phases = append(rep.Phases, res)
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	rep.LoadRSS = loadRSS(rep.Phases)
	rep.Ratios, rep.Checks = evaluate(rep.Phases, cfg.TargetRatio, cfg.TargetP95)
	return rep, nil
}

func rateName(r int) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%d/s", r)
}

// checkUncached asks one uncached question, so a broken request fails the
// run before its measurement starts.
func checkUncached(ctx context.Context, srv *kgServe, body []byte) error {
	r, err := srv.client.Do(ctx, http.MethodPost, "/api/v1/query", "application/json", body)
	if err != nil {
		return fmt.Errorf("uncached query: %w", err)
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("uncached query: %d %s", r.Status, r.Raw)
	}
	if cached, _ := r.Body["cached"].(bool); cached {
		return errors.New("uncached query: answered from the cache despite no_cache")
	}
	return nil
}

// sizedBaseline is the chi route that answers with a reply set later.
type sizedBaseline struct {
	url   string
	reply atomic.Pointer[[]byte]
}

// startChi serves the baselines: a bare chi router with one handler writing
// a small JSON reply, and one that reads a POST body and writes a reply of
// a query answer's size, on a loopback port.
func startChi() (string, *sizedBaseline, func(), error) {
	reply := []byte(`{"status":"healthy","backends":{}}` + "\n")
	sized := &sizedBaseline{}
	r := chi.NewRouter()
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
	})
	r.Post("/answer", func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		if b := sized.reply.Load(); b != nil {
			_, _ = w.Write(*b)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, fmt.Errorf("chi baseline listen: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	sized.url = base + "/answer"
	return base + "/health", sized, func() { _ = srv.Close() }, nil
}

func machine(cfg config) machineInfo {
	m := machineInfo{CPUModel: cpuModel(), Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), ServeGoVersion: "unknown", Kernel: runtime.GOOS + "/" + runtime.GOARCH,
		ServeArgs: strings.Join(cfg.ServeArgs, " "), Auth: cfg.Auth, LoadAvgStart: loadAvg()}
	// kg serve inherits the environment; without GOMAXPROCS, Go uses every core.
	m.ServeGOMAXPROCS = os.Getenv("GOMAXPROCS")
	if m.ServeGOMAXPROCS == "" {
		m.ServeGOMAXPROCS = fmt.Sprintf("%d (default)", runtime.NumCPU())
	}
	if bi, err := buildinfo.ReadFile(cfg.KGPath); err == nil {
		m.ServeGoVersion = bi.GoVersion
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = runtime.GOOS + " " + strings.TrimSpace(string(rel)) + " " + runtime.GOARCH
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				_, _ = fmt.Sscan(strings.TrimSpace(v), &kb)
				break
			}
		}
		m.MemTotalGiB = int((kb + 1<<19) >> 20)
	}
	return m
}

// loadAvg is the one-minute load average.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(raw), " ")
	return first
}
