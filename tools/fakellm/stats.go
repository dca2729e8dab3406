package fakellm

import (
	"maps"
	"sync"
)

// Stats is what the server has served since it started or was last reset.
type Stats struct {
	// Calls counts every model call received, by what it was for: the
	// prompt kinds ("extraction", "extraction_json", "glean_continue",
	// "glean_loop", "summarize", "community_report", "local_answer",
	// "global_map", "global_reduce", "naive_answer", "unknown") and
	// "embeddings". Faulted calls are counted too.
	Calls map[string]int64 `json:"calls"`
	// TotalCalls is the sum of Calls.
	TotalCalls int64 `json:"total_calls"`
	// Streamed counts the chat calls answered as server-sent events.
	Streamed int64 `json:"streamed"`
	// EmbeddingInputs counts the texts embedded (a batch counts each).
	EmbeddingInputs int64 `json:"embedding_inputs"`
	// PromptTokens and CompletionTokens are the usage reported on the
	// responses actually served (estimated as ceil(bytes/4)).
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`

	Injected429       int64 `json:"injected_429"`
	Injected500       int64 `json:"injected_500"`
	InjectedTimeouts  int64 `json:"injected_timeouts"`
	InjectedGarbage   int64 `json:"injected_garbage"`
	InjectedTruncated int64 `json:"injected_truncated"`
	// BadRequests counts requests rejected with a 4xx before any model work.
	BadRequests int64 `json:"bad_requests"`
	// ClientGone counts calls whose client went away while they waited for a
	// slot or sat in the configured latency.
	ClientGone int64 `json:"client_gone"`

	// ReplayHits counts calls answered from the recording in replay mode;
	// ReplayMisses counts replay-mode calls answered heuristically because
	// no recorded output overlapped the input.
	ReplayHits   int64 `json:"replay_hits"`
	ReplayMisses int64 `json:"replay_misses"`

	// InFlight is the number of calls holding a concurrency slot now;
	// MaxConcurrency the highest it has been.
	InFlight       int `json:"in_flight"`
	MaxConcurrency int `json:"max_concurrency"`
}

// recorder is the mutable side of Stats. A mutex (not atomics) because
// several fields change together and the lock is held for nanoseconds.
type recorder struct {
	mu sync.Mutex
	s  Stats
}

func newRecorder() *recorder {
	return &recorder{s: Stats{Calls: map[string]int64{}}}
}

func (r *recorder) update(f func(s *Stats)) {
	r.mu.Lock()
	f(&r.s)
	r.mu.Unlock()
}

func (r *recorder) call(kind string) {
	r.update(func(s *Stats) {
		s.Calls[kind]++
		s.TotalCalls++
	})
}

func (r *recorder) enter() {
	r.update(func(s *Stats) {
		s.InFlight++
		s.MaxConcurrency = max(s.MaxConcurrency, s.InFlight)
	})
}

func (r *recorder) leave() {
	r.update(func(s *Stats) { s.InFlight-- })
}

func (r *recorder) served(u usage) {
	r.update(func(s *Stats) {
		s.PromptTokens += int64(u.PromptTokens)
		s.CompletionTokens += int64(u.CompletionTokens)
	})
}

func (r *recorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.s
	out.Calls = maps.Clone(r.s.Calls)
	return out
}

// reset zeroes the counters. Calls in flight keep their slots, so InFlight
// survives and becomes the new maximum.
func (r *recorder) reset() {
	r.update(func(s *Stats) {
		*s = Stats{Calls: map[string]int64{}, InFlight: s.InFlight, MaxConcurrency: s.InFlight}
	})
}
