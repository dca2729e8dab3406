package llm

import (
	"maps"
	"sync"
)

// Stats describes what a provider has done since it was created.
type Stats struct {
	// Calls counts Complete and Stream calls, or embedding batches.
	Calls int64
	// Attempts counts HTTP requests sent: Calls plus Retries, less calls
	// that never got to send one.
	Attempts int64
	Retries  int64
	// Errors counts calls that returned an error other than the caller's
	// cancellation, which Canceled counts.
	Errors   int64
	Canceled int64
	// RateLimited counts 429 responses, Timeouts attempts cut off by
	// Config.Timeout; both include attempts that were retried.
	RateLimited int64
	Timeouts    int64
	// MaxInFlight is the highest number of concurrent requests seen.
	MaxInFlight int
	// EstimatedUsage counts successful calls whose usage the server did
	// not report.
	EstimatedUsage   int64
	PromptTokens     int64
	CompletionTokens int64
	// Cost is in dollars, from Config.Prices.
	Cost float64
	// Stages breaks calls, errors, tokens and cost down by
	// ChatRequest.Stage ("embed" for embeddings, "" when unset).
	Stages map[string]StageStats
}

// StageStats is the share of one pipeline stage in Stats.
type StageStats struct {
	Calls            int64
	Errors           int64
	PromptTokens     int64
	CompletionTokens int64
	Cost             float64
}

// recorder accumulates Stats; it is shared by a provider's calls.
type recorder struct {
	mu       sync.Mutex
	s        Stats
	inFlight int
}

func newRecorder() *recorder {
	return &recorder{s: Stats{Stages: map[string]StageStats{}}}
}

func (r *recorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.Stages = maps.Clone(r.s.Stages)
	return s
}

func (r *recorder) update(f func(s *Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.s)
}

func (r *recorder) call(stage string) {
	r.update(func(s *Stats) {
		s.Calls++
		st := s.Stages[stage]
		st.Calls++
		s.Stages[stage] = st
	})
}

func (r *recorder) success(stage string, u Usage, cost float64) {
	r.update(func(s *Stats) {
		if u.Estimated {
			s.EstimatedUsage++
		}
		s.PromptTokens += int64(u.PromptTokens)
		s.CompletionTokens += int64(u.CompletionTokens)
		s.Cost += cost
		st := s.Stages[stage]
		st.PromptTokens += int64(u.PromptTokens)
		st.CompletionTokens += int64(u.CompletionTokens)
		st.Cost += cost
		s.Stages[stage] = st
	})
}

func (r *recorder) failure(stage string, canceled bool) {
	r.update(func(s *Stats) {
		if canceled {
			s.Canceled++
			return
		}
		s.Errors++
		st := s.Stages[stage]
		st.Errors++
		s.Stages[stage] = st
	})
}

// started and finished bracket one request in flight.
func (r *recorder) started() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Attempts++
	r.inFlight++
	r.s.MaxInFlight = max(r.s.MaxInFlight, r.inFlight)
}

func (r *recorder) finished() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
}
