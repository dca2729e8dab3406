package fakellm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// startServer runs a fake LLM for one test.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// post sends a JSON body and returns the response with its body read.
func post(ctx context.Context, t *testing.T, url string, body any) (*http.Response, []byte, error) {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, raw, err
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func user(content string) message      { return message{Role: "user", Content: content} }
func system(content string) message    { return message{Role: "system", Content: content} }
func assistant(content string) message { return message{Role: "assistant", Content: content} }

// completion sends a non-streamed chat request that must succeed.
func completion(t *testing.T, base string, messages ...message) chatCompletion {
	t.Helper()
	resp, raw, err := post(t.Context(), t, base+"/v1/chat/completions", map[string]any{"model": "gpt-4o-mini", "messages": messages})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", raw)
	var out chatCompletion
	require.NoError(t, json.Unmarshal(raw, &out))
	require.Len(t, out.Choices, 1)
	return out
}

func content(t *testing.T, base string, messages ...message) string {
	t.Helper()
	return completion(t, base, messages...).Choices[0].Message.Content
}

// streamed is what a streamed chat call delivered.
type streamed struct {
	content      string
	finishReason string
	usage        *usage
	chunks       int
	done         bool
}

func streamCompletion(t *testing.T, base string, includeUsage bool, messages ...message) streamed {
	t.Helper()
	body := map[string]any{"model": "gpt-4o-mini", "messages": messages, "stream": true}
	if includeUsage {
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	data, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(data))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	var out streamed
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "SSE line without data: %q", line)
		require.False(t, out.done, "event after [DONE]")
		if payload == "[DONE]" {
			out.done = true
			continue
		}
		var c chatChunk
		require.NoError(t, json.Unmarshal([]byte(payload), &c))
		require.Equal(t, "chat.completion.chunk", c.Object)
		out.chunks++
		if c.Usage != nil {
			require.Empty(t, c.Choices, "the usage chunk has no choices")
			out.usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				out.finishReason = *ch.FinishReason
			}
		}
	}
	require.NoError(t, sc.Err())
	out.content = b.String()
	return out
}
