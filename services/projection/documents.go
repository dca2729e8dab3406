package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Document records follow the jobs: an ingestion job's record, once
// accepted, makes its document ingesting, then ready, failed or cancelled;
// a deletion job makes it deleting and, once completed, removes it. Every
// write is derived from a job record as committed (or, for the first
// acceptance, about to be), so that redelivered and reordered events
// converge on the same document record.
//
// A document record is created before the job record first says accepted,
// and never for a job that was already finished before the events being
// folded. So once the job record says accepted, a missing document record
// means the document was deleted (the edge deletes only documents of
// finished jobs), and a late event of the ingestion job cannot bring it
// back.

// syncDocument brings the document record of j's document in line with j.
// mayCreate allows creating a missing record of an ingestion job.
func (s *Service) syncDocument(ctx context.Context, j *jobstate.Job, mayCreate bool) error {
	if j.IsDeletion() {
		return s.syncDeletion(ctx, j)
	}
	status, ok := documentStatus(j)
	if !ok {
		return nil
	}
	key := jobstate.DocKey(j.Namespace, j.DocID)
	for range maxCASAttempts {
		cur, rev, err := s.readDocument(ctx, j.Namespace, j.DocID)
		if err != nil {
			return err
		}
		var next jobstate.Document
		switch {
		case rev == 0:
			if !mayCreate {
				return nil
			}
			next = documentOf(j, status)
		case cur == nil:
			next = documentOf(j, status) // undecodable: replaced
		case cur.JobID == j.JobID:
			next = mergeDocument(*cur, j, status)
			if sameDocument(next, *cur) {
				return nil
			}
		case newerThan(j, *cur):
			next = documentOf(j, status) // a forced re-ingest takes over
		default:
			return nil // an older job of a re-ingested document
		}
		next.UpdatedAt = s.now().UTC()
		done, err := s.writeDocument(ctx, key, next, cur, rev)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("update document %s/%s: still conflicting after %d attempts", j.Namespace, j.DocID, maxCASAttempts)
}

// syncDeletion marks the document of a deletion job deleting, and removes
// its record once the deletion completed. A record that another ingestion
// took over meanwhile is left alone. A deletion that failed or was
// cancelled leaves the record deleting, naming the deletion job.
func (s *Service) syncDeletion(ctx context.Context, j *jobstate.Job) error {
	key := jobstate.DocKey(j.Namespace, j.DocID)
	for range maxCASAttempts {
		cur, rev, err := s.readDocument(ctx, j.Namespace, j.DocID)
		if err != nil || rev == 0 || cur == nil {
			return err
		}
		ours := cur.DeletionJobID == j.JobID || (j.IngestJobID != "" && cur.JobID == j.IngestJobID)
		switch {
		case !ours:
			return nil
		case j.Status == jobstate.StatusCompleted:
			if err := s.jobs.Delete(ctx, key); err != nil {
				return fmt.Errorf("delete document %s/%s: %w", j.Namespace, j.DocID, err)
			}
			s.dropIndexEntries(ctx, jobstate.DocIndexKeys(cur), nil)
			return nil
		case j.Status.Terminal(), cur.Status == jobstate.DocDeleting && cur.DeletionJobID == j.JobID:
			return nil
		}
		next := *cur
		next.Status, next.DeletionJobID, next.UpdatedAt = jobstate.DocDeleting, j.JobID, s.now().UTC()
		done, err := s.writeDocument(ctx, key, next, cur, rev)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("update document %s/%s: still conflicting after %d attempts", j.Namespace, j.DocID, maxCASAttempts)
}

// readDocument returns the record and its revision, revision 0 when there
// is none, and a nil record with its revision when it cannot be decoded.
func (s *Service) readDocument(ctx context.Context, namespace, docID string) (*jobstate.Document, uint64, error) {
	d, rev, err := s.records.Document(ctx, namespace, docID)
	switch {
	case errors.Is(err, jobstate.ErrNotFound):
		return nil, 0, nil
	case errors.Is(err, jobstate.ErrCorrupt):
		// Retrying cannot fix it, and the event's job would fail: the next
		// write replaces it.
		s.logger().Warn("undecodable document record is replaced", "err", err)
		return nil, rev, nil
	case err != nil:
		return nil, 0, err
	}
	return &d, rev, nil
}

// writeDocument creates (rev 0) or updates the record, cur as read (nil
// when missing or undecodable), and its index entries; it reports false
// when another writer came first and the caller is to read again.
func (s *Service) writeDocument(ctx context.Context, key string, d jobstate.Document, cur *jobstate.Document, rev uint64) (bool, error) {
	val, err := json.Marshal(d)
	if err != nil {
		return false, fmt.Errorf("encode document %s: %w", key, err)
	}
	var indexedAs []string
	if cur != nil {
		indexedAs = jobstate.DocIndexKeys(cur)
	}
	indexAs := jobstate.DocIndexKeys(&d)
	if err := s.addIndexEntries(ctx, indexAs, indexedAs); err != nil {
		return false, fmt.Errorf("index document %s: %w", key, err)
	}
	if rev == 0 {
		_, err = s.jobs.Create(ctx, key, val)
	} else {
		_, err = s.jobs.Update(ctx, key, val, rev)
	}
	if errors.Is(err, kv.ErrExists) || errors.Is(err, kv.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write document %s: %w", key, err)
	}
	s.dropIndexEntries(ctx, indexedAs, indexAs)
	return true, nil
}

// documentStatus is the status an ingestion job gives its document, and
// false when it gives none: before acceptance, and for duplicate and
// expired jobs.
func documentStatus(j *jobstate.Job) (string, bool) {
	if !j.Accepted {
		return "", false
	}
	switch j.Status {
	case jobstate.StatusCompleted:
		return jobstate.DocReady, true
	case jobstate.StatusFailed:
		return jobstate.DocFailed, true
	case jobstate.StatusCancelled:
		return jobstate.DocCancelled, true
	case jobstate.StatusDuplicate, jobstate.StatusExpired:
		return "", false
	}
	return jobstate.DocIngesting, true
}

// ingestingView is the record an ingestion job in progress makes, and false
// for any other job.
func ingestingView(j *jobstate.Job) (jobstate.Document, bool) {
	if j.IsDeletion() {
		return jobstate.Document{}, false
	}
	status, ok := documentStatus(j)
	if !ok || status != jobstate.DocIngesting {
		return jobstate.Document{}, false
	}
	return documentOf(j, status), true
}

// documentOf is the record an ingestion job makes. The counts are set once
// the job has finished.
func documentOf(j *jobstate.Job, status string) jobstate.Document {
	d := jobstate.Document{
		DocID: j.DocID, Namespace: j.Namespace, JobID: j.JobID, ClientID: j.ClientID, Status: status,
		ContentRef: j.ContentRef, ContentSHA256: j.ContentSHA256, ContentBytes: j.ContentBytes, Metadata: j.Metadata,
		CreatedAt: j.CreatedAt,
	}
	if status != jobstate.DocIngesting {
		d.Chunks, d.Entities, d.Relations = j.ChunksTotal, j.Entities, j.Relations
	}
	return d
}

// mergeDocument updates the record of the same job. Writes based on older
// versions of the job record may land late, so nothing goes backwards: a
// finished status stays, counts only grow, a deletion in progress stays.
func mergeDocument(cur jobstate.Document, j *jobstate.Job, status string) jobstate.Document {
	next := documentOf(j, status)
	next.UpdatedAt = cur.UpdatedAt
	if cur.Status != jobstate.DocIngesting && next.Status == jobstate.DocIngesting {
		next.Status = cur.Status
	}
	if cur.Status == jobstate.DocDeleting {
		next.Status, next.DeletionJobID = jobstate.DocDeleting, cur.DeletionJobID
	}
	next.Chunks, next.Entities, next.Relations = max(next.Chunks, cur.Chunks), max(next.Entities, cur.Entities), max(next.Relations, cur.Relations)
	if next.ClientID == "" {
		next.ClientID = cur.ClientID
	}
	if next.ContentRef == "" {
		next.ContentRef = cur.ContentRef
	}
	if next.ContentSHA256 == "" {
		next.ContentSHA256 = cur.ContentSHA256
	}
	if next.ContentBytes == 0 {
		next.ContentBytes = cur.ContentBytes
	}
	if next.Metadata == nil {
		next.Metadata = cur.Metadata
	}
	// The job's creation time moves back to the submission time once
	// document.submitted is folded; the earliest seen wins.
	if !cur.CreatedAt.IsZero() && cur.CreatedAt.Before(next.CreatedAt) {
		next.CreatedAt = cur.CreatedAt
	}
	return next
}

// newerThan reports whether j is a later ingestion of the document than the
// job the record names: submitted later, or at the same time with a larger
// id, so that replicas agree.
func newerThan(j *jobstate.Job, cur jobstate.Document) bool {
	if !j.CreatedAt.Equal(cur.CreatedAt) {
		return j.CreatedAt.After(cur.CreatedAt)
	}
	return j.JobID > cur.JobID
}

// sameDocument compares records as stored, so that time zones and nil
// versus empty maps do not count as changes.
func sameDocument(a, b jobstate.Document) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
