package serve_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/extractor"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/fakellm"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// startWithLLM runs kgraph with LLM extraction and provider embeddings, both
// served by the fake OpenAI-compatible server over real HTTP.
func startWithLLM(t *testing.T, fake *fakellm.Server) e2e.Client {
	t.Helper()
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	cfg := serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Bus: bus.DefaultSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Edge: ingestapi.Config{Auth: ingestapi.AuthConfig{Disabled: true}},
		LLM: &extractor.LLMConfig{Chat: llm.Config{BaseURL: api.URL + "/v1", APIKey: "test", Model: "fakellm",
			MaxConcurrency: 8, Prices: llm.PriceTable{"fakellm": {PromptPerMillion: 0.15, CompletionPerMillion: 0.6}}}},
		Embed: &llm.EmbedConfig{BaseURL: api.URL + "/v1", APIKey: "test", Model: "fakellm-embed", Dim: 128},
	}
	cfg.Bus.AckWait = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan serve.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, cfg, func(r serve.Ready) { readyc <- r }) }()
	var r serve.Ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	}
	require.Equal(t, "llm:fakellm", r.Extractor)
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	})
	return e2e.Client{Base: "http://" + r.HTTPAddr}
}

func TestLLMExtractionThroughThePipeline(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Mode: fakellm.ModeHeuristic, Seed: 1})
	require.NoError(t, err)
	c := startWithLLM(t, fake)
	ctx := context.Background()
	doc := e2e.Corpus(21, 6000)

	sub := submit(t, c, map[string]any{"content": doc, "namespace": "first"})
	job, err := c.WaitJob(ctx, sub["job_id"].(string), 2*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.Equal(t, "llm:fakellm", job["extractor"])
	chunks := job["progress"].(map[string]any)["chunks_total"].(float64)
	usage := job["usage"].(map[string]any)
	// One extraction and one gleaning call per chunk (gleaning 1, as nano-graphrag).
	require.Equal(t, 2*chunks, usage["calls"], usage)
	require.Zero(t, usage["cached_calls"])
	require.Positive(t, usage["prompt_tokens"].(float64))
	require.Positive(t, usage["cost_usd"].(float64))
	require.Positive(t, job["progress"].(map[string]any)["entities"].(float64))
	served := fake.Stats()

	// The same text in another namespace is a new job, but every prompt is
	// answered from the LLM cache: no call is made.
	again := submit(t, c, map[string]any{"content": doc, "namespace": "second"})
	job2, err := c.WaitJob(ctx, again["job_id"].(string), 2*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job2["status"], job2)
	usage2 := job2["usage"].(map[string]any)
	require.Zero(t, usage2["calls"], usage2)
	require.Equal(t, 2*chunks, usage2["cached_calls"])
	after := fake.Stats()
	// Community reports are written asynchronously after each job; only
	// extraction calls belong to the re-run.
	extractionCalls := func(s fakellm.Stats) int64 {
		return s.Calls["extraction"] + s.Calls["glean_continue"] + s.Calls["glean_loop"]
	}
	require.Equal(t, extractionCalls(served), extractionCalls(after), "no extraction call for the cached re-run")

	for _, mode := range []string{"naive", "local"} {
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{"question": "Who studied the Analytical Engine?", "mode": mode, "namespace": "first"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.NotEmpty(t, r.Body["references"].(map[string]any)["chunks"], mode)
	}
}
