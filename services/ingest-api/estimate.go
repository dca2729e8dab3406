package ingestapi

import (
	"errors"
	"fmt"
	"math"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/llm"
)

// EstimateConfig prices a submission before any LLM call: the text is split
// exactly as the extractor will split it, and each chunk is priced as the
// extraction calls it will take.
type EstimateConfig struct {
	// Model is the extraction model ("" or "offline": no LLM, no cost).
	Model string
	// Prices maps models to dollars per million tokens.
	Prices llm.PriceTable
	// ChunkTokens counts the tokens of each chunk the extractor will make
	// of a text (libs/chunk with the extractor's settings).
	ChunkTokens func(text string) []int
	// Gleanings is the number of gleaning passes after the first extraction
	// call (KG_GLEANING).
	Gleanings int
	// PromptTokens is the extraction prompt around a chunk (the GraphRAG
	// prompt with its examples is about 1,800 tokens).
	PromptTokens int
	// OutputRatioLow and OutputRatioHigh bound an extraction call's output
	// as a fraction of its chunk's tokens.
	OutputRatioLow, OutputRatioHigh float64
}

// DefaultPrices are public list prices (USD per million tokens) of common
// extraction models; KG_PRICE_TABLE overrides and extends them.
func DefaultPrices() llm.PriceTable {
	return llm.PriceTable{
		"gpt-4o":       {PromptPerMillion: 2.50, CompletionPerMillion: 10.00},
		"gpt-4o-mini":  {PromptPerMillion: 0.15, CompletionPerMillion: 0.60},
		"gpt-4.1":      {PromptPerMillion: 2.00, CompletionPerMillion: 8.00},
		"gpt-4.1-mini": {PromptPerMillion: 0.40, CompletionPerMillion: 1.60},
		"gpt-4.1-nano": {PromptPerMillion: 0.10, CompletionPerMillion: 0.40},
	}
}

func (c *EstimateConfig) defaults() {
	if c.PromptTokens <= 0 {
		c.PromptTokens = 1800
	}
	if c.OutputRatioLow <= 0 {
		c.OutputRatioLow = 0.15
	}
	if c.OutputRatioHigh <= 0 {
		c.OutputRatioHigh = 0.6
	}
	if c.Prices == nil {
		c.Prices = DefaultPrices()
	}
}

// Validate checks the settings.
func (c *EstimateConfig) Validate() error {
	if c.Gleanings < 0 || c.PromptTokens < 0 {
		return errors.New("estimate: gleanings and prompt tokens must not be negative")
	}
	if c.OutputRatioLow < 0 || c.OutputRatioHigh < c.OutputRatioLow {
		return fmt.Errorf("estimate: output ratios must satisfy 0 <= low (%g) <= high (%g)", c.OutputRatioLow, c.OutputRatioHigh)
	}
	return nil
}

// estimate prices ingesting text. Each chunk takes 1 + Gleanings calls;
// every call sends the prompt and the chunk, and a gleaning call also sends
// the answers so far, so input grows with the output estimate.
func (c EstimateConfig) estimate(text string) *events.Estimate {
	model := c.Model
	if model == "" {
		model = "offline"
	}
	var chunks []int
	if c.ChunkTokens != nil {
		chunks = c.ChunkTokens(text)
	}
	e := &events.Estimate{Chunks: len(chunks), Model: model}
	if model == "offline" {
		return e // the offline extractor makes no call
	}
	calls := 1 + c.Gleanings
	var inLow, inHigh float64
	for _, t := range chunks {
		outLow, outHigh := float64(t)*c.OutputRatioLow, float64(t)*c.OutputRatioHigh
		// Call k (0-based) carries the k answers before it.
		base := float64(calls * (c.PromptTokens + t))
		history := float64(calls*(calls-1)) / 2
		inLow += base + history*outLow
		inHigh += base + history*outHigh
		e.TokensOutLow += int(math.Round(outLow * float64(calls)))
		e.TokensOutHigh += int(math.Round(outHigh * float64(calls)))
	}
	e.TokensIn = int(math.Round(inHigh))
	low := c.Prices.Cost(model, llm.Usage{PromptTokens: int(math.Round(inLow)), CompletionTokens: e.TokensOutLow})
	high := c.Prices.Cost(model, llm.Usage{PromptTokens: e.TokensIn, CompletionTokens: e.TokensOutHigh})
	e.CostLowUSD, e.CostHighUSD = roundCents(low), roundCents(high)
	return e
}

// roundCents keeps estimates readable: a hundredth of a cent is noise.
func roundCents(usd float64) float64 { return math.Round(usd*10000) / 10000 }
