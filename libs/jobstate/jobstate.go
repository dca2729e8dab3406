// Package jobstate is the job status read model: the record the projection
// writes (it is the only writer) and the REST edge reads, and the KV keys of
// jobs and dedup claims.
package jobstate

import (
	"encoding/hex"
	"math/bits"
	"time"

	"github.com/kgraph-dev/kgraph/events"
)

// Status of a job.
type Status string

// Job statuses: pending → (awaiting_approval → approved →) processing →
// completed. Terminal: completed, duplicate, failed, cancelled, expired.
const (
	StatusPending          Status = "pending"
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusApproved         Status = "approved"
	StatusProcessing       Status = "processing"
	StatusCompleted        Status = "completed"
	StatusDuplicate        Status = "duplicate"
	StatusFailed           Status = "failed"
	StatusCancelled        Status = "cancelled"
	StatusExpired          Status = "expired"
)

// Statuses lists every status, in lifecycle order.
func Statuses() []Status {
	return []Status{StatusPending, StatusAwaitingApproval, StatusApproved, StatusProcessing,
		StatusCompleted, StatusDuplicate, StatusFailed, StatusCancelled, StatusExpired}
}

// Terminal reports whether no further change of status is expected.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusDuplicate, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Cancellable reports whether a job in this status can still be cancelled.
func (s Status) Cancellable() bool { return !s.Terminal() }

// Job kinds.
const (
	KindIngest = "ingest"
	KindDelete = "delete"
)

// JobKey is the KV key of a job record.
func JobKey(jobID string) string { return "job." + jobID }

// JobKeyPrefix is the prefix every job record key starts with.
const JobKeyPrefix = "job."

// DocKey is the KV key of a document record. Document ids may contain "."
// and ":", which KV keys cannot, so the id is hex-encoded.
func DocKey(namespace, docID string) string {
	return DocKeyPrefix(namespace) + hex.EncodeToString([]byte(docID))
}

// DocKeyPrefix is the prefix of every document record key of a namespace.
func DocKeyPrefix(namespace string) string { return "doc." + namespace + "." }

// DocKeyPrefixAll is the prefix of every document record key.
const DocKeyPrefixAll = "doc."

// ClaimKey is the KV key of the dedup claim of (namespace, content hash).
func ClaimKey(namespace, contentSHA256 string) string {
	return "claim." + namespace + "." + contentSHA256
}

// Claim is the value of a dedup claim: the job that first submitted the content.
type Claim struct {
	JobID     string    `json:"job_id"`
	DocID     string    `json:"doc_id"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// Job is the job record.
type Job struct {
	JobID         string       `json:"job_id"`
	DocID         string       `json:"doc_id"`
	Namespace     string       `json:"namespace"`
	ClientID      string       `json:"client_id,omitempty"`
	Status        Status       `json:"status"`
	Submitted     bool         `json:"submitted"`
	Accepted      bool         `json:"accepted"`
	Chunked       bool         `json:"chunked"`
	ChunksTotal   int          `json:"chunks_total"`
	Extracted     Bitset       `json:"extracted,omitempty"`
	Merged        Bitset       `json:"merged,omitempty"`
	Indexed       Bitset       `json:"indexed,omitempty"`
	Entities      int          `json:"entities"`
	Relations     int          `json:"relations"`
	Extractor     string       `json:"extractor,omitempty"`
	Usage         events.Usage `json:"usage"`
	ExistingJobID string       `json:"existing_job_id,omitempty"`
	FailedStage   string       `json:"failed_stage,omitempty"`
	Error         string       `json:"error,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	FinishedAt    time.Time    `json:"finished_at,omitzero"`

	// Kind is KindIngest (also when empty, for older records) or KindDelete.
	Kind string `json:"kind,omitempty"`
	// What acceptance needs, kept from document.submitted and
	// job.awaiting_approval so that an approval can pass the document on.
	ContentRef    string            `json:"content_ref,omitempty"`
	ContentSHA256 string            `json:"content_sha256,omitempty"`
	ContentBytes  int               `json:"content_bytes,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Force         bool              `json:"force,omitempty"`
	// The approval gate.
	RequireApproval bool             `json:"require_approval,omitempty"`
	Estimate        *events.Estimate `json:"estimate,omitempty"`
	AwaitingSince   time.Time        `json:"awaiting_since,omitzero"`
	ApprovedAt      time.Time        `json:"approved_at,omitzero"`
	ApprovedBy      string           `json:"approved_by,omitempty"`
	CancelledBy     string           `json:"cancelled_by,omitempty"`
	// A deletion job's progress and its document's ingestion job.
	IngestJobID    string `json:"ingest_job_id,omitempty"`
	GraphRemoved   bool   `json:"graph_removed,omitempty"`
	VectorsRemoved bool   `json:"vectors_removed,omitempty"`
}

// IsDeletion reports whether the job deletes a document.
func (j *Job) IsDeletion() bool { return j.Kind == KindDelete }

// Document statuses.
const (
	DocIngesting = "ingesting"
	DocReady     = "ready"
	DocFailed    = "failed"
	DocCancelled = "cancelled"
	DocDeleting  = "deleting"
)

// Document is the document record the projection keeps per (namespace,
// doc id) for listing and deletion: which job ingested it and what it holds.
// It appears when the document is accepted and disappears when its deletion
// completes.
type Document struct {
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	JobID         string            `json:"job_id"`
	ClientID      string            `json:"client_id,omitempty"`
	Status        string            `json:"status"`
	ContentRef    string            `json:"content_ref,omitempty"`
	ContentSHA256 string            `json:"content_sha256,omitempty"`
	ContentBytes  int               `json:"content_bytes,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Chunks        int               `json:"chunks"`
	Entities      int               `json:"entities"`
	Relations     int               `json:"relations"`
	DeletionJobID string            `json:"deletion_job_id,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Progress is the job's progress as the API shows it.
type Progress struct {
	Stage           string `json:"stage"`
	Percent         int    `json:"percent"`
	ChunksProcessed int    `json:"chunks_processed"`
	ChunksTotal     int    `json:"chunks_total"`
	Entities        int    `json:"entities"`
	Relations       int    `json:"relations"`
}

// ChunksProcessed counts chunks both merged and indexed.
func (j *Job) ChunksProcessed() int { return j.Merged.And(j.Indexed).Count() }

// Progress derives the progress view.
func (j *Job) Progress() Progress {
	p := Progress{ChunksProcessed: j.ChunksProcessed(), ChunksTotal: j.ChunksTotal, Entities: j.Entities, Relations: j.Relations}
	switch {
	case j.Status == StatusCompleted:
		p.Stage, p.Percent = "done", 100
	case j.Status == StatusDuplicate:
		p.Stage = "duplicate"
	case j.Status == StatusFailed:
		p.Stage = "failed"
	case j.Status == StatusCancelled:
		p.Stage = "cancelled"
	case j.Status == StatusExpired:
		p.Stage = "expired"
	case j.Status == StatusAwaitingApproval:
		p.Stage = "awaiting_approval"
	case j.IsDeletion():
		p.Stage = "deleting"
		done := 0
		if j.GraphRemoved {
			done++
		}
		if j.VectorsRemoved {
			done++
		}
		p.Percent = done * 50
	case !j.Accepted && !j.Chunked:
		p.Stage = "queued"
	case !j.Chunked:
		p.Stage = "chunking"
	default:
		p.Stage = "extracting"
		if j.ChunksTotal > 0 {
			p.Percent = (j.Merged.Count() + j.Indexed.Count()) * 100 / (2 * j.ChunksTotal)
		}
	}
	if p.Percent > 99 && j.Status != StatusCompleted {
		p.Percent = 99
	}
	return p
}

// Bitset records which chunk indexes have reached a stage, so that a
// redelivered event never counts twice.
type Bitset []byte

// Set sets bit i and reports whether it was newly set.
func (b *Bitset) Set(i int) bool {
	if i < 0 {
		return false
	}
	for len(*b) <= i/8 {
		*b = append(*b, 0)
	}
	mask := byte(1) << (i % 8)
	if (*b)[i/8]&mask != 0 {
		return false
	}
	(*b)[i/8] |= mask
	return true
}

// Has reports whether bit i is set.
func (b Bitset) Has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// Count returns the number of set bits.
func (b Bitset) Count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// And returns the intersection.
func (b Bitset) And(o Bitset) Bitset {
	n := min(len(b), len(o))
	out := make(Bitset, n)
	for i := range n {
		out[i] = b[i] & o[i]
	}
	return out
}
