package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

// kgServe is a running `kg serve` child process.
type kgServe struct {
	cmd *exec.Cmd
	// pprofAddr serves kg serve's profiles (empty unless -profile-dir).
	pprofAddr string
	// apiKey is sent with every request (empty: none).
	apiKey string
	exited chan error // receives cmd.Wait's result once
	base   string
	client e2e.Client
	dir    string
}

// startServe starts kg serve on a temporary data directory and a free port
// and waits until /api/v1/health/ready answers 200.
func startServe(ctx context.Context, cfg config, logs io.Writer) (*kgServe, error) {
	dir, err := os.MkdirTemp("", "kgload-")
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"serve", "--data", dir, "--http", addr, "--nats", "", "--log-level", "warn"}
	env := os.Environ()
	apiKey := cfg.APIKey
	switch cfg.Auth {
	case authGenerate:
		keys, secret, err := generatedKey(cfg.KeyRateLimit)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		env = append(withoutAuthEnv(env), "KG_API_KEYS="+keys)
		apiKey = secret
	case authOff:
		env = withoutAuthEnv(env)
		args = append(args, "--no-auth")
	}
	args = append(args, cfg.ServeArgs...)
	var pprofAddr string
	if cfg.ProfileDir != "" {
		if pprofAddr, err = freeAddr(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "--pprof", pprofAddr)
	}
	cmd := exec.CommandContext(ctx, cfg.KGPath, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start kg serve: %w", err)
	}
	s := &kgServe{cmd: cmd, pprofAddr: pprofAddr, apiKey: apiKey, exited: make(chan error, 1), base: "http://" + addr, dir: dir}
	s.client = e2e.Client{Base: s.base, HTTP: &http.Client{
		Timeout:   cfg.Timeout,
		Transport: keyTransport{header: cfg.APIKeyHeader, key: apiKey, next: http.DefaultTransport},
	}}
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := s.client.JSON(ctx, http.MethodGet, "/api/v1/health/ready", nil)
		if err == nil && r.Status == http.StatusOK {
			return s, nil
		}
		select {
		case werr := <-s.exited:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("kg serve exited before it was ready: %v", werr)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("kg serve not ready after 60s (last: %v %s)", err, r.Raw)
		}
	}
}

// stop ends kg serve with SIGTERM (SIGKILL after 15 s) and removes its data.
func (s *kgServe) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

func (s *kgServe) pid() int { return s.cmd.Process.Pid }

// ingest submits a generated document and waits until its job completes, so
// the queries have a graph to read.
func (s *kgServe) ingest(ctx context.Context, cfg config) (corpusInfo, error) {
	text := e2e.Corpus(5, cfg.CorpusTokens)
	start := time.Now()
	r, err := s.client.JSON(ctx, http.MethodPost, "/api/v1/documents", map[string]any{"content": text, "namespace": cfg.Namespace})
	if err != nil {
		return corpusInfo{}, fmt.Errorf("submit document: %w", err)
	}
	if r.Status != http.StatusAccepted {
		return corpusInfo{}, fmt.Errorf("submit document: %d %s", r.Status, r.Raw)
	}
	jobID, _ := r.Body["job_id"].(string)
	job, err := s.client.WaitJob(ctx, jobID, 5*time.Minute)
	if err != nil {
		return corpusInfo{}, fmt.Errorf("wait for the ingestion job: %w", err)
	}
	if job["status"] != "completed" {
		return corpusInfo{}, fmt.Errorf("ingestion job ended %v: %v", job["status"], job["error"])
	}
	info := corpusInfo{Bytes: len(text), ApproxTokens: cfg.CorpusTokens, JobID: jobID, IngestWall: time.Since(start)}
	if p, ok := job["progress"].(map[string]any); ok {
		if n, ok := p["chunks_total"].(float64); ok {
			info.Chunks = int(n)
		}
	}
	return info, nil
}

// warmQuery asks q until two answers in a row, half a second apart, come
// from the response cache. The graph-writer rebuilds the communities after
// the job completes, which changes the cache key, so a single warm-up call
// right after ingestion may be answered again later instead of from cache.
func (s *kgServe) warmQuery(ctx context.Context, body []byte) error {
	deadline := time.Now().Add(2 * time.Minute)
	inARow := 0
	for time.Now().Before(deadline) {
		r, err := s.client.Do(ctx, http.MethodPost, "/api/v1/query", "application/json", body)
		if err != nil {
			return fmt.Errorf("warm-up query: %w", err)
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("warm-up query: %d %s", r.Status, r.Raw)
		}
		if cached, _ := r.Body["cached"].(bool); cached {
			inARow++
		} else {
			inARow = 0
		}
		if inARow == 2 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return errors.New("the warm-up query was never answered from the cache")
}

// profileCPU fetches a CPU profile of kg serve over d into path.
func profileCPU(ctx context.Context, pprofAddr string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, max(int(d.Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("write cpu profile %s: %w", path, err)
	}
	return f.Close()
}

// generatedKey makes a random API key and the KG_API_KEYS value that
// configures kg serve with it: an admin of every namespace, so every
// request passes the edge's whole authentication and authorisation path.
func generatedKey(ratePerMinute int) (keys, secret string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate an API key: %w", err)
	}
	secret = "kgload_" + hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	raw, err := json.Marshal([]map[string]any{{
		"id": "kgload", "sha256": hex.EncodeToString(sum[:]), "client_id": "kgload",
		"namespaces": []string{"*"}, "role": "admin", "rate_limit_per_minute": ratePerMinute,
	}})
	if err != nil {
		return "", "", fmt.Errorf("encode the API key: %w", err)
	}
	return string(raw), secret, nil
}

// withoutAuthEnv drops the authentication settings kg serve would
// otherwise inherit from this process's environment.
func withoutAuthEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == "KG_API_KEYS" || name == "KG_API_KEYS_FILE" || name == "KG_AUTH_DISABLED"
	})
}

// keyTransport adds the API key to every request.
type keyTransport struct {
	header, key string
	next        http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.key == "" {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set(t.header, t.key)
	return t.next.RoundTrip(r)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func queryBody(question, namespace string, onlyContext, noCache bool) []byte {
	b, _ := json.Marshal(map[string]any{"question": question, "mode": "local", "namespace": namespace,
		"only_context": onlyContext, "no_cache": noCache})
	return b
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

// machineBusy reads the CPU time all cores spent busy (everything but idle
// and I/O wait) from /proc/stat (0 where that is unavailable).
func machineBusy() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		// guest and guest_nice are already counted in user and nice.
		if i >= 8 {
			break
		}
		n, _ := strconv.ParseInt(f, 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// cachedReply reports whether a query reply says it came from the cache.
func cachedReply(body []byte) bool { return bytes.Contains(body, []byte(`"cached":true`)) }
