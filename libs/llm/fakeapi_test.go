package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// reply is one scripted answer of the fake API. The zero reply means "answer
// normally".
type reply struct {
	status int
	header map[string]string
	body   string
	// delay holds the answer back (until the client gives up, if sooner).
	delay time.Duration
}

// chatBody is the part of a chat completion request the tests inspect.
type chatBody struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Temperature    *float64 `json:"temperature"`
	MaxTokens      *int     `json:"max_tokens"`
	Stream         bool     `json:"stream"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type embedBody struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions"`
}

// fakeAPI implements just enough of the OpenAI API for these tests:
// /chat/completions (plain and streaming) and /embeddings. Each endpoint
// first plays its script, one reply per request, then answers normally.
type fakeAPI struct {
	srv *httptest.Server

	mu            sync.Mutex
	chatScript    []reply
	embedScript   []reply
	chatRequests  []chatBody
	embedRequests []embedBody
	authHeaders   []string
	orgHeaders    []string
	inFlight      int
	maxInFlight   int

	// Normal answers.
	content          string        // chat content; "" echoes the last message
	model            string        // model reported back; "" echoes the request's
	promptTokens     int           // usage reported
	completionTokens int           // usage reported
	omitUsage        bool          // report no usage (plain and streaming)
	pieces           []string      // streamed deltas; nil streams content in one piece
	truncateStream   bool          // stop streaming after the deltas, without finish reason or [DONE]
	stallStream      time.Duration // wait this long after the deltas
	hold             time.Duration
	embedDim         int
	embedShortBy     int // answer this many vectors too few
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{promptTokens: 11, completionTokens: 7, embedDim: 4}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", f.chat)
	mux.HandleFunc("POST /v1/embeddings", f.embeddings)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) baseURL() string { return f.srv.URL + "/v1" }

// set changes the fake's behaviour under its lock.
func (f *fakeAPI) set(change func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *fakeAPI) chats() []chatBody {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.chatRequests)
}

func (f *fakeAPI) embeds() []embedBody {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.embedRequests)
}

func (f *fakeAPI) peakInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

// enter records a request and returns its scripted reply, if any.
func (f *fakeAPI) enter(script *[]reply) (reply, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	if len(*script) == 0 {
		return reply{}, false
	}
	r := (*script)[0]
	*script = (*script)[1:]
	return r, true
}

func (f *fakeAPI) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
}

// wait sleeps for d unless the client goes away first.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// playScripted writes a scripted reply; it reports false when the reply is
// "answer normally".
func playScripted(w http.ResponseWriter, r *http.Request, rep reply) bool {
	if !wait(r.Context(), rep.delay) {
		return true
	}
	if rep.status == 0 {
		return false
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if strings.HasPrefix(rep.body, "{") {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
	return true
}

func (f *fakeAPI) chat(w http.ResponseWriter, r *http.Request) {
	var body chatBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.chatRequests = append(f.chatRequests, body)
	f.authHeaders = append(f.authHeaders, r.Header.Get("Authorization"))
	f.orgHeaders = append(f.orgHeaders, r.Header.Get("OpenAI-Organization")+r.Header.Get("OpenAI-Project"))
	f.mu.Unlock()

	rep, scripted := f.enter(&f.chatScript)
	defer f.leave()
	if scripted && playScripted(w, r, rep) {
		return
	}

	f.mu.Lock()
	content, model, hold := f.content, f.model, f.hold
	prompt, completion, omitUsage := f.promptTokens, f.completionTokens, f.omitUsage
	pieces, truncate, stall := slices.Clone(f.pieces), f.truncateStream, f.stallStream
	f.mu.Unlock()
	if content == "" && len(body.Messages) > 0 {
		content = "echo: " + body.Messages[len(body.Messages)-1].Content
	}
	if model == "" {
		model = body.Model
	}
	if !wait(r.Context(), hold) {
		return
	}
	usage := map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

	if !body.Stream {
		resp := map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": content},
			}},
		}
		if !omitUsage {
			resp["usage"] = usage
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		return
	}

	if pieces == nil {
		pieces = []string{content}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher, _ := w.(http.Flusher)
	send := func(chunk map[string]any) {
		chunk["id"], chunk["object"], chunk["created"], chunk["model"] = "chatcmpl-1", "chat.completion.chunk", 1, model
		data, _ := json.Marshal(chunk)
		fmt.Fprintf(w, "data: %s\n\n", data)
		if flusher != nil {
			flusher.Flush()
		}
	}
	delta := func(d map[string]any, finish any) map[string]any {
		return map[string]any{"choices": []any{map[string]any{"index": 0, "delta": d, "finish_reason": finish}}}
	}
	send(delta(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, p := range pieces {
		send(delta(map[string]any{"content": p}, nil))
	}
	if truncate || !wait(r.Context(), stall) {
		return
	}
	send(delta(map[string]any{}, "stop"))
	if !omitUsage && body.StreamOptions != nil && body.StreamOptions.IncludeUsage {
		send(map[string]any{"choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (f *fakeAPI) embeddings(w http.ResponseWriter, r *http.Request) {
	var body embedBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.embedRequests = append(f.embedRequests, body)
	f.mu.Unlock()

	rep, scripted := f.enter(&f.embedScript)
	defer f.leave()
	if scripted && playScripted(w, r, rep) {
		return
	}

	f.mu.Lock()
	dim, short := f.embedDim, f.embedShortBy
	f.mu.Unlock()
	// Vectors go out in reverse order, each with its index, as the API
	// allows: clients must place them by index.
	data := []any{}
	for i := len(body.Input) - 1 - short; i >= 0; i-- {
		v := make([]float64, dim)
		v[0] = float64(len(body.Input[i]))
		v[dim-1] = 0.5
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": v})
	}
	tokens := 0
	for _, s := range body.Input {
		tokens += len(s)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "model": body.Model, "data": data,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// fakeClock advances only when slept on, recording each sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}
