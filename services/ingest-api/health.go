package ingestapi

// Health: each backend checked, the verdict cached briefly.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/events"
)

// RemoteHealth returns the backend verdicts of another service.
type RemoteHealth func(ctx context.Context) (events.HealthReport, error)

// remoteHealthService names the entry of a service that did not answer.
const remoteHealthService = "query-service"

// AskQueryHealth asks the query service, over nc, for the health of the
// stores it reads.
func AskQueryHealth(nc *nats.Conn) RemoteHealth {
	return func(ctx context.Context) (events.HealthReport, error) {
		var report events.HealthReport
		msg, err := nc.RequestWithContext(ctx, events.QueryHealthSubject, nil)
		if err != nil {
			return report, fmt.Errorf("the query service did not answer: %w", err)
		}
		if err := json.Unmarshal(msg.Data, &report); err != nil {
			return report, fmt.Errorf("the query service's health report: %w", err)
		}
		return report, nil
	}
}

// addRemoteHealth adds the remote verdicts of backends the edge does not
// check itself, and returns how many are unhealthy. When the service does
// not answer, its backends are unknown: one entry for the service says so.
func (s *Server) addRemoteHealth(ctx context.Context, h *HealthReply) int {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	report, err := s.deps.RemoteHealth(cctx)
	latency := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		h.Backends[remoteHealthService] = BackendHealth{Status: "unhealthy", LatencyMS: latency, Error: err.Error()}
		return 1
	}
	unhealthy := 0
	for _, b := range report.Backends {
		if _, ok := h.Backends[b.Name]; ok {
			continue // checked here too (a KV store both use)
		}
		v := BackendHealth{Status: "healthy", LatencyMS: latency, Error: b.Error}
		if b.Error != "" {
			v.Status = "unhealthy"
			unhealthy++
		}
		h.Backends[b.Name] = v
	}
	return unhealthy
}

// BackendHealth is one backend's health.
type BackendHealth struct {
	Status    string  `json:"status" enum:"healthy,unhealthy"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// HealthReply is the service health.
type HealthReply struct {
	Status   string                   `json:"status" enum:"healthy,degraded,unhealthy"`
	Backends map[string]BackendHealth `json:"backends"`
}

// health returns the backends' health, reusing a verdict younger than
// HealthCacheTTL; one caller checks while the others wait for its verdict.
func (s *Server) health(ctx context.Context) HealthReply {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if !s.healthAt.IsZero() && s.now().Sub(s.healthAt) < s.cfg.HealthCacheTTL {
		return s.healthLast
	}
	h := s.checkHealth(ctx)
	s.healthLast, s.healthAt = h, s.now()
	return h
}

func (s *Server) checkHealth(ctx context.Context) HealthReply {
	h := HealthReply{Status: "healthy", Backends: map[string]BackendHealth{}}
	unhealthy := 0
	for _, c := range s.deps.Health {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := c.Check(cctx)
		cancel()
		b := BackendHealth{Status: "healthy", LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			b.Status, b.Error = "unhealthy", err.Error()
			unhealthy++
		}
		h.Backends[c.Name] = b
	}
	if s.deps.RemoteHealth != nil {
		unhealthy += s.addRemoteHealth(ctx, &h)
	}
	switch {
	case unhealthy == len(h.Backends) && unhealthy > 0:
		h.Status = "unhealthy"
	case unhealthy > 0:
		h.Status = "degraded"
	}
	return h
}
