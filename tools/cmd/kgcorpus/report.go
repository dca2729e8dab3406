package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(values))
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// rssSampler samples a process's VmRSS every 100 ms.
type rssSampler struct {
	mu        sync.Mutex
	last, max int64
}

func sampleRSS(ctx context.Context, pid int) *rssSampler {
	s := &rssSampler{}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := readRSS(pid); v > 0 {
				s.mu.Lock()
				s.last, s.max = v, max(s.max, v)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) current() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.last }
func (s *rssSampler) peak() int64    { s.mu.Lock(); defer s.mu.Unlock(); return s.max }
func (s *rssSampler) resetPeak()     { s.mu.Lock(); defer s.mu.Unlock(); s.max = s.last }

func readRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// diskReport is the data directory's size, and its largest files.
type diskReport struct {
	Total int64            `json:"total_bytes"`
	Files map[string]int64 `json:"largest_files"`
}

func diskUsage(dir string) diskReport {
	r := diskReport{Files: map[string]int64{}}
	type file struct {
		name string
		size int64
	}
	var files []file
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		r.Total += info.Size()
		files = append(files, file{rel, info.Size()})
		return nil
	})
	slices.SortFunc(files, func(a, b file) int { return int(b.size - a.size) })
	for _, f := range files[:min(len(files), 6)] {
		r.Files[f.name] = f.size
	}
	return r
}

type reporter struct {
	w    io.Writer
	json bool
}

func (r reporter) header(cfg config, args []string) {
	host, _ := os.Hostname()
	fmt.Fprintf(r.w, "machine: %s, %d cores, %s %s/%s\n", host, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(r.w, "command: kgcorpus %s\n", strings.Join(args, " "))
	fmt.Fprintf(r.w, "corpus: %+v, llm %s\n", cfg.corpus, cfg.llm)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r reporter) wave(w waveReport) {
	if r.json {
		b, _ := json.Marshal(w)
		fmt.Fprintln(r.w, string(b))
		return
	}
	q := func(m string) string {
		x := w.Queries[m]
		return fmt.Sprintf("%s p50/p95/p99 %.1f/%.1f/%.1f ms recall %.2f", m, x.P50, x.P95, x.P99, x.FactRecall)
	}
	fmt.Fprintf(r.w, "\n== %d documents (%.1f MB of text): wave %.1f s, %.1f docs/s, settled %.1f s later\n",
		w.Docs, float64(w.TextBytes)/1e6, w.WaveSecs, w.DocsPerSec, w.Settled)
	fmt.Fprintf(r.w, "   graph: %v entities, %v relations, %v chunks, %v communities (generation %v, communities built at %v)\n",
		w.Stats["entities"], w.Stats["relations"], w.Stats["chunks"], w.Stats["communities"], w.Stats["generation"], w.Stats["communities_generation"])
	fmt.Fprintf(r.w, "   queries: %s | %s | %s\n", q("local"), q("global"), q("naive"))
	fmt.Fprintf(r.w, "   kg serve RSS %.0f MiB (peak during the wave %.0f MiB)\n", mib(w.RSS), mib(w.PeakRSS))
	var files []string
	for _, name := range slices.Sorted(maps.Keys(w.Disk.Files)) {
		files = append(files, fmt.Sprintf("%s %.1f MB", name, float64(w.Disk.Files[name])/1e6))
	}
	fmt.Fprintf(r.w, "   disk %.1f MB = %.1f bytes per byte of text (%s)\n", float64(w.Disk.Total)/1e6,
		float64(w.Disk.Total)/float64(max(w.TextBytes, 1)), strings.Join(files, ", "))
	if len(w.LLMCalls) > 0 {
		var calls []string
		for _, k := range slices.Sorted(maps.Keys(w.LLMCalls)) {
			calls = append(calls, fmt.Sprintf("%s %d", k, w.LLMCalls[k]))
		}
		fmt.Fprintf(r.w, "   llm calls: %s\n", strings.Join(calls, ", "))
	}
}
