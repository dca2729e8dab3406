// Package dedup is the dedup service: it claims (namespace, SHA-256 of the
// normalised content) atomically, so that the same content in the same
// namespace is processed once. The first job wins the claim and is accepted
// (or, when the submission asks for approval, held until job.approved);
// later ones end as duplicates pointing at it, before any extraction work.
// A claim is released when its job is cancelled or expires, or when its
// document is deleted, so the same content can be ingested again.
package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/dedup"

// Claims is the atomic claim store (JetStream KV or Redis).
type Claims interface {
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Delete(ctx context.Context, key string) error
}

// Jobs is the store of the job records the projection writes (the jobs
// bucket); the service reads them through a jobstate.Repository.
type Jobs interface {
	jobstate.Records
}

// Documents reads, stores and deletes document text in the object store.
type Documents interface {
	Get(ctx context.Context, name string) (string, error)
	Put(ctx context.Context, name string, text string) error
	Delete(ctx context.Context, name string) error
}

// Config of the service.
type Config struct {
	Concurrency int
}

// Service is the dedup service.
type Service struct {
	cfg    Config
	bus    bus.Bus
	claims Claims
	jobs   *jobstate.Repository
	docs   Documents
	now    func() time.Time
}

// New builds the service.
func New(cfg Config, b bus.Bus, claims Claims, jobs Jobs, docs Documents) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	return &Service{cfg: cfg, bus: b, claims: claims, jobs: jobstate.NewRepository(jobs), docs: docs, now: time.Now}
}

// Run consumes submissions, approvals, cancellations, expiries and deletions
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerDedup, Source, s.cfg.Concurrency,
		bus.On(s.handleSubmitted),
		bus.On(s.handleApproved),
		bus.On(func(ctx context.Context, e events.Event[events.JobCancelled]) error {
			return s.releaseJobClaim(ctx, e.Data.JobRef)
		}),
		bus.On(func(ctx context.Context, e events.Event[events.JobExpired]) error {
			return s.releaseJobClaim(ctx, e.Data.JobRef)
		}),
		bus.On(s.handleDeleted),
	)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// AcceptedID is the id of the one document.accepted a job can have. It
// depends on the job alone, so the direct path and the approval path, and
// any redelivery of either, publish the same event, which the stream keeps
// once.
func AcceptedID(jobID string) string {
	return events.DerivedID(jobID, string(events.TypeDocumentAccepted))
}

// AwaitingApprovalID is the id of a job's one job.awaiting_approval.
func AwaitingApprovalID(jobID string) string {
	return events.DerivedID(jobID, string(events.TypeJobAwaitingApproval))
}

// derived builds an event whose id is fixed by the job rather than by the
// delivery that caused it, carrying the cause's trace context.
func derived[T events.Payload](id, traceParent string, data T, now time.Time) events.Event[T] {
	e := events.New(id, Source, data, now)
	e.TraceParent = traceParent
	return e
}

// job reads the job's record; found is false while the projection has not
// written it yet.
func (s *Service) job(ctx context.Context, jobID string) (j jobstate.Job, found bool, err error) {
	j, _, err = s.jobs.Job(ctx, jobID)
	if errors.Is(err, jobstate.ErrNotFound) {
		return jobstate.Job{}, false, nil
	}
	if err != nil {
		return jobstate.Job{}, false, err
	}
	return j, true, nil
}

// status reads the job's status alone, "" while the projection has not
// written the record yet.
func (s *Service) status(ctx context.Context, jobID string) (jobstate.Status, error) {
	st, _, err := s.jobs.JobStatus(ctx, jobID)
	if errors.Is(err, jobstate.ErrNotFound) {
		return "", nil
	}
	return st, err
}

// stopped reports a job that was called off before dedup got to it.
func stopped(st jobstate.Status) bool {
	return st == jobstate.StatusCancelled || st == jobstate.StatusExpired
}

func (s *Service) handleSubmitted(ctx context.Context, e events.Event[events.DocumentSubmitted]) error {
	d := e.Data
	// The job's status is read twice, before the claim and after it; the
	// reads see two different moments, so the first cannot be passed on to
	// stand for the second. Before: a cancelled or expired job takes no
	// claim, not even for a moment (a concurrent submission of the same text
	// would lose to it and end as its duplicate). After: see below.
	st, err := s.status(ctx, d.JobID)
	if err != nil {
		return err
	}
	// A cancelled or expired job takes no claim. A job past pending has had
	// its submission handled already (it was held, accepted or ended), so a
	// late redelivery must not hold it for approval again.
	if st != "" && st != jobstate.StatusPending && st != jobstate.StatusAwaitingApproval {
		s.bus.Logger.DebugContext(ctx, "submission already handled", "job_id", d.JobID, "status", st)
		return nil
	}
	text := d.Content
	if text == "" {
		if d.ContentRef == "" {
			return bus.Permanent(errors.New("document has neither content nor content_ref"))
		}
		text, err = s.docs.Get(ctx, d.ContentRef)
		if errors.Is(err, kv.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("document text %q not found", d.ContentRef))
		}
		if err != nil {
			return fmt.Errorf("read document text %q: %w", d.ContentRef, err)
		}
	}
	if strings.TrimSpace(text) == "" {
		return bus.Permanent(errors.New("document content is empty"))
	}
	hash := events.ContentSHA256(text)
	key := jobstate.ClaimKey(d.Namespace, hash)
	claim, err := json.Marshal(jobstate.Claim{JobID: d.JobID, DocID: d.DocID, ClaimedAt: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("encode claim: %w", err)
	}
	winner := jobstate.Claim{JobID: d.JobID, DocID: d.DocID}
	if d.Force {
		// A forced submission takes over the claim: later duplicates point
		// at the newest ingestion.
		if _, err := s.claims.Put(ctx, key, claim); err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
	} else if _, err := s.claims.Create(ctx, key, claim); err != nil {
		if !errors.Is(err, kv.ErrExists) {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		raw, _, err := s.claims.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read claim %s: %w", key, err)
		}
		if err := json.Unmarshal(raw, &winner); err != nil {
			return fmt.Errorf("decode claim %s: %w", key, err)
		}
	}
	if winner.JobID != d.JobID {
		dup := events.DocumentDuplicate{JobRef: d.JobRef, ExistingJobID: winner.JobID, ExistingDocID: winner.DocID, ContentSHA256: hash}
		return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, dup, s.now()))
	}
	// A cancellation handled while this claim was being taken found no
	// claim to release; look again now that the claim is held.
	if st, err := s.status(ctx, d.JobID); err != nil {
		return err
	} else if stopped(st) {
		s.bus.Logger.DebugContext(ctx, "job called off while claiming", "job_id", d.JobID, "status", st)
		return s.release(ctx, d.Namespace, hash, d.JobID)
	}
	// This job holds the claim (first delivery, or a redelivery after a
	// crash between claim and publish). The event ids are derived from the
	// job, so a repeated publish is dropped by the stream.
	if d.RequireApproval {
		ref := d.ContentRef
		if ref == "" {
			// The approval may come long after this event; the text must
			// outlive it.
			ref = jobstate.ContentRef(d.JobID)
			if err := s.docs.Put(ctx, ref, d.Content); err != nil {
				return fmt.Errorf("store document text of job %s: %w", d.JobID, err)
			}
		}
		held := events.JobAwaitingApproval{JobRef: d.JobRef, ContentRef: ref, ContentSHA256: hash, Metadata: d.Metadata, Estimate: d.Estimate}
		return bus.Publish(ctx, s.bus.Pub, derived(AwaitingApprovalID(d.JobID), e.TraceParent, held, s.now()))
	}
	acc := events.DocumentAccepted{JobRef: d.JobRef, ContentRef: d.ContentRef, ContentSHA256: hash, Metadata: d.Metadata}
	if d.ContentRef == "" {
		acc.Content = d.Content
	}
	return bus.Publish(ctx, s.bus.Pub, derived(AcceptedID(d.JobID), e.TraceParent, acc, s.now()))
}

func (s *Service) handleApproved(ctx context.Context, e events.Event[events.JobApproved]) error {
	d := e.Data
	j, found, err := s.job(ctx, d.JobID)
	if err != nil {
		return err
	}
	// Cancelled or expired between approval and now; or accepted already,
	// by an earlier delivery of this approval or of another one.
	if found && (j.Status.Terminal() || j.Status == jobstate.StatusProcessing || j.Accepted) {
		s.bus.Logger.DebugContext(ctx, "approval needs no acceptance", "job_id", d.JobID, "status", j.Status)
		return nil
	}
	acc := events.DocumentAccepted{JobRef: d.JobRef, ContentRef: d.ContentRef, ContentSHA256: d.ContentSHA256, Metadata: d.Metadata}
	return bus.Publish(ctx, s.bus.Pub, derived(AcceptedID(d.JobID), e.TraceParent, acc, s.now()))
}

// releaseJobClaim releases the claim of a cancelled or expired job. The
// content hash comes from the job record; without it the job never got as
// far as a claim this service can find.
func (s *Service) releaseJobClaim(ctx context.Context, ref events.JobRef) error {
	j, found, err := s.job(ctx, ref.JobID)
	if err != nil {
		return err
	}
	if !found || j.ContentSHA256 == "" {
		s.bus.Logger.DebugContext(ctx, "no content hash, no claim to release", "job_id", ref.JobID)
		return nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = j.Namespace
	}
	return s.release(ctx, ns, j.ContentSHA256, ref.JobID)
}

// handleDeleted releases a deleted document's claim, so its content can be
// ingested again, and removes its text.
func (s *Service) handleDeleted(ctx context.Context, e events.Event[events.DocumentDeleted]) error {
	d := e.Data
	if d.ContentSHA256 != "" && d.IngestJobID != "" {
		if err := s.release(ctx, d.Namespace, d.ContentSHA256, d.IngestJobID); err != nil {
			return err
		}
	}
	// Only the ingesting job's own text goes: an event naming another
	// object (a bug, or a publisher outside kgraph) deletes nothing else.
	if owner, ok := jobstate.ParseContentRef(d.ContentRef); ok && owner == d.IngestJobID {
		if err := s.docs.Delete(ctx, d.ContentRef); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("delete document text %q: %w", d.ContentRef, err)
		}
	}
	return nil
}

// release deletes the claim of (namespace, hash) if jobID holds it: a claim
// taken over since by a forced submission, or by another job after an
// earlier release, stays.
func (s *Service) release(ctx context.Context, namespace, hash, jobID string) error {
	key := jobstate.ClaimKey(namespace, hash)
	raw, _, err := s.claims.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read claim %s: %w", key, err)
	}
	var c jobstate.Claim
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("decode claim %s: %w", key, err)
	}
	if c.JobID != jobID {
		return nil
	}
	if err := s.claims.Delete(ctx, key); err != nil {
		return fmt.Errorf("release claim %s: %w", key, err)
	}
	s.bus.Logger.DebugContext(ctx, "claim released", "key", key, "job_id", jobID)
	return nil
}
