package projection

// Folds: what each event of the catalogue changes in its job's record.

import (
	"context"
	"log/slog"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
)

// routes folds every event type of the catalogue.
func (s *Service) routes() []bus.Route {
	return []bus.Route{
		on(s, func(j *job, e events.DocumentSubmitted, _ time.Time) {
			j.Submitted = true
			if j.Kind == "" {
				j.Kind = jobstate.KindIngest
			}
			j.ClientID = e.ClientID
			if !e.SubmittedAt.IsZero() {
				j.CreatedAt = e.SubmittedAt.UTC()
			}
			j.setContent(e.ContentRef, e.ContentSHA256, e.Metadata)
			if e.ContentBytes > 0 {
				j.ContentBytes = e.ContentBytes
			}
			j.Force = e.Force
			j.RequireApproval = e.RequireApproval
			if e.Estimate != nil {
				j.Estimate = e.Estimate
			}
		}),
		on(s, func(j *job, e events.DocumentDuplicate, _ time.Time) {
			if !j.Status.Terminal() {
				j.ExistingJobID = e.ExistingJobID
				j.finish(jobstate.StatusDuplicate)
			}
		}),
		on(s, func(j *job, e events.JobAwaitingApproval, at time.Time) {
			j.RequireApproval = true
			if j.AwaitingSince.IsZero() {
				j.AwaitingSince = at.UTC()
			}
			j.setContent(e.ContentRef, e.ContentSHA256, e.Metadata)
			if e.Estimate != nil {
				j.Estimate = e.Estimate
			}
		}),
		on(s, func(j *job, e events.JobApproved, at time.Time) {
			j.setContent(e.ContentRef, e.ContentSHA256, e.Metadata)
			// The edge approves only jobs it saw awaiting approval; one
			// that expired or was cancelled meanwhile stays so.
			if j.awaitingApproval() {
				j.ApprovedAt, j.ApprovedBy = at.UTC(), e.ApprovedBy
			}
		}),
		on(s, func(j *job, e events.JobCancelled, _ time.Time) {
			if !j.Status.Terminal() {
				j.CancelledBy = e.CancelledBy
				j.Error = "cancelled"
				if e.Reason != "" {
					j.Error += ": " + e.Reason
				}
				j.finish(jobstate.StatusCancelled)
			}
		}),
		on(s, func(j *job, e events.JobExpired, _ time.Time) {
			if j.awaitingApproval() {
				j.Error = e.Reason
				j.finish(jobstate.StatusExpired)
			}
		}),
		on(s, func(j *job, _ events.DocumentAccepted, _ time.Time) { j.Accepted = true }),
		on(s, func(j *job, e events.DocumentChunked, _ time.Time) {
			j.Accepted, j.Chunked, j.ChunksTotal = true, true, e.ChunksTotal
		}),
		bus.Ignore(events.TypeChunkCreated),
		on(s, func(j *job, e events.ChunkExtracted, _ time.Time) {
			j.Extractor = e.Extractor
			// Usage counts once per chunk, however often it is redelivered.
			if j.Extracted.Set(e.Index) && e.Usage != nil {
				j.Usage = j.Usage.Add(*e.Usage)
			}
		}),
		on(s, func(j *job, e events.ChunkMerged, _ time.Time) {
			j.Accepted = true
			j.Merged.Set(e.Index)
			j.Entities = max(j.Entities, e.DocEntities)
			j.Relations = max(j.Relations, e.DocRelations)
		}),
		on(s, func(j *job, e events.ChunkIndexed, _ time.Time) {
			j.Accepted = true
			j.Indexed.Set(e.Index)
		}),
		on(s, func(j *job, _ events.JobCompleted, _ time.Time) {}),
		on(s, func(j *job, e events.JobFailed, _ time.Time) {
			if !j.Status.Terminal() {
				j.FailedStage, j.Error = e.Stage, e.Reason
				j.finish(jobstate.StatusFailed)
			}
		}),
		on(s, func(j *job, e events.DocumentDeleted, at time.Time) {
			j.Kind = jobstate.KindDelete
			if !j.Submitted {
				// The request is the deletion job's submission.
				j.Submitted = true
				j.CreatedAt = at.UTC()
			}
			j.IngestJobID = e.IngestJobID
			j.ClientID = e.RequestedBy
			j.setContent(e.ContentRef, e.ContentSHA256, nil)
		}),
		on(s, func(j *job, _ events.DocumentUnmerged, _ time.Time) {
			j.Kind, j.GraphRemoved = jobstate.KindDelete, true
		}),
		on(s, func(j *job, _ events.DocumentUnindexed, _ time.Time) {
			j.Kind, j.VectorsRemoved = jobstate.KindDelete, true
		}),
		bus.Ignore(events.TypeCommunitiesUpdated),
	}
}

// job wraps the record with the projection's rules.
type job struct{ jobstate.Job }

func (j *job) finish(st jobstate.Status) {
	if !j.Status.Terminal() {
		j.Status = st
	}
}

// setContent keeps what acceptance needs; an event without a field leaves
// what an earlier one recorded.
func (j *job) setContent(ref, sha string, metadata map[string]string) {
	if ref != "" {
		j.ContentRef = ref
	}
	if sha != "" {
		j.ContentSHA256 = sha
	}
	if metadata != nil {
		j.Metadata = metadata
	}
}

// awaitingApproval reports whether the job holds at the approval gate: not
// approved, not accepted and not finished.
func (j *job) awaitingApproval() bool {
	return !j.Status.Terminal() && !j.AwaitingSince.IsZero() && j.ApprovedAt.IsZero() && !j.Accepted
}

// derive recomputes the status from the facts gathered so far.
func (j *job) derive() {
	if j.Status.Terminal() {
		return
	}
	switch {
	case j.IsDeletion():
		if j.GraphRemoved && j.VectorsRemoved {
			j.Status = jobstate.StatusCompleted
		} else {
			j.Status = jobstate.StatusProcessing
		}
	case j.Chunked && j.Merged.Count() >= j.ChunksTotal && j.Indexed.Count() >= j.ChunksTotal && j.ChunksProcessed() >= j.ChunksTotal:
		j.Status = jobstate.StatusCompleted
	case j.Accepted:
		j.Status = jobstate.StatusProcessing
	case !j.ApprovedAt.IsZero():
		j.Status = jobstate.StatusApproved
	case !j.AwaitingSince.IsZero():
		j.Status = jobstate.StatusAwaitingApproval
	default:
		j.Status = jobstate.StatusPending
	}
}

// logger is the bus's logger, or a silent one.
func (s *Service) logger() *slog.Logger {
	if s.bus.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.bus.Logger
}

// on adapts a fold function of one event type into a route that applies it
// to the job record with optimistic concurrency.
func on[T events.Payload](s *Service, fold func(j *job, e T, at time.Time)) bus.Route {
	return bus.On(func(ctx context.Context, e events.Event[T]) error {
		return s.apply(ctx, e.Data.Ref(), func(j *job) { fold(j, e.Data, e.Time) })
	})
}
