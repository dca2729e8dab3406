// Command kgbench measures indexing through `kg serve` with the fake LLM:
// wall time against the bound calls × latency / concurrency, LLM calls per
// chunk, the pipeline's overhead per chunk and the peak RSS of kg serve. It
// runs kg serve as a child process, so the RSS is kg serve's alone.
//
//	go build -o bin/kg ./tools/cmd/kg
//	go run ./tools/cmd/kgbench -kg bin/kg -corpus ../shared/corpus/christmas_carol.txt -latency 200ms -concurrency 16
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/tools/fakellm"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kgbench:", err)
		os.Exit(1)
	}
}

type result struct {
	Chunks int
	Calls  int64
	Wall   time.Duration
	// ServeCPU and BenchCPU are the CPU time kg serve and this process (the
	// fake LLM) spent from the submission until the job completed; on a
	// shared machine they vary less than the wall time.
	ServeCPU, BenchCPU time.Duration
	Bound              time.Duration
	PeakRSSBytes       int64
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kgbench", flag.ContinueOnError)
	kgPath := fs.String("kg", "bin/kg", "path of the kg binary")
	corpus := fs.String("corpus", "", "text file to index (required)")
	mode := fs.String("mode", fakellm.ModeReplay, "fake LLM mode: replay or heuristic")
	replay := fs.String("replay", "", "recorded responses for replay mode (default: beside the corpus)")
	latency := fs.Duration("latency", 200*time.Millisecond, "fake LLM latency per call")
	concurrency := fs.Int("concurrency", 16, "concurrent LLM calls (fake LLM limit = kgraph's provider limit)")
	gleaning := fs.Int("gleaning", 1, "gleaning rounds")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of kgbench itself (the fake LLM) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *corpus == "" {
		return errors.New("-corpus is required")
	}
	text, err := os.ReadFile(*corpus)
	if err != nil {
		return err
	}
	if *mode == fakellm.ModeReplay && *replay == "" {
		*replay = filepath.Join(filepath.Dir(*corpus), "christmas_carol_gpt4o_responses.json")
	}
	fake, err := fakellm.New(fakellm.Config{Mode: *mode, ReplayPath: *replay, Latency: *latency, MaxConcurrency: *concurrency, Seed: 1})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	llmSrv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = llmSrv.Serve(ln) }()
	defer llmSrv.Close()

	res, err := index(ctx, *kgPath, string(text), "http://"+ln.Addr().String()+"/v1", *concurrency, *gleaning, fake)
	if err != nil {
		return err
	}
	res.Bound = time.Duration(res.Calls) * *latency / time.Duration(*concurrency)
	fmt.Fprintf(stdout, "machine: %d cores, %s, %s/%s\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "command: kgbench %s\n", strings.Join(args, " "))
	fmt.Fprintf(stdout, "corpus: %s (%d bytes), fake LLM %s, latency %s, concurrency %d, gleaning %d\n", *corpus, len(text), *mode, *latency, *concurrency, *gleaning)
	fmt.Fprintf(stdout, "chunks: %d\nllm calls: %d (%.2f per chunk)\n", res.Chunks, res.Calls, float64(res.Calls)/float64(max(res.Chunks, 1)))
	fmt.Fprintf(stdout, "wall: %s\n", res.Wall.Round(time.Millisecond))
	if res.Bound > 0 {
		fmt.Fprintf(stdout, "bound (calls × latency / concurrency): %s\nratio wall/bound: %.3f\n", res.Bound.Round(time.Millisecond), float64(res.Wall)/float64(res.Bound))
	}
	fmt.Fprintf(stdout, "per chunk: %.2f ms\n", float64(res.Wall.Microseconds())/1000/float64(max(res.Chunks, 1)))
	fmt.Fprintf(stdout, "cpu until completed: kg serve %s (%.2f ms per chunk), fake LLM %s\n",
		res.ServeCPU.Round(time.Millisecond), float64(res.ServeCPU.Microseconds())/1000/float64(max(res.Chunks, 1)), res.BenchCPU.Round(time.Millisecond))
	fmt.Fprintf(stdout, "kg serve peak RSS: %.1f MiB\n", float64(res.PeakRSSBytes)/(1<<20))
	return nil
}

func index(ctx context.Context, kgPath, text, llmURL string, concurrency, gleaning int, fake *fakellm.Server) (result, error) {
	dir, err := os.MkdirTemp("", "kgbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	httpAddr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, kgPath, "serve", "--no-auth", "--data", dir, "--http", httpAddr, "--nats", "", "--log-level", "warn")
	cmd.Env = append(os.Environ(),
		"KG_LLM_BASE_URL="+llmURL, "KG_LLM_API_KEY=bench", "KG_LLM_MODEL=fakellm",
		"KG_LLM_MAX_CONCURRENCY="+strconv.Itoa(concurrency), "KG_GLEANING="+strconv.Itoa(gleaning))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start kg serve: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	client := e2e.Client{Base: "http://" + httpAddr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := client.JSON(ctx, http.MethodGet, "/api/v1/health", nil)
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return result{}, errors.New("kg serve did not become healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fake.Reset()
	serveCPU0, benchCPU0 := processCPU(cmd.Process.Pid), selfCPU()
	start := time.Now()
	r, err := client.JSON(ctx, http.MethodPost, "/api/v1/documents", map[string]any{"content": text, "namespace": "bench"})
	if err != nil || r.Status != http.StatusAccepted {
		return result{}, fmt.Errorf("submit: %v %s", err, r.Raw)
	}
	job, err := client.WaitJob(ctx, r.Body["job_id"].(string), 30*time.Minute)
	if err != nil {
		return result{}, err
	}
	wall := time.Since(start)
	serveCPU, benchCPU := processCPU(cmd.Process.Pid)-serveCPU0, selfCPU()-benchCPU0
	if job["status"] != "completed" {
		return result{}, fmt.Errorf("job ended %v: %v", job["status"], job["error"])
	}
	stats := fake.Stats()
	return result{
		Chunks: int(job["progress"].(map[string]any)["chunks_total"].(float64)),
		// Extraction calls only: community reports start as soon as the job
		// completes and are not part of indexing's critical path.
		Calls:        stats.Calls["extraction"] + stats.Calls["extraction_json"] + stats.Calls["glean_continue"] + stats.Calls["glean_loop"],
		Wall:         wall,
		ServeCPU:     serveCPU,
		BenchCPU:     benchCPU,
		PeakRSSBytes: peakRSS(cmd.Process.Pid),
	}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// processCPU reads the user and system CPU time of a process from
// /proc/PID/stat (0 where that is unavailable).
func processCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are fixed.
	_, rest, ok := strings.Cut(string(raw), ") ")
	if !ok {
		return 0
	}
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// Linux reports clock ticks of 1/100 s (USER_HZ) on every common platform.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads VmHWM (the resident set's high-water mark) of a process.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
