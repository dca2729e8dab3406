package multiproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

// proxy forwards TCP to a backend and can cut it off, as an outage or a
// network partition would: open connections are dropped and new ones closed
// at once until it is up again.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *proxy) pipe(c net.Conn) {
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
	}
}

// startRedis runs a redis-server child process for the test.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is needed: apt-get install redis-server (make test installs it)")
	port := freePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = t.TempDir()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	return addr
}

// withoutChunkIDs drops what depends on the namespace (chunk ids are derived
// from it), so graphs built in two namespaces can be compared.
func withoutChunkIDs(s graph.Snapshot) graph.Snapshot {
	for i := range s.Entities {
		s.Entities[i].ChunkIDs = nil
	}
	for i := range s.Relations {
		s.Relations[i].ChunkIDs = nil
	}
	return s
}

func neo4jSnapshot(t *testing.T, uri, namespace string) graph.Snapshot {
	t.Helper()
	s, err := neo4jgraph.Open(context.Background(), neo4jgraph.Config{URI: uri})
	require.NoError(t, err)
	defer s.Close()
	snap, err := s.Snapshot(context.Background(), namespace)
	require.NoError(t, err)
	return withoutChunkIDs(snap)
}

func ready(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/health/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Issue 4: the flow as separate processes on Neo4j + Redis, and outages of
// each mid-ingest: health says so, consumers back off instead of
// dead-lettering, and after the outage the job completes with the graph of
// an uninterrupted run.
func TestProductionBackendsAndOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs eight processes against Neo4j and Redis")
	}
	neo4jURI := os.Getenv("NEO4J_URI")
	if neo4jURI == "" {
		if os.Getenv("KG_SKIP_NEO4J") == "1" {
			t.Skip("KG_SKIP_NEO4J=1")
		}
		t.Fatal("NEO4J_URI is not set: start the Neo4j test server (make neo4j-start, or make test which starts it)")
	}
	u, err := url.Parse(neo4jURI)
	require.NoError(t, err)
	neo := newProxy(t, u.Host)
	redis := newProxy(t, startRedis(t))
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)

	bin := buildBinaries(t)
	graphWriterOps := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := newClusterWith(t, bin, func(service string) []string {
		env := []string{"KG_GRAPH_STORE=neo4j", "NEO4J_URI=bolt://" + neo.addr(), "KG_KV_STORE=redis", "REDIS_URL=redis://" + redis.addr() + "/0"}
		if service == "graph-writer" {
			env = append(env, "KG_METRICS_ADDR="+graphWriterOps)
		}
		return env
	})
	cl := c.client()
	ctx := context.Background()
	doc := e2e.Corpus(31, 120_000)

	ingest := func(ns string) string {
		return c.submit(map[string]any{"content": doc, "doc_id": "big", "namespace": ns})
	}
	waitQuarter := func(jobID string) {
		require.Eventually(t, func() bool {
			r, err := cl.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+jobID, nil)
			if err != nil || r.Status != http.StatusOK {
				return false
			}
			p := r.Body["progress"].(map[string]any)
			return p["chunks_total"].(float64) > 0 && p["chunks_processed"].(float64) >= p["chunks_total"].(float64)/4
		}, 2*time.Minute, 10*time.Millisecond)
	}

	// Uninterrupted reference run.
	refNS := "ref" + run
	job, err := cl.WaitJob(ctx, ingest(refNS), 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	want := neo4jSnapshot(t, neo4jURI, refNS)
	require.NotEmpty(t, want.Entities)
	for _, mode := range []string{"naive", "local"} {
		r, err := cl.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{"question": "Who met Charles Babbage?", "mode": mode, "namespace": refNS})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.NotEmpty(t, r.Body["references"].(map[string]any)["chunks"])
	}

	// Neo4j unreachable for 30 s in the middle of an ingest.
	// edgeSays reports whether the edge's health gives backend status,
	// and the whole is not healthy when a backend is not.
	edgeSays := func(backend, status string) bool {
		r, err := cl.JSON(ctx, http.MethodGet, "/api/v1/health", nil)
		if err != nil {
			return false
		}
		bs, _ := r.Body["backends"].(map[string]any)
		b, _ := bs[backend].(map[string]any)
		return b != nil && b["status"] == status && (status == "healthy" || r.Body["status"] != "healthy")
	}
	neoNS := "neo" + run
	jobID := ingest(neoNS)
	waitQuarter(jobID)
	// The edge opens no graph store of its own: it asks the query service.
	require.True(t, edgeSays("neo4j", "healthy"), "the edge's health must list Neo4j")
	neo.setDown(true)
	require.Eventually(t, func() bool { return ready(t, graphWriterOps) == http.StatusServiceUnavailable }, 20*time.Second, 100*time.Millisecond,
		"graph-writer must report not ready while Neo4j is unreachable")
	require.Eventually(t, func() bool { return edgeSays("neo4j", "unhealthy") }, 20*time.Second, 100*time.Millisecond,
		"the edge's health must show Neo4j unhealthy")
	time.Sleep(30 * time.Second)
	neo.setDown(false)
	require.Eventually(t, func() bool { return ready(t, graphWriterOps) == http.StatusOK }, 60*time.Second, 200*time.Millisecond)
	job, err = cl.WaitJob(ctx, jobID, 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.Equal(t, want, neo4jSnapshot(t, neo4jURI, neoNS), "graph after a Neo4j outage differs from the uninterrupted run")

	// Redis unreachable for 30 s in the middle of an ingest.
	redisNS := "redis" + run
	jobID = ingest(redisNS)
	waitQuarter(jobID)
	redis.setDown(true)
	require.Eventually(t, func() bool { return edgeSays("redis", "unhealthy") }, 20*time.Second, 100*time.Millisecond,
		"the edge's health must show Redis unhealthy")
	time.Sleep(30 * time.Second)
	redis.setDown(false)
	job, err = cl.WaitJob(ctx, jobID, 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.Equal(t, want, neo4jSnapshot(t, neo4jURI, redisNS), "graph after a Redis outage differs from the uninterrupted run")

	require.Zero(t, c.deadLetters(), "an outage must not dead-letter anything")
}
