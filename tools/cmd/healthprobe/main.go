// Command healthprobe exits 0 when an HTTP health endpoint answers 2xx and 1
// otherwise. The service images are distroless (no shell, no curl, no wget),
// so Docker Compose health checks exec this static binary instead.
//
// It is a module of its own, outside go.work, because it depends on nothing
// in kgraph and must build on its own inside the image:
//
//	cd deploy/healthprobe && GOWORK=off go build .
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const (
	exitHealthy   = 0
	exitUnhealthy = 1
	exitUsage     = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("healthprobe", flag.ContinueOnError)
	flags.SetOutput(stderr)
	timeout := flags.Duration("timeout", 3*time.Second, "give up after this long")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthprobe [-timeout 3s] URL")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return exitUsage
	}
	if err := probe(ctx, flags.Arg(0), *timeout); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUnhealthy
	}
	return exitHealthy
}

func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	// Drain a little so the server sees a clean close; the body itself is not judged.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: unhealthy status %s", url, resp.Status)
	}
	return nil
}
