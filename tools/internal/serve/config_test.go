package serve

import (
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/services/extractor"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/services/projection"
	"github.com/kgraph-dev/kgraph/services/query"
)

// TestHostsReadOneConfig fails when the hosts drift: from one environment,
// each service kg serve wires gets the config its binary reads (the
// service's ReadConfig, which both call), but for the concurrency, which
// only a binary reads from KG_CONCURRENCY.
func TestHostsReadOneConfig(t *testing.T) {
	envs := map[string]map[string]string{
		"defaults": {"KG_AUTH_DISABLED": "true"},
		"tuned": {"KG_AUTH_DISABLED": "true", "KG_CHUNK_TOKENS": "600", "KG_CHUNK_OVERLAP": "40", "KG_DOCUMENT_CONCURRENCY": "3",
			"KG_QUERY_ENTITY_TOP_K": "7", "KG_QUERY_CACHE": "false", "KG_QUERY_TIMEOUT": "45s", "KG_QUERY_LEVEL": "1",
			"KG_COMMUNITY_MAX_SIZE": "5", "KG_SCHEDULER_INTERVAL": "30s", "KG_EDGE_CACHE_TTL": "2s",
			"KG_EMBED_DIM": "64", "KG_CONCURRENCY": "3", "KG_EXTRACT_CONCURRENCY": "5"},
		"llm": {"KG_AUTH_DISABLED": "true", "KG_LLM_BASE_URL": "http://llm.invalid/v1", "KG_LLM_API_KEY": "k", "KG_LLM_MODEL": "gpt-4o-mini",
			"KG_GLEANING": "0", "KG_CONCURRENCY": "3"},
	}
	for name, vars := range envs {
		t.Run(name, func(t *testing.T) {
			newEnv := func() *envconf.Reader { return envconf.New(func(k string) string { return vars[k] }) }
			cfg, err := ReadConfig(newEnv(), t.TempDir())
			require.NoError(t, err)
			cfg.DataDir, cfg.HTTPAddr, cfg.Bus = t.TempDir(), "127.0.0.1:0", bus.DefaultSettings()
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			require.NoError(t, cfg.Validate())
			got := serviceConfigs(cfg)

			// The extractor: the binary's config, validated, but the chunk
			// concurrency, which kg serve reads from KG_EXTRACT_CONCURRENCY.
			wantExt := extractor.ReadConfig(newEnv())
			require.NoError(t, wantExt.Validate())
			gotExt := got.extractor
			if v := vars["KG_EXTRACT_CONCURRENCY"]; v != "" {
				require.Equal(t, v, strconv.Itoa(gotExt.ChunkConcurrency))
			}
			wantExt.ChunkConcurrency, gotExt.ChunkConcurrency = 0, 0
			require.Equal(t, wantExt, gotExt)

			wantGW, err := graphwriter.ReadConfig(newEnv())
			require.NoError(t, err)
			require.Equal(t, wantGW, got.graphWriter)

			wantProj, err := projection.ReadConfig(newEnv())
			require.NoError(t, err)
			require.Equal(t, wantProj, got.projection, "kg serve does not take KG_CONCURRENCY")

			require.Equal(t, query.ReadConfig(newEnv()), got.query)

			wantEdge, err := ingestapi.ReadConfig(newEnv())
			require.NoError(t, err)
			require.Equal(t, wantEdge, got.edge, "the edge estimates with the extractor's chunks")
			require.Equal(t, wantEdge.Chunks.MaxTokens, got.extractor.ChunkTokens)

			require.Equal(t, newEnv().Int("KG_EMBED_DIM", hashembed.DefaultDim), cfg.EmbedDim)
		})
	}
}

// TestQueryTimeoutsAgree: with an LLM, the edge waits for a query as long
// as the query service gives it.
func TestQueryTimeoutsAgree(t *testing.T) {
	require.Equal(t, query.DefaultLLMTimeout, ingestapi.DefaultLLMQueryTimeout)
}
