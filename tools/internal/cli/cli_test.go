package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/libs/bus"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/cli"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// TestMain checks for goroutine leaks. One goroutine is ignored by name:
// the object store's Put (nats.go v1.55.0) starts a publisher status
// goroutine and stops it at once, and when the stop wins the race the
// goroutine waits on a nil channel for good (jetstream/publish.go
// resetPendingAcksOnReconnect against cleanupReplySub). It is nats.go's and
// holds nothing of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

// startKgraph runs a real kgraph in-process, authentication off, and
// returns its REST URL.
func startKgraph(t *testing.T) string {
	t.Helper()
	return startKgraphWith(t, func(*serve.Config) {})
}

// startKgraphWith runs a real kgraph in-process with the configuration
// adjusted by configure and returns its REST URL.
func startKgraphWith(t *testing.T, configure func(*serve.Config)) string {
	t.Helper()
	cfg := serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Bus: bus.DefaultSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Edge: ingestapi.Config{Auth: ingestapi.AuthConfig{Disabled: true}}}
	configure(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan serve.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, cfg, func(r serve.Ready) { readyc <- r }) }()
	var r serve.Ready
	select {
	case r = <-readyc:
	case err := <-done:
		cancel()
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Fatal("serve did not stop")
		}
	})
	return "http://" + r.HTTPAddr
}

// kg runs one command against the server named by KG_SERVER.
type kg struct {
	t      *testing.T
	server string
	// env is the rest of the environment.
	env map[string]string
}

type result struct {
	stdout, stderr string
	err            error
}

func (k kg) run(stdin string, args ...string) result {
	k.t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(name string) string {
		if name == "KG_SERVER" && k.server != "" {
			return k.server
		}
		return k.env[name]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cli.Run(ctx, args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

var completedLine = regexp.MustCompile(`(?m)^(job_[0-9a-f]+) completed \(([^)]+)\): (\d+) chunks, (\d+) entities, \d+ relations$`)

func TestIngestFileAndDirectory(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	dir := t.TempDir()
	file := filepath.Join(dir, "single.txt")
	writeFile(t, file, e2e.Corpus(1, 1500))

	r := k.run("", "ingest", file, "--namespace", "books", "--doc-id", "single-1", "--metadata", "source=test")
	require.NoError(t, r.err, r.stderr)
	m := completedLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, "single-1", m[2])
	require.NotEqual(t, "0", m[3], "the document made chunks")
	require.NotContains(t, r.stdout, "[", "no progress bar when stdout is not a terminal and --watch is not given")

	tree := filepath.Join(dir, "tree")
	writeFile(t, filepath.Join(tree, "a.md"), e2e.Corpus(2, 800))
	writeFile(t, filepath.Join(tree, "sub dir", "b.txt"), e2e.Corpus(3, 800))
	writeFile(t, filepath.Join(tree, "sub dir", "deeper", "c.md"), e2e.Corpus(4, 800))
	writeFile(t, filepath.Join(tree, "ignored.csv"), "a,b\n")
	r = k.run("", "ingest", tree, "--namespace", "books")
	require.NoError(t, r.err, r.stderr)
	var docs []string
	for _, m := range completedLine.FindAllStringSubmatch(r.stdout, -1) {
		docs = append(docs, m[2])
	}
	require.ElementsMatch(t, []string{"a.md", "sub_dir_b.txt", "sub_dir_deeper_c.md"}, docs, r.stdout)
	require.Contains(t, r.stdout, "3 documents: 3 completed, 0 duplicates, 0 failed")

	// The job the first ingest made is there to show.
	r2 := k.run("", "jobs", "show", m[1])
	require.NoError(t, r2.err)
	require.Contains(t, r2.stdout, "status     completed")
	require.Contains(t, r2.stdout, "doc        single-1")
}

func TestIngestJSONDuplicateAndForce(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	file := filepath.Join(t.TempDir(), "doc.md")
	writeFile(t, file, e2e.Corpus(5, 1000))

	r := k.run("", "ingest", file, "--json")
	require.NoError(t, r.err, r.stderr)
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &first), r.stdout)
	require.Equal(t, "completed", first["status"])
	firstJob := first["job_id"].(string)

	r = k.run("", "ingest", file)
	require.NoError(t, r.err, "a duplicate is not a failure")
	require.Regexp(t, `job_[0-9a-f]+ duplicate \(doc_[0-9a-f]+\): same content as earlier job `+firstJob, r.stdout)

	r = k.run("", "ingest", file, "--force", "--json")
	require.NoError(t, r.err, r.stderr)
	var forced map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &forced))
	require.Equal(t, "completed", forced["status"])
	require.NotEqual(t, firstJob, forced["job_id"])
}

func TestIngestNoWaitStdinAndWatch(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	// Big enough (about 25 chunks) to be seen in progress.
	r := k.run(e2e.Corpus(6, 30_000), "ingest", "-", "--no-wait", "--doc-id", "from-stdin")
	require.NoError(t, r.err, r.stderr)
	m := regexp.MustCompile(`^(job_[0-9a-f]+) submitted \(from-stdin\) in namespace default\n$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)

	// Watching on a non-terminal prints one line per change, then the end.
	r = k.run("", "jobs", "watch", m[1], "--watch")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.GreaterOrEqual(t, len(lines), 2, "progress before the end: %s", r.stdout)
	require.Regexp(t, `^`+m[1]+` completed \(from-stdin\)`, lines[len(lines)-1])
	for _, l := range lines[:len(lines)-1] {
		require.Regexp(t, `^`+m[1]+` \[[#.]{10}\] +\d+% \w+`, l)
	}
	require.Equal(t, len(lines), len(slicesCompact(lines)), "a line is printed only when it changes")

	r = k.run(e2e.Corpus(7, 500), "ingest", "-", "--no-wait", "--json")
	require.NoError(t, r.err)
	var sub map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sub))
	require.Equal(t, "pending", sub["status"])
}

func slicesCompact(lines []string) []string {
	var out []string
	for i, l := range lines {
		if i == 0 || lines[i-1] != l {
			out = append(out, l)
		}
	}
	return out
}

func TestQuery(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	r := k.run(e2e.Corpus(8, 3000), "ingest", "-", "--doc-id", "lovelace", "--namespace", "q")
	require.NoError(t, r.err, r.stderr)

	for _, mode := range []string{"local", "naive"} {
		r := k.run("", "query", "Who worked on the Analytical Engine with Ada Lovelace?", "--mode", mode, "--namespace", "q", "--top-k", "10")
		require.NoError(t, r.err, r.stderr)
		require.Regexp(t, `references: \d+ entities, \d+ relations, [1-9]\d* chunks, \d+ reports`, r.stdout)
		require.Contains(t, r.stdout, "chunks: lovelace#")
		require.Contains(t, r.stdout, "mode "+mode+", answered by ")
		require.NotEqual(t, "\n", r.stdout[:1], "the answer comes first")
	}
	r = k.run("", "query", "--json", "--mode", "naive", "--namespace", "q", "Ada Lovelace")
	require.NoError(t, r.err)
	var reply map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &reply))
	require.Equal(t, "naive", reply["mode"])
	require.NotEmpty(t, reply["references"].(map[string]any)["chunks"])

	r = k.run("", "query", "Ada", "--only-context", "--namespace", "q", "--mode", "naive")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "Ada Lovelace", "the context quotes the chunks")
}

func TestHealth(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	r := k.run("", "health")
	require.NoError(t, r.err)
	require.Regexp(t, `^healthy \(http://127\.0\.0\.1:\d+\)\n`, r.stdout)
	require.Contains(t, r.stdout, "  nats     healthy")
	r = k.run("", "health", "--json")
	require.NoError(t, r.err)
	var h map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	require.Equal(t, "healthy", h["status"])
}

func TestBadInput(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	writeFile(t, empty, "  \n")

	r := k.run("", "ingest", empty)
	require.Error(t, r.err)
	var p *cli.ProblemError
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 422, p.Status)
	require.Equal(t, "Unprocessable Entity: content is empty (HTTP 422)\n  body.content: must contain text", r.err.Error())

	r = k.run("x", "ingest", "-", "--namespace", "a b")
	require.ErrorAs(t, r.err, &p)
	require.Contains(t, r.err.Error(), "body.namespace: ")
	require.Contains(t, r.err.Error(), `(got "a b")`)

	// In a directory, the empty file fails and the others still go in.
	writeFile(t, filepath.Join(dir, "ok.md"), e2e.Corpus(9, 500))
	r = k.run("", "ingest", dir)
	require.EqualError(t, r.err, "1 of 2 documents failed")
	require.Contains(t, r.stderr, "kg: "+empty+": Unprocessable Entity: content is empty")
	require.Contains(t, r.stdout, "2 documents: 1 completed, 0 duplicates, 1 failed")

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"no command", nil, "no command given"},
		{"unknown mode", []string{"query", "who?", "--mode", "psychic"}, `--mode "psychic": want one of local, global, naive`},
		{"no question", []string{"query"}, "query takes one question"},
		{"unknown job", []string{"jobs", "show", "job_nope"}, `Not Found: no job "job_nope"`},
		{"missing file", []string{"ingest", filepath.Join(dir, "nope.txt")}, "no such file"},
		{"doc id for a dir", []string{"ingest", dir, "--doc-id", "x"}, "--doc-id names a single document"},
		{"bad metadata", []string{"ingest", empty, "--metadata", "novalue"}, "want key=value"},
		{"bad server", []string{"health", "--server", "localhost:1"}, "want an http:// or https:// URL"},
		{"unknown flag", []string{"health", "--bogus"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := k.run("", c.args...)
			require.ErrorContains(t, r.err, c.want)
		})
	}
	require.True(t, cli.IsCommand("ingest"))
	require.False(t, cli.IsCommand("serve"))
}
