package events

import (
	"encoding/json"
	"time"

	"github.com/invopop/jsonschema"
)

// Patterns shared by the payloads. Namespaces and job ids end up in KV keys
// and subjects, so they are restricted to characters that are safe there.
const (
	NamespacePattern = `^[A-Za-z0-9][A-Za-z0-9_-]*$`
	IDPattern        = `^[A-Za-z0-9][A-Za-z0-9_-]*$`
	DocIDPattern     = `^[A-Za-z0-9][A-Za-z0-9_.:-]*$`
	MaxIDLength      = 128
	MaxNamespaceLen  = 64
	DefaultNamespace = "default"
)

// JobRef names the job, document and namespace an event belongs to. Every
// payload embeds it (its fields are flattened into the payload's JSON), so
// generic code — the projection, the dead-letter path — can find the job of
// any event.
type JobRef struct {
	JobID     string `json:"job_id" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_-]*$,maxLength=128"`
	DocID     string `json:"doc_id" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_.:-]*$,maxLength=128"`
	Namespace string `json:"namespace" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_-]*$,maxLength=64"`
}

// Ref returns the job reference; promoted to every payload.
func (r JobRef) Ref() JobRef { return r }

// DocumentSubmitted starts a job. The REST edge stores the text in the
// object store and sets ContentRef; an outside publisher may instead put the
// text inline in Content (up to the NATS payload limit).
type DocumentSubmitted struct {
	JobRef
	ContentRef    string            `json:"content_ref,omitempty" jsonschema:"maxLength=256,description=Object-store name of the document text (set by the REST edge)."`
	Content       string            `json:"content,omitempty" jsonschema:"description=The document text inline (for outside publishers); one of content or content_ref is required."`
	ContentSHA256 string            `json:"content_sha256,omitempty" jsonschema:"pattern=^[0-9a-f]{64}$,description=SHA-256 of the normalised text; dedup recomputes it from the text."`
	ContentBytes  int               `json:"content_bytes,omitempty" jsonschema:"minimum=0"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	ClientID      string            `json:"client_id,omitempty" jsonschema:"maxLength=128"`
	// Force re-ingests content already claimed in the namespace instead of
	// ending the job as a duplicate; the new job takes over the claim.
	Force bool `json:"force,omitempty"`
	// RequireApproval holds the job in awaiting_approval after dedup until
	// job.approved (or cancel, or expiry).
	RequireApproval bool `json:"require_approval,omitempty"`
	// Estimate is the edge's cost estimate, made without any LLM call.
	Estimate    *Estimate `json:"estimate,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// Estimate is what ingesting a document is expected to cost, computed from
// its token count, the chunking settings and a price table — never by asking
// an LLM. Output tokens and cost are a low–high range.
type Estimate struct {
	Chunks        int     `json:"chunks" jsonschema:"minimum=0"`
	TokensIn      int     `json:"tokens_in" jsonschema:"minimum=0,description=Prompt tokens of every extraction call (gleaning included)."`
	TokensOutLow  int     `json:"tokens_out_low" jsonschema:"minimum=0"`
	TokensOutHigh int     `json:"tokens_out_high" jsonschema:"minimum=0"`
	CostLowUSD    float64 `json:"cost_low_usd" jsonschema:"minimum=0"`
	CostHighUSD   float64 `json:"cost_high_usd" jsonschema:"minimum=0"`
	// Model is the extraction model priced, "offline" without an LLM.
	Model string `json:"model"`
}

// JSONSchemaExtend makes the schema require the text, inline or by reference.
func (DocumentSubmitted) JSONSchemaExtend(s *jsonschema.Schema) { requireContent(s) }

// requireContent adds "content or content_ref, non-empty" to a schema: a
// document without text cannot be deduplicated or chunked, so it must not
// pass validation.
func requireContent(s *jsonschema.Schema) {
	nonEmpty := func(field string) *jsonschema.Schema {
		props := jsonschema.NewProperties()
		props.Set(field, &jsonschema.Schema{MinLength: new(uint64(1))})
		return &jsonschema.Schema{Required: []string{field}, Properties: props}
	}
	s.AnyOf = []*jsonschema.Schema{nonEmpty("content"), nonEmpty("content_ref")}
}

// DocumentDuplicate ends a job whose content was already claimed in its
// namespace.
type DocumentDuplicate struct {
	JobRef
	ExistingJobID string `json:"existing_job_id" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_-]*$,maxLength=128"`
	ExistingDocID string `json:"existing_doc_id,omitempty" jsonschema:"maxLength=128"`
	ContentSHA256 string `json:"content_sha256" jsonschema:"pattern=^[0-9a-f]{64}$"`
}

// DocumentAccepted passes a document that won its dedup claim on to chunking.
type DocumentAccepted struct {
	JobRef
	ContentRef    string            `json:"content_ref,omitempty" jsonschema:"maxLength=256"`
	Content       string            `json:"content,omitempty"`
	ContentSHA256 string            `json:"content_sha256" jsonschema:"pattern=^[0-9a-f]{64}$"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// JSONSchemaExtend makes the schema require the text, inline or by reference.
func (DocumentAccepted) JSONSchemaExtend(s *jsonschema.Schema) { requireContent(s) }

// DocumentChunked announces how many chunks a document has.
type DocumentChunked struct {
	JobRef
	ChunksTotal int `json:"chunks_total" jsonschema:"minimum=0"`
	TokensTotal int `json:"tokens_total" jsonschema:"minimum=0"`
}

// ChunkPosition locates a chunk in its document.
type ChunkPosition struct {
	ChunkID     string `json:"chunk_id" jsonschema:"pattern=^[0-9a-f]{32}$"`
	Index       int    `json:"index" jsonschema:"minimum=0"`
	ChunksTotal int    `json:"chunks_total" jsonschema:"minimum=1"`
}

// ChunkCreated carries one chunk's text to extraction.
type ChunkCreated struct {
	JobRef
	ChunkPosition
	Text   string `json:"text" jsonschema:"minLength=1"`
	Tokens int    `json:"tokens" jsonschema:"minimum=0"`
}

// Entity is one entity as extracted from one chunk.
type Entity struct {
	Name        string `json:"name" jsonschema:"minLength=1,maxLength=512"`
	Type        string `json:"type" jsonschema:"maxLength=64"`
	Description string `json:"description"`
}

// Relation is one relation as extracted from one chunk. Source and Target are
// entity names as they appear in the same chunk's entity list.
type Relation struct {
	Source      string   `json:"source" jsonschema:"minLength=1,maxLength=512"`
	Target      string   `json:"target" jsonschema:"minLength=1,maxLength=512"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords,omitempty"`
	Weight      float64  `json:"weight" jsonschema:"minimum=0"`
}

// ChunkExtracted carries one chunk's extraction result to the graph writer
// and the vector indexer.
type ChunkExtracted struct {
	JobRef
	ChunkPosition
	Text      string     `json:"text" jsonschema:"minLength=1"`
	Tokens    int        `json:"tokens" jsonschema:"minimum=0"`
	Entities  []Entity   `json:"entities"`
	Relations []Relation `json:"relations"`
	// Extractor names what produced the result ("offline" for the built-in
	// heuristic extractor), so lower-quality results are visible.
	Extractor string `json:"extractor" jsonschema:"minLength=1"`
	// Usage is what the extraction of this chunk cost (absent offline).
	Usage *Usage `json:"usage,omitempty"`
}

// Usage accounts for LLM work: calls made, calls answered from the LLM
// cache, tokens and the priced cost. The projection sums it per job.
type Usage struct {
	Calls            int     `json:"calls" jsonschema:"minimum=0"`
	CachedCalls      int     `json:"cached_calls" jsonschema:"minimum=0"`
	PromptTokens     int     `json:"prompt_tokens" jsonschema:"minimum=0"`
	CompletionTokens int     `json:"completion_tokens" jsonschema:"minimum=0"`
	CostUSD          float64 `json:"cost_usd" jsonschema:"minimum=0"`
	// SkippedRecords counts malformed records in the LLM's output.
	SkippedRecords int `json:"skipped_records" jsonschema:"minimum=0"`
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{Calls: u.Calls + o.Calls, CachedCalls: u.CachedCalls + o.CachedCalls, PromptTokens: u.PromptTokens + o.PromptTokens,
		CompletionTokens: u.CompletionTokens + o.CompletionTokens, CostUSD: u.CostUSD + o.CostUSD, SkippedRecords: u.SkippedRecords + o.SkippedRecords}
}

// MarshalJSON writes empty entity and relation lists as [] rather than null:
// a chunk with nothing extracted is valid, and its schema wants arrays.
func (c ChunkExtracted) MarshalJSON() ([]byte, error) {
	type plain ChunkExtracted // drops this method, so Marshal does not recurse
	p := plain(c)
	if p.Entities == nil {
		p.Entities = []Entity{}
	}
	if p.Relations == nil {
		p.Relations = []Relation{}
	}
	return json.Marshal(p)
}

// ChunkMerged reports one chunk merged into the graph.
type ChunkMerged struct {
	JobRef
	ChunkPosition
	Entities  int `json:"entities" jsonschema:"minimum=0,description=Entities this chunk contributed to."`
	Relations int `json:"relations" jsonschema:"minimum=0,description=Relations this chunk contributed to."`
	// DocEntities and DocRelations count the distinct entities and relations
	// the whole document contributes to, as of this merge. They only grow
	// while a document is ingested, so the projection keeps the maximum.
	DocEntities  int `json:"doc_entities" jsonschema:"minimum=0"`
	DocRelations int `json:"doc_relations" jsonschema:"minimum=0"`
}

// ChunkIndexed reports one chunk's vectors stored.
type ChunkIndexed struct {
	JobRef
	ChunkPosition
	Vectors int `json:"vectors" jsonschema:"minimum=0"`
}

// JobCompleted is published by the projection once every chunk of a job is
// merged and indexed.
type JobCompleted struct {
	JobRef
	ChunksTotal int `json:"chunks_total" jsonschema:"minimum=0"`
	Entities    int `json:"entities" jsonschema:"minimum=0"`
	Relations   int `json:"relations" jsonschema:"minimum=0"`
}

// JobFailed ends a job that cannot complete.
type JobFailed struct {
	JobRef
	Stage  string `json:"stage" jsonschema:"minLength=1"`
	Reason string `json:"reason" jsonschema:"minLength=1"`
}

// CommunitiesUpdated reports that the graph writer rebuilt a namespace's
// communities and their reports. It belongs to no job of its own: JobRef
// names the job whose completion triggered the rebuild (one rebuild may
// cover several jobs that completed meanwhile).
type CommunitiesUpdated struct {
	JobRef
	Generation       uint64 `json:"generation" jsonschema:"minimum=0,description=The graph generation the communities were built from."`
	Communities      int    `json:"communities" jsonschema:"minimum=0"`
	Levels           int    `json:"levels" jsonschema:"minimum=0"`
	ReportsGenerated int    `json:"reports_generated" jsonschema:"minimum=0,description=Reports written anew because their community is new or changed."`
	ReportsReused    int    `json:"reports_reused" jsonschema:"minimum=0,description=Reports kept from the previous build because their community did not change."`
	// Usage is what the summaries and reports cost (absent without an LLM).
	Usage *Usage `json:"usage,omitempty"`
}

// JobAwaitingApproval holds a job that won its dedup claim until it is
// approved, cancelled or expires. It carries what acceptance needs, so the
// approval can pass the document on without reading anything else.
type JobAwaitingApproval struct {
	JobRef
	ContentRef    string            `json:"content_ref" jsonschema:"minLength=1,maxLength=256"`
	ContentSHA256 string            `json:"content_sha256" jsonschema:"pattern=^[0-9a-f]{64}$"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Estimate      *Estimate         `json:"estimate,omitempty"`
}

// JobApproved releases a job from awaiting_approval; dedup then accepts the
// document.
type JobApproved struct {
	JobRef
	ContentRef    string            `json:"content_ref" jsonschema:"minLength=1,maxLength=256"`
	ContentSHA256 string            `json:"content_sha256" jsonschema:"pattern=^[0-9a-f]{64}$"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	ApprovedBy    string            `json:"approved_by,omitempty" jsonschema:"maxLength=128,description=Client id of the approver."`
}

// JobCancelled ends a job that is pending, awaiting approval or processing.
// A processing job stops between chunks: chunks already extracted are still
// merged, no new chunk is extracted.
type JobCancelled struct {
	JobRef
	Reason      string `json:"reason,omitempty" jsonschema:"maxLength=500"`
	CancelledBy string `json:"cancelled_by,omitempty" jsonschema:"maxLength=128"`
}

// JobExpired ends a job that waited for approval longer than allowed.
type JobExpired struct {
	JobRef
	Reason string `json:"reason" jsonschema:"minLength=1"`
}

// DocumentDeleted asks for a document to be removed. JobRef names the
// deletion job (a job of its own), the document and its namespace: its
// chunks, its share of every entity and relation description and its
// vectors go, entities left with no source disappear, and no LLM is called.
type DocumentDeleted struct {
	JobRef
	// IngestJobID is the job that ingested the document.
	IngestJobID   string `json:"ingest_job_id,omitempty" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_-]*$,maxLength=128"`
	ContentRef    string `json:"content_ref,omitempty" jsonschema:"maxLength=256"`
	ContentSHA256 string `json:"content_sha256,omitempty" jsonschema:"pattern=^([0-9a-f]{64})?$"`
	RequestedBy   string `json:"requested_by,omitempty" jsonschema:"maxLength=128"`
}

// DocumentUnmerged reports a deleted document's share removed from the graph.
type DocumentUnmerged struct {
	JobRef
}

// DocumentUnindexed reports a deleted document's vectors removed.
type DocumentUnindexed struct {
	JobRef
}
