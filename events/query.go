package events

// The query contract: the REST edge asks the query service over NATS
// request/reply on QuerySubject with a QueryRequest and gets a QueryResponse,
// or a NATS service error whose code is an HTTP status.
//
// # Streaming
//
// QueryStreamSubject answers the same QueryRequest as a stream of messages
// instead of one reply. The requester subscribes to an inbox of its own and
// publishes the request with that inbox as its reply subject (nats.Conn's
// PublishRequest), then reads messages from the inbox until a "done" or an
// "error" event. Every message is one QueryStreamEvent in JSON, and carries
// its type in the StreamEventHeader header too, so a client can dispatch
// without decoding:
//
//	references  exactly one, first: mode, answerer, model, cached, the
//	            references (and the context when only_context was asked)
//	delta       zero or more: the answer's next piece of text, in order;
//	            the deltas concatenate to the whole answer
//	done        last on success: usage and latency
//	error       last on failure, possibly after references and deltas:
//	            an HTTP status and a message
//
// A request the service refuses before answering (malformed JSON, an invalid
// parameter, the service stopping) gets a single error event, which also
// carries the NATS service error headers (Nats-Service-Error-Code with the
// HTTP status, Nats-Service-Error), like a QuerySubject error reply. Messages
// to one inbox arrive in the order published; a requester that stops
// reading should unsubscribe and let its timeout fire, since the service
// cannot see that nobody listens.

// Query subjects (core NATS request/reply, no stream).
const (
	// QueryStreamSubject streams an answer as QueryStreamEvents.
	QueryStreamSubject = "kgraph.svc.query.stream"
)

// Query modes.
const (
	ModeLocal  = "local"
	ModeGlobal = "global"
	ModeNaive  = "naive"
)

// QueryModes lists the modes in the order they are documented.
func QueryModes() []string { return []string{ModeLocal, ModeGlobal, ModeNaive} }

// QueryRequest asks a question in one namespace. Every field but Question and
// Mode is optional: zero means the service's default, and the defaults
// follow nano-graphrag's QueryParam. Token counts are estimates of about
// four bytes a token (ceil(bytes/4)), not a model tokenizer's.
type QueryRequest struct {
	Question  string `json:"question"`
	Mode      string `json:"mode"`
	Namespace string `json:"namespace"`
	// TopK is the number of entities (local, default 60) or chunks (naive,
	// default 20) retrieved by vector search; global ignores it.
	TopK int `json:"top_k,omitempty"`
	// ResponseType describes the answer's form to the LLM, e.g. "Single
	// Paragraph" or "List of 3-7 Points" (default "Multiple Paragraphs").
	ResponseType string `json:"response_type,omitempty"`
	// OnlyContext returns the context the LLM would be given, in
	// QueryResponse.Context, without calling the LLM.
	OnlyContext bool `json:"only_context,omitempty"`
	// MaxTokensTextUnit bounds the source chunks of a local context (4000).
	MaxTokensTextUnit int `json:"max_tokens_text_unit,omitempty"`
	// MaxTokensLocalContext bounds the relationships of a local context
	// (4800).
	MaxTokensLocalContext int `json:"max_tokens_local_context,omitempty"`
	// MaxTokensCommunityReport bounds the community reports of a local
	// context (3200).
	MaxTokensCommunityReport int `json:"max_tokens_community_report,omitempty"`
	// GlobalMaxTokensReport bounds each batch of community reports sent to
	// one map call of a global query, and the analysts' points sent to the
	// reduce call (16384).
	GlobalMaxTokensReport int `json:"global_max_tokens_report,omitempty"`
	// NaiveMaxTokens bounds the chunks of a naive context (12000).
	NaiveMaxTokens int `json:"naive_max_tokens,omitempty"`
	// Level is the deepest community level used by global and local queries
	// (default 2); a pointer because level 0 is a valid choice.
	Level *int `json:"level,omitempty"`
	// NoCache bypasses the response cache, for reading and for writing.
	NoCache bool `json:"no_cache,omitempty"`
}

// EntityRef points at an entity used to answer.
type EntityRef struct {
	Key   string  `json:"key"`
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Score float32 `json:"score,omitempty"`
}

// RelationRef points at a relation used to answer.
type RelationRef struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	Weight float64 `json:"weight"`
}

// ChunkRef points at a source chunk used to answer.
type ChunkRef struct {
	ChunkID string  `json:"chunk_id"`
	DocID   string  `json:"doc_id"`
	Index   int     `json:"index"`
	Score   float32 `json:"score,omitempty"`
}

// ReportRef points at a community report used to answer.
type ReportRef struct {
	ID     string  `json:"id"`
	Level  int     `json:"level"`
	Title  string  `json:"title"`
	Rating float64 `json:"rating"`
}

// References are what an answer was built from.
type References struct {
	Entities  []EntityRef   `json:"entities"`
	Relations []RelationRef `json:"relations"`
	Chunks    []ChunkRef    `json:"chunks"`
	Reports   []ReportRef   `json:"reports"`
}

// Answerers of a QueryResponse.
const (
	// AnswererExtractive: no LLM is configured; the answer quotes the
	// retrieved context.
	AnswererExtractive = "extractive"
	// AnswererLLM: the LLM named by QueryResponse.Model wrote the answer.
	AnswererLLM = "llm"
	// AnswererNoContext: retrieval found nothing to answer from, so no LLM
	// was asked and the answer says so.
	AnswererNoContext = "no-context"
	// AnswererContextOnly: only_context was asked; the answer is empty and
	// QueryResponse.Context holds the context.
	AnswererContextOnly = "context-only"
)

// QueryUsage is what answering cost.
type QueryUsage struct {
	// Calls counts LLM calls (a global query makes one per batch of
	// reports, plus the reduce call).
	Calls            int `json:"calls"`
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	// CostUSD is set when the model has a configured price.
	CostUSD float64 `json:"cost_usd,omitempty"`
	// Estimated is set when some call's usage was not reported by the
	// server and is estimated from text lengths.
	Estimated bool `json:"estimated,omitempty"`
}

// QueryResponse is the answer.
type QueryResponse struct {
	Answer     string     `json:"answer"`
	Mode       string     `json:"mode"`
	References References `json:"references"`
	// Answerer names what wrote the answer (one of the Answerer
	// constants, "extractive" without an LLM).
	Answerer string `json:"answerer"`
	// Model is the LLM that answered, when one did.
	Model string `json:"model,omitempty"`
	// Context is the context assembled for the LLM, set when only_context
	// was asked.
	Context string `json:"context,omitempty"`
	// Cached says the response came from the response cache; Usage then
	// is zero, since answering made no LLM call.
	Cached bool        `json:"cached"`
	Usage  *QueryUsage `json:"usage,omitempty"`
	// LatencyMS is the time the service took to answer.
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// StreamEventHeader is the NATS header naming a QueryStreamEvent's type.
const StreamEventHeader = "Kg-Stream-Event"

// QueryStreamEvent types.
const (
	StreamReferences = "references"
	StreamDelta      = "delta"
	StreamDone       = "done"
	StreamError      = "error"
)

// QueryStreamEvent is one message of a streamed answer; Type says which
// fields are set.
type QueryStreamEvent struct {
	Type string `json:"type"`

	// references
	Mode       string      `json:"mode,omitempty"`
	Answerer   string      `json:"answerer,omitempty"`
	Model      string      `json:"model,omitempty"`
	Cached     bool        `json:"cached,omitempty"`
	References *References `json:"references,omitempty"`
	Context    string      `json:"context,omitempty"`

	// delta
	Delta string `json:"delta,omitempty"`

	// done
	Usage     *QueryUsage `json:"usage,omitempty"`
	LatencyMS float64     `json:"latency_ms,omitempty"`

	// error
	Error *QueryError `json:"error,omitempty"`
}

// QueryError is a failed query: the HTTP status the edge should answer with
// and a message for the client.
type QueryError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}
