// Command kg is kgraph's command-line tool. `kg serve` runs every service in
// one process with embedded NATS and embedded stores.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/cli"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kg:", err)
		os.Exit(1)
	}
}

const usage = `kg — kgraph command-line tool

Usage:
  kg serve [flags]   run kgraph in one process (embedded NATS and stores);
                     'kg serve -h' lists its flags
  kg keys new --id ID --role read|write|admin --namespaces a,b|*
                     make an API key: prints the secret once and the
                     entry for KG_API_KEYS (which holds only its SHA-256)
  kg version         print the version
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage+"\n"+cli.Usage)
		return errors.New("no command given")
	}
	if cli.IsCommand(args[0]) {
		return cli.Run(ctx, args, getenv, os.Stdin, stdout, stderr)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kg "+boot.Version)
		return nil
	case "keys":
		return runKeys(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage+"\n"+cli.Usage)
		return nil
	default:
		fmt.Fprint(stderr, usage+"\n"+cli.Usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := envconf.New(getenv)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", env.String("KG_DATA_DIR", "data"), "directory for all data (env KG_DATA_DIR)")
	httpAddr := fs.String("http", env.String("KG_HTTP_ADDR", "127.0.0.1:8080"), "REST listen address (env KG_HTTP_ADDR)")
	natsAddr := fs.String("nats", env.String("KG_NATS_LISTEN", "127.0.0.1:4222"), "NATS listen address for outside publishers; empty disables (env KG_NATS_LISTEN)")
	logLevel := fs.String("log-level", env.String("KG_LOG_LEVEL", "info"), "debug, info, warn or error (env KG_LOG_LEVEL)")
	noAuth := fs.Bool("no-auth", false, "switch API keys off: anyone who reaches the HTTP port may do anything (laptop only; env KG_AUTH_DISABLED)")
	memLimit := fs.String("memory-limit", env.String("KG_MEMORY_LIMIT", defaultMemoryLimit), "soft limit of the Go runtime's memory (the garbage collector works harder near it; SQLite's page caches come on top), e.g. 512MiB, or off; GOMEMLIMIT wins when set (env KG_MEMORY_LIMIT)")
	pprofAddr := fs.String("pprof", env.String("KG_PPROF_ADDR", ""), "serve Go profiles (net/http/pprof, /debug/pprof/) on this address; empty disables; never expose it publicly (env KG_PPROF_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	common := boot.ReadCommon(env)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", *logLevel, err)
	}
	cfg, err := serve.ReadConfig(env, *dataDir)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cfg.DataDir, cfg.HTTPAddr, cfg.NATSListen, cfg.Bus = *dataDir, *httpAddr, *natsAddr, common.Bus
	cfg.Logger = boot.Logger(stdout, "kg-serve", level)
	if *noAuth {
		cfg.Edge.Auth.Disabled = true
	}
	limit, err := memoryLimit(*memLimit, getenv("GOMEMLIMIT"))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr, cfg.Logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	return serve.Run(ctx, cfg, func(r serve.Ready) {
		cfg.Logger.Info("kgraph is running",
			"http", "http://"+r.HTTPAddr, "api_docs", "http://"+r.HTTPAddr+"/docs",
			"nats", r.NATSURL, "data", cfg.DataDir, "extractor", r.Extractor)
		if cfg.Embed == nil {
			cfg.Logger.Warn("no embedding provider configured (KG_EMBED_BASE_URL): using hashed embeddings, which match words, not meaning")
		}
		if cfg.Edge.Auth.Disabled {
			cfg.Logger.Warn("AUTHENTICATION IS OFF (--no-auth / KG_AUTH_DISABLED): anyone who reaches " + r.HTTPAddr +
				" can read, write, delete and administer every namespace. Configure KG_API_KEYS before exposing this port.")
			fmt.Fprintf(stderr, "\n  !!! kgraph: authentication is OFF — every request on http://%s acts as an admin of every namespace !!!\n\n", r.HTTPAddr)
		}
		if r.Extractor == "offline" {
			cfg.Logger.Warn("no LLM configured: using the built-in offline extractor (heuristic, lower quality) and hashed embeddings")
		}
	})
}

// servePprof serves net/http/pprof on its own mux and listener, so profiles
// are never reachable through the REST edge. It returns the function that
// stops it.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	log.Info("serving pprof", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}

// runKeys makes API keys: a random secret, shown once, and the
// configuration entry that holds only its hash.
func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return errors.New("usage: kg keys new --id ID --role read|write|admin --namespaces a,b|* [--client-id ID] [--rate-limit N]")
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "key id, shown in logs and metrics (letters, digits, _ and -)")
	role := fs.String("role", "read", "read, write or admin")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces the key may access, or * for all")
	clientID := fs.String("client-id", "", "client id recorded on jobs (default: the key id)")
	rate := fs.Int("rate-limit", 0, "requests per minute (0: the server's default, -1: unlimited)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("make key: %w", err)
	}
	secret := "kg_" + base64.RawURLEncoding.EncodeToString(raw[:])
	var ns []string
	for n := range strings.SplitSeq(*namespaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			ns = append(ns, n)
		}
	}
	key := ingestapi.APIKey{ID: *id, SHA256: ingestapi.HashAPIKey(secret), ClientID: *clientID, Namespaces: ns,
		Role: ingestapi.Role(*role), RateLimit: *rate}
	check := ingestapi.AuthConfig{Keys: []ingestapi.APIKey{key}}
	if err := check.Validate(); err != nil {
		return err
	}
	entry, err := json.Marshal(check.Keys[0])
	if err != nil {
		return fmt.Errorf("encode key entry: %w", err)
	}
	fmt.Fprintf(stdout, "key (shown once; give it to the client, kgraph keeps only its hash):\n  %s\n", secret)
	fmt.Fprintf(stdout, "entry for the KG_API_KEYS array:\n  %s\n", entry)
	return nil
}
