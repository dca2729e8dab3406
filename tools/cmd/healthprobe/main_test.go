package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name       string
		args       []string
		want       int
		wantStderr string
	}{
		{"2xx is healthy", []string{srv.URL + "/ok"}, exitHealthy, ""},
		{"204 is healthy", []string{srv.URL + "/no-content"}, exitHealthy, ""},
		{"503 is unhealthy", []string{srv.URL + "/down"}, exitUnhealthy, "503"},
		{"404 is unhealthy", []string{srv.URL + "/missing"}, exitUnhealthy, "404"},
		{"refused connection is unhealthy", []string{closedURL + "/ok"}, exitUnhealthy, "probe"},
		{"timeout is unhealthy", []string{"-timeout", "50ms", srv.URL + "/slow"}, exitUnhealthy, "deadline"},
		{"no URL is a usage error", nil, exitUsage, "usage"},
		{"two URLs is a usage error", []string{srv.URL, srv.URL}, exitUsage, "usage"},
		{"unknown flag is a usage error", []string{"-bogus", srv.URL}, exitUsage, "bogus"},
		{"malformed URL is unhealthy", []string{"http://%zz"}, exitUnhealthy, "probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got := run(context.Background(), tt.args, &stderr)
			if got != tt.want {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", tt.args, got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
