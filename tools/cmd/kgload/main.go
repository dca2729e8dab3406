// Command kgload measures the REST edge of `kg serve` under load with
// vegeta's library, next to a bare chi handler measured in the same run:
// throughput and latency of GET /api/v1/health and of a cached
// POST /api/v1/query at 100 concurrent connections, the latency of uncached
// local queries without the LLM step (only_context), and kg serve's RSS
// while it is under load.
//
// kg serve runs as a child process on a temporary data directory, so its RSS
// and CPU are its own; the load generator and the chi baseline share this
// process. Both processes share the machine's cores. By default kgload makes
// an API key and configures kg serve with it, so every request passes the
// edge's authentication (-auth off runs kg serve --no-auth).
//
//	go build -o bin/kg ./tools/cmd/kg
//	go run ./tools/cmd/kgload -kg bin/kg
//
// docs/benchmarks.md ("REST edge under load") has figures and how to read
// them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kgload:", err)
		os.Exit(1)
	}
}

// Authentication modes of kg serve.
const (
	authGenerate = "generate"
	authOff      = "off"
	authNone     = "none"
)

// config is what the flags say.
type config struct {
	KGPath    string
	ServeArgs []string
	// Auth is how kg serve authenticates: authGenerate, authOff or
	// authNone.
	Auth         string
	KeyRateLimit int
	APIKey       string
	APIKeyHeader string
	Namespace    string
	CorpusTokens int
	Duration     time.Duration
	Warmup       time.Duration
	Connections  int
	// MaxRate is the pace of the throughput runs; 0 sends as fast as the
	// connections allow (a closed loop: every connection has one request
	// in flight at all times).
	MaxRate int
	// PacedRate is the fixed rate of the latency runs (0 skips them).
	PacedRate int
	// UncachedRate is the fixed rate of the uncached-query run (0 skips it).
	UncachedRate int
	Timeout      time.Duration
	JSON         bool
	// ProfileDir, when set, makes kg serve serve pprof and receives one CPU
	// profile of kg serve per run against it.
	ProfileDir string
	// TargetRatio and TargetP95 are the targets: at least this
	// share of the chi baseline's throughput, and a p95 below this.
	TargetRatio float64
	TargetP95   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("kgload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.KGPath, "kg", "bin/kg", "path of the kg binary (make build)")
	serveArgs := fs.String("serve-args", "", `extra flags for kg serve, split on spaces (e.g. "--no-auth" or "--pprof 127.0.0.1:6060")`)
	fs.StringVar(&c.Auth, "auth", authGenerate, authGenerate+": make an admin API key and configure kg serve with it (KG_API_KEYS); "+
		authOff+": run kg serve --no-auth; "+authNone+": configure nothing (send -api-key if given; for kg binaries from before API keys)")
	fs.IntVar(&c.KeyRateLimit, "key-rate-limit", 1_000_000_000, "requests per minute of the generated key: high, so the limiter runs but never refuses; -1 switches it off")
	fs.StringVar(&c.APIKey, "api-key", "", "API key sent with every request to kg serve (with -auth "+authNone+")")
	fs.StringVar(&c.APIKeyHeader, "api-key-header", "X-API-Key", "header that carries -api-key")
	fs.StringVar(&c.Namespace, "namespace", "default", "namespace of the ingested document and the queries")
	fs.IntVar(&c.CorpusTokens, "corpus-tokens", 20000, "size of the generated document in tokens (cl100k, approximate)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of each measured run")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "unmeasured load before each run (opens the connections)")
	fs.IntVar(&c.Connections, "connections", 100, "concurrent connections (vegeta workers and max workers)")
	fs.IntVar(&c.MaxRate, "rate", 0, "requests/s of the throughput runs; 0 = as fast as the connections allow")
	fs.IntVar(&c.PacedRate, "paced-rate", 500, "requests/s of the latency runs at a fixed rate; 0 skips them")
	fs.IntVar(&c.UncachedRate, "uncached-rate", 10, "requests/s of the uncached-query run; 0 skips it")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "start kg serve with --pprof and write a CPU profile of it per run into this directory (profiling slows it)")
	fs.Float64Var(&c.TargetRatio, "target-ratio", 0.5, "target: share of the chi baseline's throughput")
	fs.DurationVar(&c.TargetP95, "target-p95", 5*time.Millisecond, "target: p95 latency")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.ServeArgs = strings.Fields(*serveArgs)
	switch {
	case c.Auth != authGenerate && c.Auth != authOff && c.Auth != authNone:
		return config{}, fmt.Errorf("-auth must be %s, %s or %s, got %q", authGenerate, authOff, authNone, c.Auth)
	case c.APIKey != "" && c.Auth != authNone:
		return config{}, fmt.Errorf("-api-key needs -auth %s (with -auth %s kgload makes its own key)", authNone, authGenerate)
	case c.KeyRateLimit == 0 || c.KeyRateLimit < -1:
		return config{}, fmt.Errorf("-key-rate-limit must be positive or -1, got %d", c.KeyRateLimit)
	case c.KGPath == "":
		return config{}, errors.New("-kg is required")
	case c.Connections < 1:
		return config{}, fmt.Errorf("-connections must be at least 1, got %d", c.Connections)
	case c.Duration <= 0:
		return config{}, fmt.Errorf("-duration must be positive, got %s", c.Duration)
	case c.Warmup < 0:
		return config{}, fmt.Errorf("-warmup must not be negative, got %s", c.Warmup)
	case c.MaxRate < 0 || c.PacedRate < 0 || c.UncachedRate < 0:
		return config{}, errors.New("rates must not be negative")
	case c.CorpusTokens < 100:
		return config{}, fmt.Errorf("-corpus-tokens must be at least 100, got %d", c.CorpusTokens)
	case c.TargetRatio <= 0 || c.TargetP95 <= 0:
		return config{}, errors.New("targets must be positive")
	case c.APIKey != "" && c.APIKeyHeader == "":
		return config{}, errors.New("-api-key needs -api-key-header")
	}
	return c, nil
}

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(argv[1:], stderr)
	if err != nil {
		return err
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	rep, err := measure(ctx, cfg, commandLine(argv), stderr)
	if err != nil {
		return err
	}
	if cfg.JSON {
		return writeJSON(stdout, rep)
	}
	writeText(stdout, rep)
	return nil
}

// commandLine renders argv so it can be pasted into a shell.
func commandLine(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if i == 0 {
			a = "kgload"
		}
		if a == "" || strings.ContainsAny(a, " \t\"'$\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}
