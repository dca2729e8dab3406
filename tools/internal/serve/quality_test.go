package serve_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/tools/fakellm"
)

// corpusDir finds ../shared/corpus beside the repository, if it is there.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(corpus, "christmas_carol.txt")); err != nil {
		t.Skip("../shared/corpus not present: the Christmas Carol quality check runs only where the shared corpus is available")
	}
	return corpus
}

// The quality check of the engine: A Christmas Carol through the real
// pipeline, with the fake LLM replaying the gpt-4o responses recorded while
// nano-graphrag indexed it.
func TestChristmasCarolQuality(t *testing.T) {
	corpus := corpusDir(t)
	text, err := os.ReadFile(filepath.Join(corpus, "christmas_carol.txt"))
	require.NoError(t, err)
	fake, err := fakellm.New(fakellm.Config{Mode: fakellm.ModeReplay, ReplayPath: filepath.Join(corpus, "christmas_carol_gpt4o_responses.json"), Seed: 1})
	require.NoError(t, err)
	c := startWithLLM(t, fake)
	ctx := context.Background()

	sub := submit(t, c, map[string]any{"content": string(text), "namespace": "carol", "doc_id": "christmas-carol"})
	job, err := c.WaitJob(ctx, sub["job_id"].(string), 5*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	p := job["progress"].(map[string]any)
	usage := job["usage"].(map[string]any)
	t.Logf("chunks %v, entities %v, relations %v, llm calls %v, skipped records %v",
		p["chunks_total"], p["entities"], p["relations"], usage["calls"], usage["skipped_records"])
	require.Zero(t, usage["skipped_records"], "every recorded extraction output parses")

	// The main characters are entities with merged descriptions, found by
	// a local query about each.
	for _, name := range []string{"SCROOGE", "MARLEY", "BOB CRATCHIT", "TINY TIM", "FRED", "FEZZIWIG", "BELLE",
		"GHOST OF CHRISTMAS PAST", "GHOST OF CHRISTMAS PRESENT", "GHOST OF CHRISTMAS YET TO COME"} {
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{
			"question": "Who is " + strings.ToLower(name) + "?", "mode": "local", "namespace": "carol", "only_context": true})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		found := false
		for _, e := range r.Body["references"].(map[string]any)["entities"].([]any) {
			if strings.Contains(e.(map[string]any)["key"].(string), name) {
				found = true
			}
		}
		require.True(t, found, "no entity for %s among the local references", name)
	}
	// Relations between the main characters.
	for _, pair := range [][2]string{{"SCROOGE", "MARLEY"}, {"SCROOGE", "BOB CRATCHIT"}, {"BOB CRATCHIT", "TINY TIM"}} {
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{
			"question": "How are " + pair[0] + " and " + pair[1] + " related?", "mode": "local", "namespace": "carol", "only_context": true})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		found := false
		for _, rel := range r.Body["references"].(map[string]any)["relations"].([]any) {
			src, dst := rel.(map[string]any)["source"].(string), rel.(map[string]any)["target"].(string)
			if (strings.Contains(src, pair[0]) && strings.Contains(dst, pair[1])) || (strings.Contains(src, pair[1]) && strings.Contains(dst, pair[0])) {
				found = true
			}
		}
		require.True(t, found, "no relation between %s and %s", pair[0], pair[1])
	}

	// Communities are built after the job completes; their reports feed
	// global queries.
	var reports []any
	require.Eventually(t, func() bool {
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{
			"question": "What are the main themes?", "mode": "global", "namespace": "carol", "only_context": true, "no_cache": true})
		if err != nil || r.Status != http.StatusOK {
			return false
		}
		reports = r.Body["references"].(map[string]any)["reports"].([]any)
		return len(reports) > 0
	}, 2*time.Minute, 200*time.Millisecond, "no community reports")
	t.Logf("community reports used by a global query: %d (levels ≤ 2)", len(reports))

	for _, mode := range []string{"local", "global", "naive"} {
		r, err := c.JSON(ctx, http.MethodPost, "/api/v1/query", map[string]any{
			"question": "What is the relationship between Scrooge and Bob Cratchit?", "mode": mode, "namespace": "carol"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.NotEmpty(t, r.Body["answer"], mode)
		refs := r.Body["references"].(map[string]any)
		switch mode {
		case "global":
			require.NotEmpty(t, refs["reports"], mode)
		default:
			require.NotEmpty(t, refs["chunks"], mode)
		}
		t.Logf("%s answer (%v): %.200s", mode, r.Body["answerer"], r.Body["answer"])
	}
}
