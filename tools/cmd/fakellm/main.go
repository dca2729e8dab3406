// Command fakellm serves the fake OpenAI-compatible LLM of package
// tools/fakellm over HTTP, for benchmarks and manual runs:
//
//	fakellm -addr 127.0.0.1:8099 -mode heuristic -latency 200ms -max-concurrency 16
//	fakellm -mode replay -replay ../shared/corpus/christmas_carol_gpt4o_responses.json
//
// Point an OpenAI client at http://ADDR/v1. GET /v1/fakellm/stats shows what
// was served, POST /v1/fakellm/reset zeroes it. On SIGINT or SIGTERM the
// server drains in-flight calls (calls hung by injected timeouts are
// dropped) and prints its statistics as JSON on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kgraph-dev/kgraph/tools/fakellm"
)

const defaultReplayPath = "../shared/corpus/christmas_carol_gpt4o_responses.json"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(1)
	}
}

// options are the command's flags beyond the server's Config.
type options struct {
	addr            string
	shutdownTimeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (fakellm.Config, options, error) {
	var cfg fakellm.Config
	var opt options
	fs := flag.NewFlagSet("fakellm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.addr, "addr", "127.0.0.1:8099", "listen address (port 0 picks a free port)")
	fs.DurationVar(&opt.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait for in-flight calls on exit")
	fs.StringVar(&cfg.Mode, "mode", fakellm.ModeHeuristic, "heuristic or replay")
	fs.StringVar(&cfg.ReplayPath, "replay", defaultReplayPath, "recorded responses file for replay mode")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency added to every answered call")
	fs.IntVar(&cfg.MaxConcurrency, "max-concurrency", 0, "calls worked on at once; more wait (0 = unlimited)")
	fs.Float64Var(&cfg.Rate429, "rate-429", 0, "share of calls answered 429 with Retry-After")
	fs.Float64Var(&cfg.Rate500, "rate-500", 0, "share of calls answered 500")
	fs.Float64Var(&cfg.RateTimeout, "rate-timeout", 0, "share of calls never answered (until the client gives up)")
	fs.Float64Var(&cfg.RateGarbage, "rate-garbage", 0, "share of chat calls answered with junk")
	fs.Float64Var(&cfg.RateTruncated, "rate-truncated", 0, "share of chat calls answered with a truncated output")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", fakellm.DefaultRetryAfter, "Retry-After announced with 429s")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed choosing which calls get faults")
	fs.IntVar(&cfg.EmbedDim, "embed-dim", fakellm.DefaultEmbedDim, "embedding dimension when a request names none")
	fs.IntVar(&cfg.GleanYes, "glean-yes", 0, "gleaning rounds answered YES before NO")
	fs.IntVar(&cfg.MaxEntities, "max-entities", fakellm.DefaultMaxEntities, "entities per heuristic extraction pass")
	fs.StringVar(&cfg.Model, "model", fakellm.DefaultModel, "chat model id")
	fs.StringVar(&cfg.EmbedModel, "embed-model", fakellm.DefaultEmbedModel, "embedding model id")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return cfg, opt, nil
}

// run serves until ctx ends, then shuts down and prints the statistics.
// onListen, when set, learns the bound address (tests listen on port 0).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, onListen func(net.Addr)) error {
	cfg, opt, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	fake, err := fakellm.New(cfg)
	if err != nil {
		return err
	}
	cfg = fake.Config()
	logger.Info("fakellm config",
		"mode", cfg.Mode, "replay", replayPathFor(cfg), "latency", cfg.Latency,
		"max_concurrency", cfg.MaxConcurrency, "rate_429", cfg.Rate429, "rate_500", cfg.Rate500,
		"rate_timeout", cfg.RateTimeout, "rate_garbage", cfg.RateGarbage, "rate_truncated", cfg.RateTruncated,
		"retry_after", cfg.RetryAfter, "seed", cfg.Seed, "embed_dim", cfg.EmbedDim, "glean_yes", cfg.GleanYes,
		"max_entities", cfg.MaxEntities, "model", cfg.Model, "embed_model", cfg.EmbedModel)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opt.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opt.addr, err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("fakellm listening", "addr", ln.Addr().String(), "base_url", "http://"+ln.Addr().String()+"/v1")
	if onListen != nil {
		onListen(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("fakellm shutting down")
	fake.Close() // hung calls would otherwise hold Shutdown until its deadline
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opt.shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shut down: %w", shutdownErr)
		_ = srv.Close()
	}
	<-served

	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fake.Stats()); err != nil {
		return errors.Join(shutdownErr, fmt.Errorf("print stats: %w", err))
	}
	return shutdownErr
}

func replayPathFor(cfg fakellm.Config) string {
	if cfg.Mode != fakellm.ModeReplay {
		return ""
	}
	return cfg.ReplayPath
}
