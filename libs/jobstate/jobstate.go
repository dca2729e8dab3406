// Package jobstate is the job status read model: the record the projection
// writes (it is the only writer) and the REST edge reads, and the KV keys of
// jobs and dedup claims.
package jobstate

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
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

// The job and document indexes list jobs and documents newest first
// without reading every record: one key per record and listing, named so
// that the keys of a listing sort in its order and a store reads a page of
// them at a time (KeysAfter).
//
//	jobs-by-time.<job position>                every job
//	jobs-by-ns.<namespace>.<job position>      the jobs of one namespace
//	docs-by-time.<doc position>                every document
//	docs-by-ns.<namespace>.<doc position>      the documents of one namespace
//
// A job position is <newest first>.<job id>, a document position
// <newest first>.<namespace>.<hex doc id>, where <newest first> is 19
// digits: math.MaxInt64 minus the creation time in Unix nanoseconds. The
// projection writes a record's entries before the record and removes them
// after it, so an entry may briefly name no record or an older creation
// time; readers check each entry against its record (JobIndexKeys,
// DocIndexKeys) and skip the others, and the scheduler removes them.
const (
	JobIndexPrefixAll = "jobs-by-time."
	jobIndexPrefixNS  = "jobs-by-ns."
	DocIndexPrefixAll = "docs-by-time."
	docIndexPrefixNS  = "docs-by-ns."
)

// JobIndexPrefix is the prefix of the index entries of a namespace's jobs.
func JobIndexPrefix(namespace string) string { return jobIndexPrefixNS + namespace + "." }

// DocIndexPrefix is the prefix of the index entries of a namespace's
// documents.
func DocIndexPrefix(namespace string) string { return docIndexPrefixNS + namespace + "." }

// JobIndexPrefixes are the prefixes of every job index entry.
func JobIndexPrefixes() []string { return []string{JobIndexPrefixAll, jobIndexPrefixNS} }

// DocIndexPrefixes are the prefixes of every document index entry.
func DocIndexPrefixes() []string { return []string{DocIndexPrefixAll, docIndexPrefixNS} }

// newestFirst is a creation time as a fixed-width token that sorts the
// newest first; an unset time sorts last.
func newestFirst(t time.Time) string {
	var nanos int64
	if t.After(time.Unix(0, 0)) && t.Year() < 2262 { // UnixNano's range
		nanos = t.UnixNano()
	}
	return fmt.Sprintf("%019d", math.MaxInt64-nanos)
}

func parseNewestFirst(token string) (time.Time, bool) {
	if len(token) != 19 {
		return time.Time{}, false
	}
	inv, err := strconv.ParseUint(token, 10, 63)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, math.MaxInt64-int64(inv)).UTC(), true
}

// JobPosition is where a job sorts in the index: newest first, then by id.
func JobPosition(createdAt time.Time, jobID string) string {
	return newestFirst(createdAt) + "." + jobID
}

// ParseJobPosition returns the creation time and job id of a position.
func ParseJobPosition(pos string) (time.Time, string, bool) {
	token, id, ok := strings.Cut(pos, ".")
	at, valid := parseNewestFirst(token)
	if !ok || !valid || id == "" || strings.Contains(id, ".") {
		return time.Time{}, "", false
	}
	return at, id, true
}

// JobIndexKeys are the index entries of j.
func JobIndexKeys(j *Job) []string {
	pos := JobPosition(j.CreatedAt, j.JobID)
	return []string{JobIndexPrefixAll + pos, JobIndexPrefix(j.Namespace) + pos}
}

// DocPosition is where a document sorts in the index: newest first, then
// by namespace and id.
func DocPosition(createdAt time.Time, namespace, docID string) string {
	return newestFirst(createdAt) + "." + namespace + "." + hex.EncodeToString([]byte(docID))
}

// ParseDocPosition returns the creation time, namespace and document id of
// a position.
func ParseDocPosition(pos string) (createdAt time.Time, namespace, docID string, ok bool) {
	parts := strings.Split(pos, ".")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return time.Time{}, "", "", false
	}
	at, valid := parseNewestFirst(parts[0])
	id, err := hex.DecodeString(parts[2])
	if !valid || err != nil {
		return time.Time{}, "", "", false
	}
	return at, parts[1], string(id), true
}

// DocIndexKeys are the index entries of d.
func DocIndexKeys(d *Document) []string {
	pos := DocPosition(d.CreatedAt, d.Namespace, d.DocID)
	return []string{DocIndexPrefixAll + pos, DocIndexPrefix(d.Namespace) + pos}
}

// ParseIndexKey returns the position of a job or document index entry,
// whichever its listing.
func ParseIndexKey(key string) (pos string, ok bool) {
	for _, all := range []string{JobIndexPrefixAll, DocIndexPrefixAll} {
		if rest, found := strings.CutPrefix(key, all); found {
			return rest, true
		}
	}
	for _, byNS := range []string{jobIndexPrefixNS, docIndexPrefixNS} {
		if rest, found := strings.CutPrefix(key, byNS); found {
			_, pos, ok := strings.Cut(rest, ".")
			return pos, ok
		}
	}
	return "", false
}

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
