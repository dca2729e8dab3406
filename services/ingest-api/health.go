package ingestapi

// Health: each backend checked, the verdict cached briefly.

import (
	"context"
	"time"
)

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
	switch {
	case unhealthy == len(s.deps.Health) && unhealthy > 0:
		h.Status = "unhealthy"
	case unhealthy > 0:
		h.Status = "degraded"
	}
	return h
}
