package ingestapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// TestHealthListsTheQueryServicesBackends is the edge of a services
// deployment: it checks NATS and its KV store itself and asks the query
// service, over NATS, for the graph and vector stores, each of which turns
// unhealthy when the service reports it down; a query service that does not
// answer is an unhealthy entry of its own.
func TestHealthListsTheQueryServicesBackends(t *testing.T) {
	env := bustest.New(t)
	report := events.HealthReport{Backends: []events.BackendCheck{{Name: "graph"}, {Name: "vectors"}, {Name: "kv"}}}
	var sub *nats.Subscription
	answer := func() {
		var err error
		sub, err = env.NC.Subscribe(events.QueryHealthSubject, func(m *nats.Msg) {
			data, err := json.Marshal(report)
			if err == nil {
				err = m.Respond(data)
			}
			if err != nil {
				t.Errorf("answer health request: %v", err)
			}
		})
		require.NoError(t, err)
		require.NoError(t, env.NC.Flush())
	}
	answer()
	ok := func(context.Context) error { return nil }
	e := newEdgeWith(t, ingestapi.Config{HealthCacheTTL: -1}, func(d *ingestapi.Deps) {
		d.Health = []ingestapi.HealthCheck{{Name: "nats", Check: ok}, {Name: "kv", Check: ok}}
		d.RemoteHealth = ingestapi.AskQueryHealth(env.NC)
	})
	health := func() (int, ingestapi.HealthReply) {
		r := e.do(t, http.MethodGet, "/api/v1/health", "")
		var h ingestapi.HealthReply
		require.NoError(t, json.Unmarshal(r.raw, &h), string(r.raw))
		return r.status, h
	}

	status, h := health()
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "healthy", h.Status)
	require.ElementsMatch(t, []string{"nats", "kv", "graph", "vectors"}, keys(h.Backends), "the edge's own kv check is not repeated")

	for _, down := range []string{"graph", "vectors"} {
		for i := range report.Backends {
			report.Backends[i].Error = ""
			if report.Backends[i].Name == down {
				report.Backends[i].Error = down + " store: connection refused"
			}
		}
		status, h = health()
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "degraded", h.Status, down)
		require.Equal(t, "unhealthy", h.Backends[down].Status, down)
		require.Equal(t, down+" store: connection refused", h.Backends[down].Error)
		for name, b := range h.Backends {
			if name != down {
				require.Equal(t, "healthy", b.Status, name)
			}
		}
	}

	require.NoError(t, sub.Unsubscribe())
	status, h = health()
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "degraded", h.Status)
	require.Equal(t, "unhealthy", h.Backends["query-service"].Status)
	require.Contains(t, h.Backends["query-service"].Error, "did not answer")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
