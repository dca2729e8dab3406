// Package jobstate is the job status read model: the record the projection
// writes (it is the only writer) and the REST edge reads, and the KV keys of
// jobs and dedup claims.
package jobstate

import (
	"math/bits"
	"time"

	"github.com/kgraph-dev/kgraph/events"
)

// Status of a job.
type Status string

// Job statuses. Terminal: completed, duplicate, failed.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusDuplicate  Status = "duplicate"
	StatusFailed     Status = "failed"
)

// Terminal reports whether no further change of status is expected.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusDuplicate || s == StatusFailed
}

// JobKey is the KV key of a job record.
func JobKey(jobID string) string { return "job." + jobID }

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
