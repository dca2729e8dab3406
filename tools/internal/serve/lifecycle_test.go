package serve_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/services/extractor"
	"github.com/kgraph-dev/kgraph/services/projection"
	"github.com/kgraph-dev/kgraph/tools/fakellm"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// getJob reads a job through the API.
func getJob(t *testing.T, c e2e.Client, id string) map[string]any {
	t.Helper()
	r, err := c.JSON(context.Background(), http.MethodGet, "/api/v1/jobs/"+id, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	return r.Body
}

// waitStatus waits until the job has the status.
func waitStatus(t *testing.T, c e2e.Client, id, status string, timeout time.Duration) map[string]any {
	t.Helper()
	var last map[string]any
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		// A job just submitted appears within moments: 404 until then.
		r, err := c.JSON(context.Background(), http.MethodGet, "/api/v1/jobs/"+id, nil)
		require.NoError(t, err)
		if r.Status == http.StatusOK {
			last = r.Body
			if last["status"] == status {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s never became %s (last: %v)", id, status, last)
	return nil
}

func post(t *testing.T, c e2e.Client, path string, body any) e2e.Response {
	t.Helper()
	r, err := c.JSON(context.Background(), http.MethodPost, path, body)
	require.NoError(t, err)
	return r
}

// The approval path: an estimate without any LLM call, approve, complete.
func TestApprovalThenApproveCompletes(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Seed: 1})
	require.NoError(t, err)
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	s := startTB(t, t.TempDir(), withLLM(api.URL, 0, 8))
	c := s.client
	doc := e2e.Corpus(3, 6_000)
	sub := submit(t, c, map[string]any{"content": doc, "namespace": "approvals", "auto_approve": false})
	require.Equal(t, "awaiting_approval", sub["status"])
	est := sub["estimate"].(map[string]any)
	require.Greater(t, est["chunks"].(float64), float64(1))
	require.Greater(t, est["tokens_in"].(float64), float64(1000))
	require.Greater(t, est["cost_high_usd"].(float64), est["cost_low_usd"].(float64))
	require.Greater(t, est["cost_low_usd"].(float64), float64(0))
	id := sub["job_id"].(string)
	job := waitStatus(t, c, id, "awaiting_approval", 30*time.Second)
	require.Equal(t, est["chunks"], job["estimate"].(map[string]any)["chunks"])
	require.Zero(t, fake.Stats().TotalCalls, "an estimate must not call the LLM")

	// Approving twice: the second one is a conflict, the job runs once.
	r := post(t, c, "/api/v1/jobs/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, http.StatusConflict, post(t, c, "/api/v1/jobs/"+id+"/approve", nil).Status)
	job, err = c.WaitJob(context.Background(), id, 2*time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.NotEmpty(t, job["approved_at"])
	p := job["progress"].(map[string]any)
	require.Equal(t, est["chunks"], p["chunks_total"], "the estimate counts the chunks the extractor makes")
}

// withLLM extracts with the fake LLM at the given latency and concurrency.
func withLLM(baseURL string, latency time.Duration, concurrency int) func(*serve.Config) {
	_ = latency // the fake's own config sets it
	return func(cfg *serve.Config) {
		cfg.LLM = &extractor.LLMConfig{Chat: llm.Config{BaseURL: baseURL + "/v1", APIKey: "test", Model: "gpt-4o-mini",
			MaxConcurrency: concurrency, Prices: llm.PriceTable{"gpt-4o-mini": {PromptPerMillion: 0.15, CompletionPerMillion: 0.6}}}}
		cfg.Extractor.ChunkConcurrency = concurrency
		cfg.Edge.Estimate.Model = "gpt-4o-mini"
	}
}

func withScheduler(interval, approvalTTL, retention time.Duration) func(*serve.Config) {
	return func(cfg *serve.Config) {
		cfg.Projection = projection.Config{SchedulerInterval: interval, ApprovalTTL: approvalTTL, Retention: retention}
	}
}

func TestApprovalExpires(t *testing.T) {
	s := startTB(t, t.TempDir(), withScheduler(200*time.Millisecond, time.Second, time.Hour))
	c := s.client
	sub := submit(t, c, map[string]any{"content": "Hedy Lamarr co-invented frequency hopping.", "auto_approve": false})
	id := sub["job_id"].(string)
	job := waitStatus(t, c, id, "expired", 30*time.Second)
	require.NotEmpty(t, job["finished_at"])
	r := post(t, c, "/api/v1/jobs/"+id+"/approve", nil)
	require.Equal(t, http.StatusConflict, r.Status, "an expired job cannot be approved: %s", r.Raw)
	// The claim was released: the same content is not a duplicate of the
	// expired job.
	again := submit(t, c, map[string]any{"content": "Hedy Lamarr co-invented frequency hopping."})
	job, err := c.WaitJob(context.Background(), again["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
}

func TestCancelInEveryState(t *testing.T) {
	fake, err := fakellm.New(fakellm.Config{Seed: 1, Latency: 150 * time.Millisecond})
	require.NoError(t, err)
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	s := startTB(t, t.TempDir(), withLLM(api.URL, 150*time.Millisecond, 2))
	c := s.client
	ctx := context.Background()

	t.Run("awaiting approval", func(t *testing.T) {
		sub := submit(t, c, map[string]any{"content": "Barbara Liskov designed CLU.", "auto_approve": false})
		id := sub["job_id"].(string)
		waitStatus(t, c, id, "awaiting_approval", 30*time.Second)
		r := post(t, c, "/api/v1/jobs/"+id+"/cancel", map[string]any{"reason": "too expensive"})
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		job := waitStatus(t, c, id, "cancelled", 10*time.Second)
		require.Equal(t, float64(0), job["progress"].(map[string]any)["chunks_total"])
		require.Equal(t, http.StatusConflict, post(t, c, "/api/v1/jobs/"+id+"/approve", nil).Status)
		require.Equal(t, http.StatusConflict, post(t, c, "/api/v1/jobs/"+id+"/cancel", nil).Status, "cancelling twice")
	})

	t.Run("pending", func(t *testing.T) {
		// Cancelled in the same moment it is submitted: whatever stage the
		// cancel catches it in, nothing is extracted after it.
		sub := submit(t, c, map[string]any{"content": e2e.Corpus(5, 8_000)})
		id := sub["job_id"].(string)
		r := post(t, c, "/api/v1/jobs/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		job := waitStatus(t, c, id, "cancelled", 10*time.Second)
		p := job["progress"].(map[string]any)
		require.Less(t, p["chunks_processed"].(float64), float64(3), job)
	})

	t.Run("processing", func(t *testing.T) {
		sub := submit(t, c, map[string]any{"content": e2e.Corpus(7, 30_000), "namespace": "cancel-mid"})
		id := sub["job_id"].(string)
		waitStatus(t, c, id, "processing", time.Minute)
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			r, err := c.JSON(context.Background(), http.MethodGet, "/api/v1/jobs/"+id, nil)
			require.NoError(ct, err)
			require.Equal(ct, http.StatusOK, r.Status, string(r.Raw))
			p, _ := r.Body["progress"].(map[string]any)
			processed, _ := p["chunks_processed"].(float64)
			assert.GreaterOrEqual(ct, processed, float64(1))
		}, time.Minute, 20*time.Millisecond)
		r := post(t, c, "/api/v1/jobs/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Contains(t, r.Body["message"], "cancelled")
		waitStatus(t, c, id, "cancelled", 10*time.Second)
		// In-flight chunks finish; then nothing moves any more.
		time.Sleep(2 * time.Second)
		settled := getJob(t, c, id)["progress"].(map[string]any)
		time.Sleep(time.Second)
		final := getJob(t, c, id)
		p := final["progress"].(map[string]any)
		require.Equal(t, settled["chunks_processed"], p["chunks_processed"], "the job kept going after it was cancelled")
		require.Less(t, p["chunks_processed"].(float64), p["chunks_total"].(float64), "it stopped between chunks, before the end")
		require.Equal(t, "cancelled", final["status"])
		require.Equal(t, http.StatusConflict, post(t, c, "/api/v1/jobs/"+id+"/cancel", nil).Status)
		_ = ctx
	})
}

func TestDuplicateOfAPendingJob(t *testing.T) {
	s := start(t, t.TempDir())
	c := s.client
	content := "Radia Perlman invented the spanning tree protocol."
	first := submit(t, c, map[string]any{"content": content, "auto_approve": false})
	id := first["job_id"].(string)
	waitStatus(t, c, id, "awaiting_approval", 30*time.Second)
	second := submit(t, c, map[string]any{"content": content})
	require.Equal(t, true, second["duplicate"], second)
	require.Equal(t, id, second["existing_job_id"])
	require.Equal(t, "awaiting_approval", second["existing_job"].(map[string]any)["status"])
	require.Contains(t, second["hint"], "force")
	dup := waitStatus(t, c, second["job_id"].(string), "duplicate", 30*time.Second)
	require.Equal(t, id, dup["existing_job_id"])
}

func TestDeleteDocumentThenQuery(t *testing.T) {
	s := start(t, t.TempDir())
	c := s.client
	ctx := context.Background()
	keep := submit(t, c, map[string]any{"content": e2e.Corpus(11, 3_000), "doc_id": "keep", "namespace": "lib"})
	gone := submit(t, c, map[string]any{"content": "Zorblax Quintavius founded the Vexmoor Observatory. Zorblax Quintavius married Ilsavet Grunhold in Vexmoor.",
		"doc_id": "gone", "namespace": "lib"})
	for _, sub := range []map[string]any{keep, gone} {
		job, err := c.WaitJob(ctx, sub["job_id"].(string), time.Minute)
		require.NoError(t, err)
		require.Equal(t, "completed", job["status"], job)
	}
	entities := func() []any {
		r, err := c.JSON(ctx, http.MethodGet, "/api/v1/graph/entities?q=zorblax&namespace=lib", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		list, _ := r.Body["entities"].([]any)
		return list
	}
	require.NotEmpty(t, entities())
	ask := func() string {
		r := post(t, c, "/api/v1/query", map[string]any{"question": "Who founded the Vexmoor Observatory, Zorblax Quintavius?", "mode": "local", "namespace": "lib"})
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		return string(r.Raw)
	}
	require.Contains(t, ask(), "Zorblax")

	r, err := c.JSON(ctx, http.MethodGet, "/api/v1/documents/gone?namespace=lib", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "ready", r.Body["status"])
	require.Contains(t, r.Body["content"], "Vexmoor")
	require.Equal(t, gone["job_id"], r.Body["job"].(map[string]any)["job_id"])

	del, err := c.JSON(ctx, http.MethodDelete, "/api/v1/documents/gone?namespace=lib", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, del.Status, string(del.Raw))
	job, err := c.WaitJob(ctx, del.Body["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)
	require.Equal(t, "delete", job["kind"])

	require.Empty(t, entities(), "the deleted document's entities are gone")
	require.NotContains(t, ask(), "Zorblax", "a query no longer finds the deleted document")
	r, err = c.JSON(ctx, http.MethodGet, "/api/v1/documents/gone?namespace=lib", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, r.Status)
	r, err = c.JSON(ctx, http.MethodGet, "/api/v1/documents?namespace=lib", nil)
	require.NoError(t, err)
	docs := r.Body["documents"].([]any)
	require.Len(t, docs, 1)
	require.Equal(t, "keep", docs[0].(map[string]any)["doc_id"])
	// The content may come again: its claim went with the document.
	again := submit(t, c, map[string]any{"content": "Zorblax Quintavius founded the Vexmoor Observatory. Zorblax Quintavius married Ilsavet Grunhold in Vexmoor.",
		"doc_id": "gone", "namespace": "lib"})
	require.NotEqual(t, true, again["duplicate"])
}

func TestRetentionCleanup(t *testing.T) {
	s := startTB(t, t.TempDir(), withScheduler(time.Hour, time.Hour, time.Second))
	c := s.client
	ctx := context.Background()
	sub := submit(t, c, map[string]any{"content": "Frances Allen pioneered optimizing compilers."})
	id := sub["job_id"].(string)
	job, err := c.WaitJob(ctx, id, time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"])
	waiting := submit(t, c, map[string]any{"content": "Jean Sammet designed FORMAC.", "auto_approve": false})
	waitStatus(t, c, waiting["job_id"].(string), "awaiting_approval", 30*time.Second)

	status, err := c.JSON(ctx, http.MethodGet, "/api/v1/admin/scheduler/status", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status.Status, string(status.Raw))
	time.Sleep(1100 * time.Millisecond) // past the retention period
	dry := post(t, c, "/api/v1/admin/scheduler/cleanup", map[string]any{"dry_run": true})
	require.Equal(t, http.StatusOK, dry.Status, string(dry.Raw))
	require.Equal(t, http.StatusOK, func() int {
		r, _ := c.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil)
		return r.Status
	}(), "a dry run deletes nothing")
	r := post(t, c, "/api/v1/admin/scheduler/cleanup", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Contains(t, string(r.Raw), id)
	gone, err := c.JSON(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, gone.Status)
	// Unfinished jobs and the document stay.
	require.Equal(t, "awaiting_approval", getJob(t, c, waiting["job_id"].(string))["status"])
	docs, err := c.JSON(ctx, http.MethodGet, "/api/v1/documents", nil)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(docs.Raw), `"status":"ready"`), string(docs.Raw))
}
