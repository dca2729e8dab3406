// Package multiproc runs kgraph as seven separate processes around an
// external nats-server, as in production, and checks the flow end to end,
// including recovery from kill -9.
package multiproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

var services = []string{"ingest-api", "dedup", "extractor", "graph-writer", "vector-indexer", "query", "projection"}

// buildBinaries builds the seven services, each in its own module, and
// nats-server (a tool of the tools module), once per test.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	build := func(moduleDir string, args ...string) {
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, args...)...)
		cmd.Dir = moduleDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "build %v in %s: %s", args, moduleDir, out)
	}
	build(filepath.Join(root, "tools"), "github.com/nats-io/nats-server/v2")
	for _, s := range services {
		build(filepath.Join(root, "services", s), "./cmd/"+s)
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster is one deployment: a nats-server and the seven services.
type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	natsURL string
	http    string
	mu      sync.Mutex
	procs   map[string]*proc
	// extraEnv adds per-service environment (backends).
	extraEnv func(service string) []string
}

// proc is a started process; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func newCluster(t *testing.T, bin string) *cluster { return newClusterWith(t, bin, nil) }

// newClusterWith starts a cluster whose services get extra environment
// variables from extraEnv (by service name).
func newClusterWith(t *testing.T, bin string, extraEnv func(service string) []string) *cluster {
	dir := t.TempDir()
	c := &cluster{t: t, bin: bin, dir: dir, procs: map[string]*proc{}, extraEnv: extraEnv}
	natsPort := freePort(t)
	c.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	c.start("nats-server", filepath.Join(bin, "nats-server"), []string{"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort), "-sd", filepath.Join(dir, "nats")}, nil)
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(c.natsURL)
		if err == nil {
			nc.Close()
		}
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "nats-server did not start")
	c.http = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, s := range services {
		c.startService(s)
	}
	cl := c.client()
	require.Eventually(t, func() bool {
		r, err := cl.JSON(context.Background(), http.MethodGet, "/api/v1/health", nil)
		return err == nil && r.Status == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "ingest-api did not become healthy")
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) env(service string) []string {
	env := append(os.Environ(),
		"NATS_URL="+c.natsURL,
		"KG_DATA_DIR="+filepath.Join(c.dir, "data"),
		"KG_HTTP_ADDR="+c.http,
		"KG_ACK_WAIT=2s",
		"KG_CONCURRENCY=2",
		"KG_LOG_LEVEL=warn",
		"KG_METRICS_ADDR=127.0.0.1:0",
		// Production mode: API keys on, as in the manifests.
		`KG_API_KEYS=[{"id":"multiproc","sha256":"`+ingestapi.HashAPIKey(multiprocKey)+`","client_id":"multiproc","namespaces":["*"],"role":"admin","rate_limit_per_minute":-1}]`,
	)
	if c.extraEnv != nil {
		env = append(env, c.extraEnv(service)...) // later entries win
	}
	return env
}

func (c *cluster) startService(name string) {
	require.NoError(c.t, os.MkdirAll(filepath.Join(c.dir, "data"), 0o755))
	c.start(name, filepath.Join(c.bin, name), nil, c.env(name))
}

func (c *cluster) start(name, path string, args, env []string) {
	logf, err := os.OpenFile(filepath.Join(c.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(c.t, err)
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(c.t, cmd.Start(), name)
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
}

// kill9 kills a process without letting it clean up.
func (c *cluster) kill9(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	require.NoError(c.t, p.cmd.Process.Signal(syscall.SIGKILL), name)
	<-p.done
}

// stopAll stops the services with SIGTERM (they drain), then nats-server.
func (c *cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := func(p *proc) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			c.t.Errorf("%s did not stop within 20s of SIGTERM", p.cmd.Path)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	for name, p := range c.procs {
		if name != "nats-server" {
			stop(p)
		}
	}
	if p, ok := c.procs["nats-server"]; ok {
		stop(p)
	}
	if c.t.Failed() {
		for _, s := range append(services, "nats-server") {
			b, _ := os.ReadFile(filepath.Join(c.dir, s+".log"))
			c.t.Logf("---- %s log (tail) ----\n%s", s, tail(string(b), 3000))
		}
	}
	c.procs = map[string]*proc{}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// multiprocKey is the API key the tests' client sends.
const multiprocKey = "kg_multiproc_test_key"

func (c *cluster) client() e2e.Client {
	return e2e.Client{Base: "http://" + c.http, APIKey: multiprocKey}
}

func (c *cluster) submit(body map[string]any) string {
	r, err := c.client().JSON(context.Background(), http.MethodPost, "/api/v1/documents", body)
	require.NoError(c.t, err)
	require.Equal(c.t, http.StatusAccepted, r.Status, string(r.Raw))
	return r.Body["job_id"].(string)
}

func (c *cluster) deadLetters() uint64 {
	nc, err := nats.Connect(c.natsURL)
	require.NoError(c.t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(c.t, err)
	st, err := js.Stream(context.Background(), bus.StreamDeadLetter)
	require.NoError(c.t, err)
	info, err := st.Info(context.Background())
	require.NoError(c.t, err)
	return info.State.Msgs
}

func (c *cluster) snapshot(namespace string) any {
	s, err := sqlitegraph.Open(context.Background(), filepath.Join(c.dir, "data", "graph.db"))
	require.NoError(c.t, err)
	defer s.Close()
	snap, err := s.Snapshot(context.Background(), namespace)
	require.NoError(c.t, err)
	return snap
}

// Tests 2 and 3: the flow as seven processes, then kill -9 of the extractor
// and the graph-writer mid-job; the graph must equal the uninterrupted run's.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs eight processes")
	}
	bin := buildBinaries(t)
	ctx := context.Background()
	big := e2e.Corpus(7, 200_000) // ~180 chunks: long enough to kill mid-job

	// Uninterrupted run.
	clean := newCluster(t, bin)
	cl := clean.client()
	jobID := clean.submit(map[string]any{"content": e2e.Corpus(1, 44_000), "doc_id": "corpus-1"})
	job, err := cl.WaitJob(ctx, jobID, 3*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	p := job["progress"].(map[string]any)
	require.Equal(t, p["chunks_total"], p["chunks_processed"])
	for _, mode := range []string{"naive", "local"} {
		r, err := cl.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{"question": "Who met Charles Babbage?", "mode": mode})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		chunks := r.Body["references"].(map[string]any)["chunks"].([]any)
		require.NotEmpty(t, chunks)
		require.Equal(t, "corpus-1", chunks[0].(map[string]any)["doc_id"])
	}
	refJob := clean.submit(map[string]any{"content": big, "doc_id": "big", "namespace": "crash"})
	job, err = cl.WaitJob(ctx, refJob, 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	want := clean.snapshot("crash")
	clean.stopAll()

	// The same input with the extractor and graph-writer killed mid-job.
	crash := newCluster(t, bin)
	cc := crash.client()
	crashJob := crash.submit(map[string]any{"content": big, "doc_id": "big", "namespace": "crash"})
	var atKill map[string]any
	require.Eventually(t, func() bool {
		r, err := cc.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+crashJob, nil)
		if err != nil || r.Status != http.StatusOK {
			return false
		}
		pr := r.Body["progress"].(map[string]any)
		// A quarter of the way in: work is in flight in every stage.
		if pr["chunks_processed"].(float64) >= pr["chunks_total"].(float64)/4 && pr["chunks_total"].(float64) > 0 {
			atKill = r.Body
			return true
		}
		return false
	}, 2*time.Minute, 5*time.Millisecond)
	crash.kill9("extractor")
	crash.kill9("graph-writer")
	pr := atKill["progress"].(map[string]any)
	require.Less(t, pr["chunks_processed"].(float64), pr["chunks_total"].(float64), "the kill must land mid-job")
	time.Sleep(500 * time.Millisecond)
	crash.startService("extractor")
	crash.startService("graph-writer")
	job, err = cc.WaitJob(ctx, crashJob, 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.Equal(t, job["progress"].(map[string]any)["chunks_total"], job["progress"].(map[string]any)["chunks_processed"])
	require.Zero(t, crash.deadLetters(), "a crash must not dead-letter anything")
	got := crash.snapshot("crash")
	require.Equal(t, want, got, "graph after kill -9 and restart differs from the uninterrupted run")
	t.Logf("killed at %v of %v chunks processed", pr["chunks_processed"], pr["chunks_total"])
}
