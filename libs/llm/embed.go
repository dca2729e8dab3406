package llm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"golang.org/x/sync/errgroup"
)

// embedStage is the Stats stage of embedding batches.
const embedStage = "embed"

// Embedder turns texts into vectors through an OpenAI-compatible
// /embeddings endpoint. It is safe for concurrent use; all calls share its
// concurrency cap, budgets and Stats.
type Embedder struct {
	model     string
	batchSize int
	prices    PriceTable
	client    openai.Client
	runner    *runner
	stats     *recorder
	metrics   *callMetrics
	// requestedDim is sent as the dimensions parameter; only a configured
	// dimension is, never one learned from replies.
	requestedDim int

	mu  sync.Mutex
	dim int // configured, or learned from the first reply
}

// NewEmbedder returns an embedder for cfg, which must be valid.
func NewEmbedder(cfg EmbedConfig, opts ...Option) (*Embedder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("llm embedder config: %w", err)
	}
	p := policyFor(cfg.MaxConcurrency, cfg.RequestsPerMinute, cfg.TokensPerMinute, cfg.MaxRetries, cfg.Timeout)
	o := buildOptions(p.maxConcurrency, opts)
	batchSize := cfg.BatchSize
	if batchSize == 0 {
		batchSize = DefaultBatchSize
	}
	stats := newRecorder()
	metrics := cfg.Metrics.bind(MetricsKindEmbed, cfg.Model)
	return &Embedder{
		model:        cfg.Model,
		batchSize:    batchSize,
		prices:       cfg.Prices,
		client:       newOpenAIClient(cfg.BaseURL, cfg.APIKey, o.httpClient),
		runner:       newRunner(p, o.clock, stats, metrics),
		stats:        stats,
		metrics:      metrics,
		requestedDim: cfg.Dim,
		dim:          cfg.Dim,
	}, nil
}

// Model returns the configured model name.
func (e *Embedder) Model() string { return e.model }

// Dim returns the vector length: the configured one, or the one the server
// returned first; 0 before the first reply when none is configured.
func (e *Embedder) Dim() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dim
}

// Stats returns a snapshot of what the embedder has done so far; each
// batch is one call.
func (e *Embedder) Stats() Stats { return e.stats.snapshot() }

// Embed returns one vector per text, in order. Texts are sent in batches of
// BatchSize, concurrently up to MaxConcurrency; the first batch to fail
// cancels the others and its error is returned.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vectors := make([][]float32, len(texts))
	g, gctx := errgroup.WithContext(ctx)
	for start := 0; start < len(texts); start += e.batchSize {
		end := min(start+e.batchSize, len(texts))
		g.Go(func() error {
			if err := e.embedBatch(gctx, texts[start:end], vectors[start:end]); err != nil {
				return fmt.Errorf("embed texts %d to %d of %d: %w", start, end-1, len(texts), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return vectors, nil
}

// embedBatch embeds texts into out, which has the same length.
func (e *Embedder) embedBatch(ctx context.Context, texts []string, out [][]float32) error {
	e.stats.call(embedStage)
	estimate := 0
	for _, t := range texts {
		estimate += estimateTokens(t)
	}
	params := openai.EmbeddingNewParams{
		Model: e.model,
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
	}
	if e.requestedDim > 0 {
		params.Dimensions = openai.Int(int64(e.requestedDim))
	}
	var usage Usage
	var model string
	start := e.runner.clock.Now()
	err := e.runner.run(ctx, estimate, func(ctx context.Context, opts ...option.RequestOption) (int, error) {
		res, err := e.client.Embeddings.New(ctx, params, opts...)
		if err != nil {
			return 0, err
		}
		// A reply of the wrong shape would misalign vectors and texts; it
		// is the server's doing and a retry would not change it.
		if err := e.place(res.Data, out); err != nil {
			return 0, &finalError{err}
		}
		model = res.Model
		usage = Usage{PromptTokens: int(res.Usage.PromptTokens)}
		if !res.JSON.Usage.Valid() || usage.PromptTokens == 0 {
			usage = Usage{PromptTokens: estimate, Estimated: true}
		}
		return usage.PromptTokens, nil
	})
	e.metrics.call(ctx, start, e.runner.clock.Now(), err)
	if err != nil {
		e.stats.failure(embedStage, isCancellation(ctx, err))
		return err
	}
	e.stats.success(embedStage, usage, e.prices.costOf(model, e.model, usage))
	e.metrics.usage(usage)
	return nil
}

// place converts the reply's vectors to float32 and puts each at its
// index, checking that every text got exactly one vector of the right
// dimension.
func (e *Embedder) place(data []openai.Embedding, out [][]float32) error {
	if len(data) != len(out) {
		return fmt.Errorf("embedding reply has %d vectors for %d texts", len(data), len(out))
	}
	for i := range out {
		out[i] = nil
	}
	for _, d := range data {
		if d.Index < 0 || int(d.Index) >= len(out) {
			return fmt.Errorf("embedding reply has index %d for %d texts", d.Index, len(out))
		}
		if out[d.Index] != nil {
			return fmt.Errorf("embedding reply has index %d twice", d.Index)
		}
		if err := e.checkDim(len(d.Embedding)); err != nil {
			return fmt.Errorf("embedding %d: %w", d.Index, err)
		}
		v := make([]float32, len(d.Embedding))
		for j, x := range d.Embedding {
			v[j] = float32(x)
		}
		out[d.Index] = v
	}
	return nil
}

func (e *Embedder) checkDim(n int) error {
	if n == 0 {
		return errors.New("empty vector")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dim == 0 {
		e.dim = n
	}
	if n != e.dim {
		return fmt.Errorf("%d dimensions, want %d", n, e.dim)
	}
	return nil
}
