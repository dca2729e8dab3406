package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rssSampler reads a process's resident set size at a fixed interval.
type rssSampler struct {
	done    chan struct{}
	samples chan []int64
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), samples: make(chan []int64, 1)}
	go func() {
		var out []int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := readRSS(pid); err == nil {
				out = append(out, n)
			}
			select {
			case <-s.done:
				s.samples <- out
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the samples in bytes.
func (s *rssSampler) stop() []int64 {
	close(s.done)
	return <-s.samples
}

func readRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of process %d: %w", pid, err)
	}
	return parseVmRSS(raw)
}

// parseVmRSS finds VmRSS in the text of /proc/PID/status and returns it in
// bytes.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.TrimSpace(unit) != "kB" {
			return 0, fmt.Errorf("VmRSS in unit %q, want kB", unit)
		}
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", num, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// rssReport summarises RSS samples in MiB.
type rssReport struct {
	PeakMiB   float64 `json:"peak_mib"`
	MedianMiB float64 `json:"median_mib"`
	Samples   int     `json:"samples"`
}

func summarizeRSS(samples []int64) rssReport {
	if len(samples) == 0 {
		return rssReport{}
	}
	sorted := slices.Sorted(slices.Values(samples))
	return rssReport{PeakMiB: mib(sorted[len(sorted)-1]), MedianMiB: mib(percentile(sorted, 0.5)), Samples: len(sorted)}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
