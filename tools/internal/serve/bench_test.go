package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

// BenchmarkPipeline measures one document of about 40 chunks (the
// end-to-end test's document) through `kg serve` with the offline extractor:
// the wall time from the submit call to the job's completion, and the
// pipeline's own overhead per chunk (no LLM time is involved).
func BenchmarkPipeline(b *testing.B) {
	for _, tokens := range []int{44_000} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			s := startB(b)
			ctx := context.Background()
			var chunks float64
			var total time.Duration
			b.ResetTimer()
			for i := range b.N {
				doc := e2e.Corpus(uint64(1000+i), tokens) // new content each time, or dedup would skip it
				start := time.Now()
				r, err := s.JSON(ctx, http.MethodPost, "/api/v1/documents", map[string]any{"content": doc})
				if err != nil || r.Status != http.StatusAccepted {
					b.Fatalf("submit: %v %s", err, r.Raw)
				}
				job, err := s.WaitJob(ctx, r.Body["job_id"].(string), 5*time.Minute)
				if err != nil || job["status"] != "completed" {
					b.Fatalf("job: %v %v", err, job)
				}
				total += time.Since(start)
				chunks += job["progress"].(map[string]any)["chunks_total"].(float64)
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/doc")
			b.ReportMetric(float64(total.Microseconds())/1000/chunks, "ms/chunk")
			b.ReportMetric(chunks/float64(b.N), "chunks/doc")
		})
	}
}
