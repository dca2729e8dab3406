package query

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
)

// StoreCheck checks one backend the service reads.
type StoreCheck struct {
	Name  string
	Check func(context.Context) error
}

// WithHealthChecks makes the service answer events.QueryHealthSubject with
// the verdicts of checks: how the edge of a services deployment learns the
// health of the graph and vector stores it does not open.
func WithHealthChecks(checks []StoreCheck) Option {
	return func(s *Service) { s.checks = checks }
}

// checkTimeout bounds one backend's check, so that one hung store cannot
// hold the reply past the edge's request deadline.
const checkTimeout = 2 * time.Second

// serveHealth runs the checks concurrently and replies with a HealthReport.
// It runs outside the query slots: a service busy with queries still says
// whether its stores answer.
func (s *Service) serveHealth(r micro.Request) {
	report := events.HealthReport{Backends: make([]events.BackendCheck, len(s.checks))}
	done := make(chan struct{}, len(s.checks))
	for i, c := range s.checks {
		go func() {
			defer func() { done <- struct{}{} }()
			ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
			defer cancel()
			report.Backends[i].Name = c.Name
			if err := c.Check(ctx); err != nil {
				report.Backends[i].Error = err.Error()
			}
		}()
	}
	for range s.checks {
		<-done
	}
	data, err := json.Marshal(report)
	if err != nil {
		s.log.Warn("encode health report", "err", err)
		return
	}
	if err := r.Respond(data); err != nil {
		s.log.Warn("answer health request", "err", err)
	}
}
