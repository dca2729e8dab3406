package events

// The query contract: the REST edge asks the query service over NATS
// request/reply on QuerySubject with a QueryRequest and gets a QueryResponse,
// or a NATS service error whose code is an HTTP status.

// Query modes.
const (
	ModeLocal  = "local"
	ModeGlobal = "global"
	ModeNaive  = "naive"
)

// QueryModes lists the modes in the order they are documented.
func QueryModes() []string { return []string{ModeLocal, ModeGlobal, ModeNaive} }

// QueryRequest asks a question in one namespace.
type QueryRequest struct {
	Question  string `json:"question"`
	Mode      string `json:"mode"`
	Namespace string `json:"namespace"`
	TopK      int    `json:"top_k,omitempty"`
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

// References are what an answer was built from.
type References struct {
	Entities  []EntityRef   `json:"entities"`
	Relations []RelationRef `json:"relations"`
	Chunks    []ChunkRef    `json:"chunks"`
}

// QueryResponse is the answer.
type QueryResponse struct {
	Answer     string     `json:"answer"`
	Mode       string     `json:"mode"`
	References References `json:"references"`
	// Answerer names what wrote the answer ("extractive" without an LLM).
	Answerer string `json:"answerer"`
}
