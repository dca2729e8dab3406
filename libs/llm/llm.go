// Package llm talks to chat-completion and embedding providers that speak the
// OpenAI HTTP API: OpenAI itself, Azure-style gateways, Ollama, vLLM and
// llama.cpp, chosen by base URL. It wraps the official openai-go client with
// the policy kgraph needs around every call: a concurrency cap, request and
// token budgets per minute, retries that honour Retry-After, typed errors, and
// token and cost accounting per pipeline stage.
//
// openai-go's own retries are disabled so that this package's policy is the
// only one, and every attempt, retry and error shows up in Stats.
package llm

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Roles a Message can have.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a chat conversation.
type Message struct {
	Role    string // RoleSystem, RoleUser or RoleAssistant
	Content string
}

// Usage counts the tokens of one call (or of many, when aggregated).
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	// Estimated is set when the server did not report usage and the counts
	// are estimates from the text length (about four bytes per token).
	Estimated bool
}

// Total returns prompt plus completion tokens.
func (u Usage) Total() int { return u.PromptTokens + u.CompletionTokens }

// ChatRequest is one chat completion to run.
type ChatRequest struct {
	Messages []Message
	// Temperature is left to the server's default when nil.
	Temperature *float64
	// MaxTokens caps the completion (sent as max_tokens, which every
	// OpenAI-compatible server understands); 0 leaves it to the server.
	MaxTokens int
	// JSON asks for a JSON object reply (response_format json_object).
	JSON bool
	// Stage names the pipeline step ("extract", "glean", "summarize",
	// "report", "answer", …) that Stats accounts the call to.
	Stage string
}

// ChatResponse is the reply to a ChatRequest.
type ChatResponse struct {
	Content string
	Usage   Usage
	// Model is the model the server says answered, which may be more
	// specific than the configured one (e.g. a dated snapshot).
	Model string
}

// ErrTimeout marks a call whose attempts ran past Config.Timeout. It is the
// cause (errors.Is) of the *APIError returned once retries are exhausted; a
// deadline of the caller's own context is reported as context.DeadlineExceeded
// instead.
var ErrTimeout = errors.New("llm: call timed out")

// APIError is the error a call returns when the provider failed it and
// retrying did not help (or could not, for a client error such as 400).
// Cancellation of the caller's context is never an APIError: it is returned
// as the context's error.
type APIError struct {
	// Status is the HTTP status of the last attempt, 0 when no response
	// arrived (connection failure, timeout).
	Status int
	// Message is the provider's error message or the transport error.
	Message string
	// Retryable says whether the failure was transient (429, 5xx, timeouts,
	// connection errors); such a call may succeed later.
	Retryable bool
	// Attempts is the number of requests sent.
	Attempts int
	// Err is the underlying cause for failures without an HTTP response
	// (ErrTimeout, a *url.Error, …); nil for HTTP error responses.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("llm provider")
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Retryable {
		fmt.Fprintf(&b, " (transient, gave up after %d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }
