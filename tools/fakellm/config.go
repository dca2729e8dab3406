package fakellm

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Modes of the server.
const (
	ModeHeuristic = "heuristic"
	ModeReplay    = "replay"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultModel       = "fakellm"
	DefaultEmbedModel  = "fakellm-embed"
	DefaultEmbedDim    = 256
	DefaultRetryAfter  = time.Second
	DefaultMaxEntities = 20
)

const (
	maxRequestBytes  = 64 << 20
	maxEmbedDim      = 16384
	streamChunkBytes = 16 // about four tokens per streamed delta
	kindEmbeddings   = "embeddings"
)

// Config configures a Server. The zero value is a heuristic server with no
// latency, no concurrency limit and no faults.
type Config struct {
	// Mode is ModeHeuristic (default) or ModeReplay.
	Mode string
	// ReplayPath is the recorded responses file replay mode serves.
	ReplayPath string

	// Latency is added to every answered call (before the first streamed
	// chunk) while it holds a concurrency slot. 429s are immediate.
	Latency time.Duration
	// MaxConcurrency bounds the calls being worked on at once; calls beyond
	// it wait for a slot. 0 means unlimited.
	MaxConcurrency int

	// Shares of calls, each in [0, 1], summing to at most 1, that get: a 429
	// with Retry-After; a 500 (after the latency); no answer until the
	// client gives up (the request context ends); garbage text; a truncated
	// output (cut mid-record, finish_reason "length"). Garbage and
	// truncation apply to chat completions only.
	Rate429, Rate500, RateTimeout, RateGarbage, RateTruncated float64
	// RetryAfter is announced with 429s, as Retry-After (whole seconds,
	// rounded up) and retry-after-ms. Default 1s.
	RetryAfter time.Duration
	// Seed selects which calls get faults.
	Seed uint64

	// EmbedDim is the embedding dimension when a request does not ask for
	// one. Default 256.
	EmbedDim int
	// GleanYes is how many gleaning rounds of a conversation the glean-loop
	// prompt answers YES to before answering NO. Default 0.
	GleanYes int
	// MaxEntities bounds the entities of one heuristic extraction pass; the
	// rest of a chunk's entities come out in gleaning rounds. Default 20.
	MaxEntities int
	// Model and EmbedModel are the ids listed by /v1/models and echoed when
	// a request names no model.
	Model      string
	EmbedModel string
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeHeuristic
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.EmbedDim == 0 {
		c.EmbedDim = DefaultEmbedDim
	}
	if c.MaxEntities == 0 {
		c.MaxEntities = DefaultMaxEntities
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.EmbedModel == "" {
		c.EmbedModel = DefaultEmbedModel
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	switch c.Mode {
	case ModeHeuristic:
	case ModeReplay:
		if c.ReplayPath == "" {
			errs = append(errs, errors.New("replay mode needs a replay path"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeHeuristic, ModeReplay))
	}
	sum := 0.0
	for _, r := range []struct {
		name string
		v    float64
	}{{"429", c.Rate429}, {"500", c.Rate500}, {"timeout", c.RateTimeout}, {"garbage", c.RateGarbage}, {"truncated", c.RateTruncated}} {
		if r.v < 0 || r.v > 1 || math.IsNaN(r.v) {
			errs = append(errs, fmt.Errorf("%s rate %v: want a share in [0, 1]", r.name, r.v))
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		errs = append(errs, fmt.Errorf("fault rates sum to %v: want at most 1", sum))
	}
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v: want >= 0", c.Latency))
	}
	if c.MaxConcurrency < 0 {
		errs = append(errs, fmt.Errorf("max concurrency %d: want >= 0 (0 = unlimited)", c.MaxConcurrency))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry-after %v: want >= 0", c.RetryAfter))
	}
	if c.EmbedDim < 1 || c.EmbedDim > maxEmbedDim {
		errs = append(errs, fmt.Errorf("embedding dimension %d: want 1..%d", c.EmbedDim, maxEmbedDim))
	}
	if c.GleanYes < 0 {
		errs = append(errs, fmt.Errorf("glean-yes %d: want >= 0", c.GleanYes))
	}
	if c.MaxEntities < 1 {
		errs = append(errs, fmt.Errorf("max entities %d: want >= 1", c.MaxEntities))
	}
	return errors.Join(errs...)
}
