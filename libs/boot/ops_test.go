package boot

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpsEndpoints(t *testing.T) {
	var readyErr error
	o := NewOps(func(context.Context) error { return readyErr })
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/health/live")
	require.Equal(t, 200, code)
	code, _ = get("/health/ready")
	require.Equal(t, 200, code)
	readyErr = errors.New("nats connection is RECONNECTING")
	code, body := get("/health/ready")
	require.Equal(t, 503, code)
	require.Contains(t, body, "RECONNECTING")
	code, body = get("/metrics")
	require.Equal(t, 200, code)
	require.True(t, strings.Contains(body, "go_goroutines"), "runtime metrics exported")
}

func TestOpsRunTurnsUnreadyBeforeDraining(t *testing.T) {
	o := NewOps(func(context.Context) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	sawUnready := make(chan bool, 1)
	done := make(chan error, 1)
	go func() {
		done <- o.Run(ctx, "127.0.0.1:0", func(ctx context.Context) error {
			<-ctx.Done()
			sawUnready <- o.stopping.Load()
			return nil
		})
	}()
	cancel()
	require.True(t, <-sawUnready, "readiness must be off while the service drains")
	require.NoError(t, <-done)
}

func TestOpsReadinessIncludesBackendChecks(t *testing.T) {
	o := NewOps(func(context.Context) error { return nil })
	var neo4jErr error
	o.AddCheck("neo4j", func(context.Context) error { return neo4jErr })
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/health/ready")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	neo4jErr = errors.New("connection refused")
	resp, err = http.Get(srv.URL + "/health/ready")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
	require.Contains(t, string(body), "neo4j: connection refused")
}
