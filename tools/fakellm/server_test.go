package fakellm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/extractparse"
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

func TestStreamingDeltasEqualTheNonStreamedContent(t *testing.T) {
	s, base := startServer(t, Config{})
	messages := []message{user(prompts.EntityExtraction(sample, nil))}
	want := completion(t, base, messages...)

	got := streamCompletion(t, base, true, messages...)
	require.Equal(t, want.Choices[0].Message.Content, got.content)
	require.Equal(t, "stop", got.finishReason)
	require.True(t, got.done, "ends with [DONE]")
	require.Greater(t, got.chunks, 10, "content arrives in many deltas")
	require.NotNil(t, got.usage, "include_usage → a final usage chunk")
	require.Equal(t, want.Usage, *got.usage)

	plain := streamCompletion(t, base, false, messages...)
	require.Equal(t, got.content, plain.content)
	require.Nil(t, plain.usage, "no usage chunk unless asked for")
	require.EqualValues(t, 2, s.Stats().Streamed)
}

func TestUsageEstimatesTokensFromBytes(t *testing.T) {
	_, base := startServer(t, Config{})
	got := completion(t, base, system("12345678"), user("ping")) // 12 bytes of prompt
	require.Equal(t, 3, got.Usage.PromptTokens)
	require.Equal(t, (len(got.Choices[0].Message.Content)+3)/4, got.Usage.CompletionTokens)
	require.Equal(t, got.Usage.PromptTokens+got.Usage.CompletionTokens, got.Usage.TotalTokens)
}

func TestMaxTokensCutsTheOutput(t *testing.T) {
	_, base := startServer(t, Config{})
	resp, raw, err := post(t.Context(), t, base+"/v1/chat/completions", map[string]any{
		"messages": []message{user(prompts.EntityExtraction(sample, nil))}, "max_tokens": 10,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got chatCompletion
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Equal(t, "length", got.Choices[0].FinishReason)
	require.Len(t, got.Choices[0].Message.Content, 40)
	require.Equal(t, 10, got.Usage.CompletionTokens)
	require.Equal(t, DefaultModel, got.Model, "no model asked for → the configured one")
}

func embed(t *testing.T, base string, body map[string]any) embeddingResponse {
	t.Helper()
	resp, raw, err := post(t.Context(), t, base+"/v1/embeddings", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", raw)
	var out struct {
		embeddingResponse
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	res := out.embeddingResponse
	res.Data = nil
	for i, d := range out.Data {
		require.Equal(t, i, d.Index)
		var v []float32
		if body["encoding_format"] == "base64" {
			var b64 string
			require.NoError(t, json.Unmarshal(d.Embedding, &b64))
			buf, err := base64.StdEncoding.DecodeString(b64)
			require.NoError(t, err)
			for j := 0; j < len(buf); j += 4 {
				v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(buf[j:])))
			}
		} else {
			require.NoError(t, json.Unmarshal(d.Embedding, &v))
		}
		res.Data = append(res.Data, embeddingItem{Index: d.Index, Embedding: v})
	}
	return res
}

func vectorOf(item embeddingItem) []float32 { return item.Embedding.([]float32) }

func TestEmbeddingsAreDeterministicUnitVectors(t *testing.T) {
	s, base := startServer(t, Config{EmbedDim: 32})
	texts := []string{"Scrooge counts his money", "Bob Cratchit shivers", "Scrooge counts his coal"}

	batch := embed(t, base, map[string]any{"model": "text-embedding-3-small", "input": texts})
	require.Len(t, batch.Data, 3)
	require.Equal(t, "text-embedding-3-small", batch.Model)
	require.Positive(t, batch.Usage.PromptTokens)
	for i, item := range batch.Data {
		v := vectorOf(item)
		require.Len(t, v, 32, "the configured default dimension")
		norm := 0.0
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		require.InDelta(t, 1, math.Sqrt(norm), 1e-5, "unit length")
		single := embed(t, base, map[string]any{"input": texts[i]})
		require.Equal(t, v, vectorOf(single.Data[0]), "batch order preserved and deterministic (%d)", i)
	}
	require.NotEqual(t, vectorOf(batch.Data[0]), vectorOf(batch.Data[1]))

	wide := embed(t, base, map[string]any{"input": texts[:1], "dimensions": 64})
	require.Len(t, vectorOf(wide.Data[0]), 64, "dimensions parameter honoured")
	b64 := embed(t, base, map[string]any{"input": texts[:1], "dimensions": 64, "encoding_format": "base64"})
	require.Equal(t, vectorOf(wide.Data[0]), vectorOf(b64.Data[0]), "base64 carries the same floats")

	st := s.Stats()
	require.EqualValues(t, 6, st.Calls[kindEmbeddings])
	require.EqualValues(t, 8, st.EmbeddingInputs)
}

func TestLatencyAndMaxConcurrency(t *testing.T) {
	const calls, latency, limit = 20, 100 * time.Millisecond, 4
	s, base := startServer(t, Config{Latency: latency, MaxConcurrency: limit})

	body, err := json.Marshal(map[string]any{"messages": []message{user("ping")}})
	require.NoError(t, err)
	start := time.Now()
	var wg sync.WaitGroup
	codes := make(chan int, calls)
	for range calls {
		wg.Go(func() {
			resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusOK, code)
	}

	waves := time.Duration(calls / limit)
	require.GreaterOrEqual(t, elapsed, waves*latency, "calls beyond the limit wait for a slot")
	require.Less(t, elapsed, waves*latency+400*time.Millisecond, "but no longer than that (with slack for a loaded machine)")
	st := s.Stats()
	require.Equal(t, limit, st.MaxConcurrency)
	require.Zero(t, st.InFlight)
	require.EqualValues(t, calls, st.Calls["unknown"])
}

// statuses sends n chat calls one after the other and returns their status
// codes.
func statuses(t *testing.T, base string, n int, check func(*http.Response)) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		resp, raw, err := post(t.Context(), t, base+"/v1/chat/completions", map[string]any{"messages": []message{user("ping")}})
		require.NoError(t, err)
		out[i] = resp.StatusCode
		if resp.StatusCode != http.StatusOK {
			var e apiError
			require.NoError(t, json.Unmarshal(raw, &e), "OpenAI error shape: %s", raw)
			require.NotEmpty(t, e.Error.Message)
			require.NotEmpty(t, e.Error.Type)
		}
		if check != nil {
			check(resp)
		}
	}
	return out
}

func count(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

func TestInjected429sAndRetryAfter(t *testing.T) {
	s, base := startServer(t, Config{Rate429: 0.5, Seed: 7, RetryAfter: 1500 * time.Millisecond})
	codes := statuses(t, base, 200, func(resp *http.Response) {
		if resp.StatusCode == http.StatusTooManyRequests {
			require.Equal(t, "2", resp.Header.Get("Retry-After"), "whole seconds, rounded up")
			require.Equal(t, "1500", resp.Header.Get("retry-after-ms"))
		}
	})
	n429 := count(codes, http.StatusTooManyRequests)
	require.InDelta(t, 100, n429, 25, "about half")
	require.Equal(t, 200-n429, count(codes, http.StatusOK))
	require.EqualValues(t, n429, s.Stats().Injected429)

	s.Reset()
	require.Equal(t, codes, statuses(t, base, 200, nil), "same seed, same calls → same faults")

	_, other := startServer(t, Config{Rate429: 0.5, Seed: 8})
	require.NotEqual(t, codes, statuses(t, other, 200, nil), "another seed, other faults")
}

func TestInjected500s(t *testing.T) {
	s, base := startServer(t, Config{Rate500: 0.3, Seed: 1})
	codes := statuses(t, base, 200, nil)
	n500 := count(codes, http.StatusInternalServerError)
	require.InDelta(t, 60, n500, 20)
	require.Equal(t, 200-n500, count(codes, http.StatusOK))
	require.EqualValues(t, n500, s.Stats().Injected500)
}

func TestInjectedTimeoutHangsUntilTheClientGivesUp(t *testing.T) {
	s, base := startServer(t, Config{RateTimeout: 1})
	for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		start := time.Now()
		_, _, err := post(ctx, t, base+path, map[string]any{"messages": []message{user("ping")}, "input": "x"})
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, path)
		require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	}
	require.EqualValues(t, 2, s.Stats().InjectedTimeouts)
	require.Eventually(t, func() bool { return s.Stats().InFlight == 0 }, time.Second, 10*time.Millisecond)
}

func TestCloseAbortsHungCalls(t *testing.T) {
	s, base := startServer(t, Config{RateTimeout: 1})
	errc := make(chan error, 1)
	go func() {
		// No deadline: only Close can end this call.
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"ping"}]}`))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	require.Eventually(t, func() bool { return s.Stats().InjectedTimeouts == 1 }, 5*time.Second, 5*time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("the call ended before Close: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Close()
	select {
	case err := <-errc:
		require.Error(t, err, "the connection is dropped without a response")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the hung call")
	}
}

func TestGarbageAndTruncatedOutputsAtTheirShares(t *testing.T) {
	s, base := startServer(t, Config{RateGarbage: 0.2, RateTruncated: 0.3, Seed: 3})
	prompt := prompts.EntityExtraction(sample, nil)
	_, faultless := startServer(t, Config{})
	good := content(t, faultless, user(prompt))

	const calls = 200
	var garbage, truncated int
	for range calls {
		got := completion(t, base, user(prompt))
		out := got.Choices[0].Message.Content
		switch {
		case out == good:
			require.Equal(t, "stop", got.Choices[0].FinishReason)
		case got.Choices[0].FinishReason == "length":
			truncated++
			require.True(t, strings.HasPrefix(good, out), "a truncated output is a prefix of the real one")
			require.NotContains(t, out, completionDelimiter)
			res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
			require.False(t, res.Complete)
			require.NotEmpty(t, res.Entities, "cut two thirds in, after some records")
		default:
			garbage++
			require.NotContains(t, out, completionDelimiter)
			res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
			require.Empty(t, res.Entities, "garbage yields no entities: %q", out)
		}
	}
	require.InDelta(t, 40, garbage, 18)
	require.InDelta(t, 60, truncated, 20)
	st := s.Stats()
	require.EqualValues(t, garbage, st.InjectedGarbage)
	require.EqualValues(t, truncated, st.InjectedTruncated)
}

func TestStatsCountWhatWasServed(t *testing.T) {
	s, base := startServer(t, Config{})
	var prompt, completionTokens int
	for _, messages := range [][]message{
		{user(prompts.EntityExtraction(sample, nil))},
		{user(prompts.EntityExtraction(sample, nil)), assistant("x"), user(prompts.GleanContinue())},
		{user(prompts.GleanLoop())},
		{user(prompts.CommunityReport(sampleCommunity))},
		{system(prompts.LocalAnswer("data", "x")), user("q")},
		{system(prompts.GlobalMap("data")), user("q")},
		{user("hello")},
	} {
		got := completion(t, base, messages...)
		prompt += got.Usage.PromptTokens
		completionTokens += got.Usage.CompletionTokens
	}
	e := embed(t, base, map[string]any{"input": []string{"a", "b"}})
	prompt += e.Usage.PromptTokens

	st := s.Stats()
	require.Equal(t, map[string]int64{
		"extraction": 1, "glean_continue": 1, "glean_loop": 1, "community_report": 1,
		"local_answer": 1, "global_map": 1, "unknown": 1, "embeddings": 1,
	}, st.Calls)
	require.EqualValues(t, 8, st.TotalCalls)
	require.EqualValues(t, prompt, st.PromptTokens)
	require.EqualValues(t, completionTokens, st.CompletionTokens)
	require.Equal(t, 1, st.MaxConcurrency)

	// The HTTP view and reset.
	resp, err := http.Get(base + "/v1/fakellm/stats")
	require.NoError(t, err)
	var viaHTTP Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&viaHTTP))
	resp.Body.Close()
	require.Equal(t, st, viaHTTP)

	resp, _, err = post(t.Context(), t, base+"/v1/fakellm/reset", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, Stats{Calls: map[string]int64{}}, s.Stats())
}

func TestErrorsHaveOpenAIShape(t *testing.T) {
	s, base := startServer(t, Config{})
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
	}{
		{"bad json", "/v1/chat/completions", "not an object", http.StatusBadRequest},
		{"no messages", "/v1/chat/completions", map[string]any{"messages": []message{}}, http.StatusBadRequest},
		{"no input", "/v1/embeddings", map[string]any{"input": []string{}}, http.StatusBadRequest},
		{"token input", "/v1/embeddings", map[string]any{"input": []int{1, 2}}, http.StatusBadRequest},
		{"bad dimension", "/v1/embeddings", map[string]any{"input": "x", "dimensions": -3}, http.StatusBadRequest},
		{"unknown route", "/v1/completions", map[string]any{}, http.StatusNotFound},
	} {
		resp, raw, err := post(t.Context(), t, base+tc.path, tc.body)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.status, resp.StatusCode, tc.name)
		var e apiError
		require.NoError(t, json.Unmarshal(raw, &e), tc.name)
		require.NotEmpty(t, e.Error.Message, tc.name)
		require.NotEmpty(t, e.Error.Type, tc.name)
	}
	st := s.Stats()
	require.EqualValues(t, 5, st.BadRequests)
	require.Zero(t, st.TotalCalls, "rejected requests are not model calls")
}

func TestModelsListsTheConfiguredModels(t *testing.T) {
	_, base := startServer(t, Config{Model: "gpt-4o", EmbedModel: "text-embedding-3-small"})
	resp, err := http.Get(base + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got modelList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, "list", got.Object)
	require.Len(t, got.Data, 2)
	require.Equal(t, "gpt-4o", got.Data[0].ID)
	require.Equal(t, "text-embedding-3-small", got.Data[1].ID)
}

func TestMessageContentAsParts(t *testing.T) {
	_, base := startServer(t, Config{})
	resp, raw, err := post(t.Context(), t, base+"/v1/chat/completions", map[string]any{
		"messages": []map[string]any{{"role": "user", "content": []map[string]string{{"type": "text", "text": "pi"}, {"type": "text", "text": "ng"}}}},
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(raw), `reply to: \"ping\"`)
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown mode":        {Mode: "magic"},
		"replay without path": {Mode: ModeReplay},
		"rate above one":      {Rate429: 1.5},
		"negative rate":       {Rate500: -0.1},
		"rates sum above one": {Rate429: 0.6, Rate500: 0.6},
		"negative latency":    {Latency: -time.Second},
		"negative limit":      {MaxConcurrency: -1},
		"huge dimension":      {EmbedDim: 1 << 20},
		"missing replay file": {Mode: ModeReplay, ReplayPath: "/nonexistent/replay.json"},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
	}
	s, err := New(Config{})
	require.NoError(t, err)
	require.Equal(t, ModeHeuristic, s.Config().Mode)
	require.Equal(t, DefaultEmbedDim, s.Config().EmbedDim)
}
