package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
	"github.com/kgraph-dev/kgraph/libs/redistest"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// kg serve opens the stores the service binaries open, chosen the same
// way: on Neo4j and Redis a document goes through the pipeline into Neo4j,
// queries read it back, and health and info name those backends.
func TestServeOnProductionStores(t *testing.T) {
	neo4jURI := os.Getenv("NEO4J_URI")
	if neo4jURI == "" {
		if os.Getenv("KG_SKIP_NEO4J") == "1" {
			t.Skip("KG_SKIP_NEO4J=1")
		}
		t.Fatal("NEO4J_URI is not set: start the Neo4j test server (make neo4j-start, or make test which starts it)")
	}
	stores := backends.Config{Graph: backends.Neo4j, KV: backends.Redis, RedisURL: redistest.Run(t),
		Neo4j: neo4jgraph.Config{URI: neo4jURI, User: "neo4j", Password: os.Getenv("NEO4J_PASSWORD")}}
	s := startTB(t, t.TempDir(), func(c *serve.Config) { c.Stores = stores })
	ctx := context.Background()
	// Neo4j outlives the test: a namespace of its own.
	ns := fmt.Sprintf("serve-stores-%d", time.Now().UnixNano()%1e9)
	sub := submit(t, s.client, map[string]any{"content": e2e.Corpus(3, 6_000), "doc_id": "doc", "namespace": ns})
	job, err := s.client.WaitJob(ctx, sub["job_id"].(string), 2*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)

	stats, err := s.client.JSON(ctx, http.MethodGet, "/api/v1/stats?namespace="+ns, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, stats.Status, string(stats.Raw))
	require.Positive(t, stats.Body["entities"], "the graph is in Neo4j")

	answer, err := s.client.JSON(ctx, http.MethodPost, "/api/v1/query",
		map[string]any{"question": "Who worked with Ada Lovelace?", "mode": "local", "namespace": ns, "only_context": true})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, answer.Status, string(answer.Raw))
	require.NotEmpty(t, answer.Body["references"].(map[string]any)["entities"])

	health, err := s.client.JSON(ctx, http.MethodGet, "/api/v1/health", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, health.Status, string(health.Raw))
	checks := health.Body["backends"].(map[string]any)
	for _, name := range []string{"nats", "neo4j", "redis", "vectors"} {
		require.Contains(t, checks, name)
		require.Equal(t, "healthy", checks[name].(map[string]any)["status"], name)
	}
	info, err := s.client.JSON(ctx, http.MethodGet, "/api/v1/info", nil)
	require.NoError(t, err)
	require.Equal(t, "neo4j", info.Body["graph_store"])
	require.Equal(t, "redis", info.Body["kv_store"])
	require.Equal(t, "sqlite", info.Body["vector_store"])
}
