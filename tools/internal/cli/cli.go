// Package cli is the `kg` client of kgraph's REST edge: ingest documents
// and follow their jobs, list and delete documents, ask questions, explore
// the graph, administer the deployment. It is a library so that cmd/kg
// wires it in and tests drive it in-process.
package cli

import (
	"bufio"
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
  kg ingest FILE|DIR|- [flags]     submit documents (.txt, .md, .html under DIR), follow their jobs
        --no-wait                  print the job ids and return
        --watch                    live progress (default when stdout is a terminal)
        --force                    re-ingest content already ingested
        --require-approval         hold the jobs in awaiting_approval with a cost estimate
        --yes                      approve jobs that await approval without asking
  kg jobs list [--status S] [--kind ingest|delete] [--client-id C] [--limit N] [--cursor C]
  kg jobs show ID                  a job's status, progress, usage and estimate
  kg jobs watch ID...              follow jobs until they end
  kg jobs approve ID [--wait]      approve a job awaiting approval
  kg jobs cancel ID [--reason R]   cancel a pending, waiting or running job
  kg docs list [--status S] [--limit N] [--cursor C]
  kg docs show ID [--content]      a document's metadata, counts and job (and its text)
  kg docs delete ID [--no-wait] [--yes]
                                   delete a document (its chunks, graph share and vectors);
                                   asks first when stdin is a terminal, unless --yes
  kg query "QUESTION" [flags]      ask a question (--mode local|global|naive); the answer
                                   streams as it is written (--no-stream and --json: at once)
  kg graph search [TEXT]           entities whose name contains TEXT
  kg graph entity NAME             an entity, its relations and neighbours
  kg graph subgraph NAME [--depth N] [--max-nodes N]
  kg graph paths FROM TO [--max-depth N] [--max-paths N]
  kg stats                         documents, chunks, entities, relations, communities
  kg health                        the edge's and its backends' health
  kg admin info                    version, stores, authentication and your key
  kg admin dead-letters [list [--consumer C] | show SEQ | replay SEQ]
  kg admin scheduler [status | cleanup [--dry-run]]
  kg admin cache-clear             drop the namespace's cached answers

Every client command takes --server URL, --api-key KEY (sent as X-API-Key),
--timeout (per request), --json (the raw JSON replies, one a line) and
--config PATH; commands that touch one namespace take --namespace NS.
Server, key and namespace come from the flag, else the environment
(KG_SERVER, KG_API_KEY, KG_NAMESPACE), else the config file, else the
default (server ` + DefaultServer + `, the server's default namespace).
The config file is --config PATH, else $KG_CONFIG, else
$XDG_CONFIG_HOME/kg/config.json (~/.config/kg/config.json), holding
  {"server": "https://kg.example.com", "api_key": "…", "namespace": "books"}
Keep it private (chmod 600): kg warns when others may read a key in it.

Errors the server reports print as "kg: <title>: <detail> (HTTP <status>)"
and exit with status 1, as does any job that fails, is cancelled, expires,
or still awaits approval when kg stops following it.
`

// IsCommand reports whether name is a client command handled by Run.
func IsCommand(name string) bool {
	switch name {
	case "ingest", "jobs", "docs", "query", "graph", "stats", "health", "admin":
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
	env := &environment{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr,
		terminal: isTerminal(stdout), interactive: isTerminal(stdin) && isTerminal(stderr)}
	env.width = terminalWidth(stdout, getenv)
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "ingest":
		return env.ingest(ctx, rest)
	case "jobs":
		return env.jobs(ctx, rest)
	case "docs":
		return env.docs(ctx, rest)
	case "query":
		return env.query(ctx, rest)
	case "graph":
		return env.graph(ctx, rest)
	case "stats":
		return env.stats(ctx, rest)
	case "health":
		return env.health(ctx, rest)
	case "admin":
		return env.admin(ctx, rest)
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
	// width of the terminal stdout is, in columns.
	width int
	// interactive: stdin and stderr are a terminal, so kg may ask
	// questions (approve? delete?).
	interactive bool
	// lines reads the answers to questions from stdin.
	lines *bufio.Reader
}

// globals are the flags every command takes, and what they resolve to.
type globals struct {
	serverFlag, apiKeyFlag, namespaceFlag, configFlag optionalString
	timeout                                           time.Duration
	json                                              bool
	// withNamespace: the command takes --namespace.
	withNamespace bool

	// resolved is what flag, environment, config file and default make of
	// server, key and namespace.
	resolved settings
}

// optionalString is a string flag that knows whether it was given.
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string { return o.value }

func (o *optionalString) Set(s string) error {
	o.value, o.set = s, true
	return nil
}

// flags is a command's flag set with the global flags; withNamespace adds
// --namespace.
func (e *environment) flags(name string, g *globals, withNamespace bool) *flag.FlagSet {
	fs := flag.NewFlagSet("kg "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Var(&g.serverFlag, "server", "kgraph REST edge `URL` (env KG_SERVER, config \"server\"; default "+DefaultServer+")")
	fs.Var(&g.apiKeyFlag, "api-key", "API `KEY` sent as X-API-Key (env KG_API_KEY, config \"api_key\")")
	fs.Var(&g.configFlag, "config", "config file `PATH` (env KG_CONFIG; default $XDG_CONFIG_HOME/kg/config.json)")
	fs.DurationVar(&g.timeout, "timeout", 3*time.Minute, "bound on each HTTP request")
	fs.BoolVar(&g.json, "json", false, "print the raw JSON replies, one a line")
	g.withNamespace = withNamespace
	if withNamespace {
		fs.Var(&g.namespaceFlag, "namespace", "`NS`: the namespace (env KG_NAMESPACE, config \"namespace\"); the server's default when empty")
	}
	return fs
}

// parse parses a command's arguments and resolves the global settings.
func (e *environment) parse(fs *flag.FlagSet, g *globals, args []string) ([]string, error) {
	positional, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if g.resolved, err = e.resolve(g); err != nil {
		return nil, err
	}
	return positional, nil
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

// client connects to the resolved server.
func (g *globals) client() (*client, func(), error) {
	server := g.resolved.Server
	base := strings.TrimRight(server, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, nil, fmt.Errorf("server %q (%s): want an http:// or https:// URL", server, g.resolved.serverFrom)
	}
	// An own transport, so that the connections it keeps die with the
	// command rather than lingering in http.DefaultTransport.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &client{base: base, apiKey: g.resolved.APIKey, http: &http.Client{Transport: tr, Timeout: g.timeout}}
	return c, tr.CloseIdleConnections, nil
}

// namespace is the resolved namespace ("" for the server's default).
func (g *globals) namespace() string { return g.resolved.Namespace }

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
