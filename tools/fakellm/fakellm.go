// Package fakellm is a fake OpenAI-compatible LLM server for kgraph's tests
// and benchmarks: chat completions (plain and streamed), embeddings and the
// model list, answering nano-graphrag's GraphRAG prompts deterministically,
// with latency, a concurrency limit and injected faults.
//
// In heuristic mode (the default) every answer is computed from the prompt:
// extraction finds capitalised phrases and their co-occurrences, reports and
// answers quote their input. In replay mode, extraction and community report
// prompts get the recorded gpt-4o output that best overlaps their input, and
// the other prompts fall back to the heuristic.
//
// Usage is reported on every response with tokens estimated as
// ceil(bytes/4). Embeddings are libs/hashembed vectors (unit length,
// deterministic, similar for texts sharing words) of the requested
// dimension.
//
// Faults are decided per call from the seed and a call counter, so a run
// with the same seed and number of calls sees the same faults.
package fakellm

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// Server is the fake LLM. It is an http.Handler, safe for concurrent use.
type Server struct {
	cfg       Config
	mux       *http.ServeMux
	slots     chan struct{} // nil when concurrency is unlimited
	calls     atomic.Uint64 // numbers the model calls, for fault decisions
	faults    faultPlan
	heuristic heuristic
	replay    *replayLibrary // nil in heuristic mode
	stats     *recorder
	now       func() time.Time
	hung      chan struct{} // closed by Close to end the calls hung by timeout faults
	closeOnce sync.Once
}

// New validates cfg, applies the defaults and, in replay mode, loads and
// parses the recorded responses.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("fakellm config: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		faults:    newFaultPlan(cfg),
		heuristic: heuristic{maxEntities: cfg.MaxEntities, gleanYes: cfg.GleanYes},
		stats:     newRecorder(),
		now:       time.Now,
		hung:      make(chan struct{}),
	}
	if cfg.MaxConcurrency > 0 {
		s.slots = make(chan struct{}, cfg.MaxConcurrency)
	}
	if cfg.Mode == ModeReplay {
		lib, err := loadReplay(cfg.ReplayPath)
		if err != nil {
			return nil, fmt.Errorf("fakellm replay: %w", err)
		}
		s.replay = lib
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	s.mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("GET /v1/fakellm/stats", s.handleStats)
	s.mux.HandleFunc("POST /v1/fakellm/reset", s.handleReset)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", fmt.Sprintf("unknown route %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Close aborts the connections of the calls hung by injected timeouts (and
// of those hung from now on), so that an http.Server's graceful Shutdown
// does not wait for clients without a deadline. Other calls are unaffected
// and the server keeps serving.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.hung) })
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns a snapshot of what the server has served.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Reset zeroes the statistics and restarts the call counter, so the fault
// sequence starts over as for a fresh server with the same seed.
func (s *Server) Reset() {
	s.calls.Store(0)
	s.stats.reset()
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !s.decode(w, r, &req) {
		return
	}
	if len(req.Messages) == 0 {
		s.badRequest(w, "messages: want at least one message")
		return
	}
	conv := classify(req.Messages)
	call := s.calls.Add(1) - 1
	s.stats.call(conv.kind.String())
	f := s.faults.decide(call)
	release, ok := s.admit(w, r, f)
	if !ok {
		return
	}
	defer release()

	content := s.respond(conv)
	finish := "stop"
	switch f {
	case faultGarbage:
		content = s.faults.garbage(call)
		s.stats.update(func(st *Stats) { st.InjectedGarbage++ })
	case faultTruncated:
		content, finish = truncate(content), "length"
		s.stats.update(func(st *Stats) { st.InjectedTruncated++ })
	}
	if limit := req.completionLimit(); limit > 0 && estimateTokens(content) > limit {
		content, finish = cutAtRune(content, 4*limit), "length"
	}

	promptBytes := 0
	for _, m := range req.Messages {
		promptBytes += len(m.Content)
	}
	u := newUsage((promptBytes+3)/4, estimateTokens(content))
	s.stats.served(u)

	model := req.Model
	if model == "" {
		model = s.cfg.Model
	}
	id := "chatcmpl-fakellm-" + strconv.FormatUint(call, 10)
	if req.Stream {
		s.stats.update(func(st *Stats) { st.Streamed++ })
		s.stream(w, id, model, content, finish, u, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID:                id,
		Object:            "chat.completion",
		Created:           s.now().Unix(),
		Model:             model,
		SystemFingerprint: "fakellm",
		Choices: []chatChoice{{
			Message:      responseMessage{Role: "assistant", Content: content},
			FinishReason: finish,
		}},
		Usage: u,
	})
}

// respond computes the answer to a conversation in the configured mode.
func (s *Server) respond(c conversation) string {
	h := s.heuristic
	switch c.kind {
	case prompts.KindExtraction, prompts.KindExtractionJSON:
		text, _ := prompts.ExtractionInput(c.prompt)
		asJSON := c.kind == prompts.KindExtractionJSON
		if s.replay != nil {
			if out, ok := s.replayExtraction(text, asJSON); ok {
				return out
			}
		}
		return h.extraction(text, entityTypesOf(c.prompt), asJSON)
	case prompts.KindGleanContinue:
		source, kind, ok := c.extractionSource()
		if !ok {
			return ""
		}
		text, _ := prompts.ExtractionInput(source)
		return h.glean(text, entityTypesOf(source), kind == prompts.KindExtractionJSON, c.namedSoFar())
	case prompts.KindGleanLoop:
		return h.gleanLoop(c.gleanRounds())
	case prompts.KindSummarize:
		return h.summarize(c.prompt)
	case prompts.KindCommunityReport:
		if s.replay != nil {
			if out, ok := s.replayReport(c.prompt); ok {
				return out
			}
		}
		return h.communityReport(c.prompt)
	case prompts.KindGlobalMap:
		return h.globalMap(c.prompt, c.questionFor())
	case prompts.KindLocalAnswer, prompts.KindGlobalReduce, prompts.KindNaiveAnswer:
		return h.answer(c.kind, c.prompt, c.questionFor())
	default:
		return h.unknown(c.lastUser)
	}
}

func (s *Server) replayExtraction(text string, asJSON bool) (string, bool) {
	rec, ok := s.replay.extraction(text)
	s.countReplay(ok)
	if !ok {
		return "", false
	}
	if asJSON {
		out := rec.parsed
		if out.Relationships == nil {
			out.Relationships = []extractedRelation{}
		}
		return marshalCompact(out), true
	}
	return rec.output, true
}

func (s *Server) replayReport(prompt string) (string, bool) {
	input, ok := prompts.CommunityReportInput(prompt)
	if !ok {
		input = prompt
	}
	var names []string
	for _, e := range parseTables(input).entities {
		names = append(names, e.name)
	}
	if len(names) == 0 {
		for _, e := range findEntities(input).entities {
			names = append(names, e.name)
		}
	}
	out, ok := s.replay.report(names)
	s.countReplay(ok)
	return out, ok
}

func (s *Server) countReplay(hit bool) {
	s.stats.update(func(st *Stats) {
		if hit {
			st.ReplayHits++
		} else {
			st.ReplayMisses++
		}
	})
}

// admit applies the load model and the call's error faults. When it reports
// true the caller answers the call and then calls release; otherwise the
// response (if any) has been written.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, f fault) (release func(), ok bool) {
	ctx := r.Context()
	switch f {
	case fault429:
		s.stats.update(func(st *Stats) { st.Injected429++ })
		secs := int64(math.Ceil(s.cfg.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		w.Header().Set("retry-after-ms", strconv.FormatInt(s.cfg.RetryAfter.Milliseconds(), 10))
		writeError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "fakellm: injected rate limit, retry later")
		return nil, false
	case faultTimeout:
		// A hung upstream holds no capacity here: it just never answers.
		s.stats.update(func(st *Stats) { st.InjectedTimeouts++ })
		select {
		case <-ctx.Done():
		case <-s.hung:
			// net/http's way to drop a connection without a response.
			panic(http.ErrAbortHandler)
		}
		return nil, false
	}

	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.stats.update(func(st *Stats) { st.ClientGone++ })
			return nil, false
		}
	}
	s.stats.enter()
	release = func() {
		s.stats.leave()
		if s.slots != nil {
			<-s.slots
		}
	}
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			release()
			s.stats.update(func(st *Stats) { st.ClientGone++ })
			return nil, false
		}
	}
	if f == fault500 {
		release()
		s.stats.update(func(st *Stats) { st.Injected500++ })
		writeError(w, http.StatusInternalServerError, "server_error", "", "fakellm: injected server error")
		return nil, false
	}
	return release, true
}

// stream writes the content as server-sent chat.completion.chunk events: a
// role chunk, content deltas of about four tokens, a finish chunk, the usage
// chunk when asked for, and [DONE].
func (s *Server) stream(w http.ResponseWriter, id, model, content, finish string, u usage, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	created := s.now().Unix()

	send := func(c chatChunk) error {
		c.ID, c.Object, c.Created, c.Model, c.SystemFingerprint = id, "chat.completion.chunk", created, model, "fakellm"
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode chunk: %w", err)
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return fmt.Errorf("write chunk: %w", err)
		}
		return rc.Flush()
	}
	delta := func(d chunkDelta, finish *string) chatChunk {
		return chatChunk{Choices: []chunkChoice{{Delta: d, FinishReason: finish}}}
	}

	empty := ""
	if send(delta(chunkDelta{Role: "assistant", Content: &empty}, nil)) != nil {
		return // the client is gone; nothing more to do
	}
	for rest := content; rest != ""; {
		piece := cutAtRune(rest, streamChunkBytes)
		if piece == "" { // a rune longer than the chunk size
			piece = rest[:min(len(rest), 4)]
		}
		rest = rest[len(piece):]
		if send(delta(chunkDelta{Content: &piece}, nil)) != nil {
			return
		}
	}
	if send(delta(chunkDelta{}, &finish)) != nil {
		return
	}
	if includeUsage {
		if send(chatChunk{Choices: []chunkChoice{}, Usage: &u}) != nil {
			return
		}
	}
	if _, err := fmt.Fprint(w, "data: [DONE]\n\n"); err == nil {
		_ = rc.Flush()
	}
}
