package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/tools/fakellm"
)

func TestRunServesUntilCancelledAndPrintsStats(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-latency", "5ms", "-max-concurrency", "2", "-model", "gpt-4o"}, &stdout, &stderr, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, stderr.String())
	}

	resp, err := http.Post("http://"+addr.String()+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"ping"}]}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"model":"gpt-4o"`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
	var stats fakellm.Stats
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &stats), "stats on stdout: %s", stdout.String())
	require.EqualValues(t, 1, stats.Calls["unknown"])
	require.Contains(t, stderr.String(), "max_concurrency=2", "the config is logged")
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "magic"},
		{"-rate-429", "2"},
		{"-mode", "replay", "-replay", "/nonexistent.json"},
		{"stray"},
		{"-no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		require.Error(t, run(t.Context(), args, &stdout, &stderr, nil), "%v", args)
		require.Empty(t, stdout.String())
	}
}
