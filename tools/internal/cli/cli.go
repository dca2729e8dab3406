// Package cli is the `kg` client of kgraph's REST edge: ingest documents
// and follow their jobs, ask questions, check health. It is a library so
// that cmd/kg wires it in and tests drive it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// DefaultServer is the edge `kg serve` listens on by default.
const DefaultServer = "http://127.0.0.1:8080"

// Usage describes the client commands.
const Usage = `Client commands (talk to a running kgraph over REST):
  kg ingest FILE|DIR|- [flags]   submit documents (.txt/.md under DIR) and wait for their jobs
  kg jobs show ID                print a job's status
  kg jobs watch ID               follow a job until it ends
  kg query "QUESTION" [flags]    ask a question (--mode local|global|naive)
  kg health                      the edge's and its backends' health

Every client command takes --server URL (env KG_SERVER, default ` + DefaultServer + `),
--api-key KEY (env KG_API_KEY), --timeout (per request) and --json (raw replies).
`

// IsCommand reports whether name is a client command handled by Run.
func IsCommand(name string) bool {
	switch name {
	case "ingest", "jobs", "query", "health":
		return true
	}
	return false
}

// Run runs one client command; args[0] is the command name (see IsCommand).
// Problems the edge reports come back as *ProblemError; the caller prints
// the error (as "kg: <error>") and exits non-zero.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage)
		return errors.New("no command given")
	}
	env := &environment{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, terminal: isTerminal(stdout)}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "ingest":
		return env.ingest(ctx, rest)
	case "jobs":
		return env.jobs(ctx, rest)
	case "query":
		return env.query(ctx, rest)
	case "health":
		return env.health(ctx, rest)
	default:
		fmt.Fprint(stderr, Usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// environment is what a command runs with.
type environment struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	// terminal: stdout is a terminal, so progress is redrawn in place.
	terminal bool
}

// globals are the flags every command takes.
type globals struct {
	server  string
	apiKey  string
	timeout time.Duration
	json    bool
}

func (e *environment) flags(name string, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet("kg "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	server := e.getenv("KG_SERVER")
	if server == "" {
		server = DefaultServer
	}
	fs.StringVar(&g.server, "server", server, "kgraph REST edge URL (env KG_SERVER)")
	fs.StringVar(&g.apiKey, "api-key", e.getenv("KG_API_KEY"), "API key sent as X-API-Key (env KG_API_KEY)")
	fs.DurationVar(&g.timeout, "timeout", 3*time.Minute, "bound on each HTTP request")
	fs.BoolVar(&g.json, "json", false, "print the raw JSON replies, one a line")
	return fs
}

// parse parses flags wherever they stand among the positional arguments
// (`kg query "Q" --mode naive`), which flag.Parse alone does not; "--" ends
// the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// helpRequested turns -h into a successful exit: the usage is printed.
func helpRequested(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func (g *globals) client() (*client, func(), error) {
	base := strings.TrimRight(g.server, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, nil, fmt.Errorf("--server %q: want an http:// or https:// URL", g.server)
	}
	// An own transport, so that the connections it keeps die with the
	// command rather than lingering in http.DefaultTransport.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &client{base: base, apiKey: g.apiKey, http: &http.Client{Transport: tr, Timeout: g.timeout}}
	return c, tr.CloseIdleConnections, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
