package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/services/query"
)

// TestHealthReportsEveryStoreCheck asks the running service for its stores'
// health: every check is in the report, a failing one with its error, and a
// check that hangs is cut off rather than holding the reply.
func TestHealthReportsEveryStoreCheck(t *testing.T) {
	env := startNATS(t)
	s := newStores(t)
	checks := []query.StoreCheck{
		{Name: "graph", Check: func(context.Context) error { return nil }},
		{Name: "vectors", Check: func(context.Context) error { return errors.New("vectors.db: disk I/O error") }},
		{Name: "kv", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}
	svc := query.New(query.Config{}, env.nc, discardLogger(), s.embed, s.vectors, s.graph, query.WithHealthChecks(checks))
	run(t, env, svc)

	var msg []byte
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := env.nc.Request(events.QueryHealthSubject, nil, 5*time.Second)
		if assert.NoError(c, err) {
			msg = m.Data
		}
	}, 10*time.Second, 20*time.Millisecond)
	var report events.HealthReport
	require.NoError(t, json.Unmarshal(msg, &report))
	require.Equal(t, []events.BackendCheck{
		{Name: "graph"},
		{Name: "vectors", Error: "vectors.db: disk I/O error"},
		{Name: "kv", Error: context.DeadlineExceeded.Error()},
	}, report.Backends)
}
