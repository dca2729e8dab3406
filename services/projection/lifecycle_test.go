package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/projection"
)

const text = "Ada Lovelace met Charles Babbage."

var estimate = events.Estimate{Chunks: 3, TokensIn: 1200, TokensOutLow: 300, TokensOutHigh: 900,
	CostLowUSD: 0.01, CostHighUSD: 0.03, Model: "gpt-test"}

// document returns the document record, and false when there is none.
func (h harness) document(t *testing.T, ref events.JobRef) (jobstate.Document, bool) {
	t.Helper()
	raw, _, err := h.jobs.Get(context.Background(), jobstate.DocKey(ref.Namespace, ref.DocID))
	if errors.Is(err, kv.ErrNotFound) {
		return jobstate.Document{}, false
	}
	require.NoError(t, err)
	var d jobstate.Document
	require.NoError(t, json.Unmarshal(raw, &d))
	return d, true
}

func (h harness) requireNoDocument(t *testing.T, ref events.JobRef) {
	t.Helper()
	d, ok := h.document(t, ref)
	require.False(t, ok, "unexpected document record %+v", d)
}

// submittedAs is document.submitted as the REST edge publishes it.
func (f flow) submittedAs(at time.Time, approval, force bool) step {
	e := events.DocumentSubmitted{JobRef: f.ref, ContentRef: "text-" + f.ref.JobID, ContentSHA256: events.ContentSHA256(text),
		ContentBytes: len(text), Metadata: map[string]string{"lang": "en"}, ClientID: "client-7", Force: force,
		RequireApproval: approval, SubmittedAt: at}
	if approval {
		e.Estimate = &estimate
	}
	return stepOf(f.id("submitted", 0), e)
}

func (f flow) awaiting(at time.Time) step {
	return stepAt(f.id("awaiting", 0), events.JobAwaitingApproval{JobRef: f.ref, ContentRef: "text-" + f.ref.JobID,
		ContentSHA256: events.ContentSHA256(text), Metadata: map[string]string{"lang": "en"}, Estimate: &estimate}, at)
}

func (f flow) approved(at time.Time) step {
	return stepAt(f.id("approved", 0), events.JobApproved{JobRef: f.ref, ContentRef: "text-" + f.ref.JobID,
		ContentSHA256: events.ContentSHA256(text), ApprovedBy: "admin-1"}, at)
}

func (f flow) cancelled(reason string) step {
	return stepOf(f.id("cancelled", 0), events.JobCancelled{JobRef: f.ref, Reason: reason, CancelledBy: "client-9"})
}

func (f flow) expired() step {
	return stepOf(f.id("expired", 0), events.JobExpired{JobRef: f.ref, Reason: "not approved within 24h0m0s"})
}

func TestApprovedJobRunsToCompletion(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	f := newFlow("job-approval")
	awaitingAt := submittedAt.Add(5 * time.Second)
	approvedAt := submittedAt.Add(time.Hour)

	h.publish(t, f.submittedAs(submittedAt, true, false))
	h.waitIdle(t)
	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusPending, j.Status)
	require.Equal(t, jobstate.KindIngest, j.Kind)
	require.True(t, j.RequireApproval)
	require.Equal(t, &estimate, j.Estimate)
	require.Equal(t, "text-job-approval", j.ContentRef)
	require.Equal(t, events.ContentSHA256(text), j.ContentSHA256)
	require.Equal(t, len(text), j.ContentBytes)
	require.Equal(t, map[string]string{"lang": "en"}, j.Metadata)

	h.publish(t, f.awaiting(awaitingAt))
	h.waitIdle(t)
	j = h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusAwaitingApproval, j.Status)
	require.Equal(t, awaitingAt, j.AwaitingSince.UTC())
	require.Equal(t, "awaiting_approval", j.Progress().Stage)
	require.True(t, j.FinishedAt.IsZero())
	h.requireNoDocument(t, f.ref)

	h.publish(t, f.approved(approvedAt))
	h.waitIdle(t)
	j = h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusApproved, j.Status)
	require.Equal(t, approvedAt, j.ApprovedAt.UTC())
	require.Equal(t, "admin-1", j.ApprovedBy)
	require.Equal(t, awaitingAt, j.AwaitingSince.UTC(), "approval keeps the time the wait began")
	h.requireNoDocument(t, f.ref)

	h.publish(t, f.accepted(), f.chunked())
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusProcessing, h.job(t, f.ref.JobID).Status)
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocIngesting, d.Status)

	h.publish(t, f.allMerged()...)
	h.publish(t, f.allIndexed()...)
	h.waitIdle(t)
	j = h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.Equal(t, "admin-1", j.ApprovedBy)
	require.Len(t, h.completions(t), 1)
	d, ok = h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocReady, d.Status)
	h.requireNoDeadLetters(t)
}

func TestApprovalGateDecisionsAreFinal(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	cases := []struct {
		name  string
		steps func(f flow) []step
		// want checks the record after every step; stray steps follow.
		want  func(t *testing.T, j jobstate.Job)
		stray func(f flow) []step
	}{
		{
			name: "cancelled while awaiting approval",
			steps: func(f flow) []step {
				return []step{f.submittedAs(submittedAt, true, false), f.awaiting(at), f.cancelled("too expensive")}
			},
			want: func(t *testing.T, j jobstate.Job) {
				require.Equal(t, jobstate.StatusCancelled, j.Status)
				require.Equal(t, "cancelled: too expensive", j.Error)
				require.Equal(t, "client-9", j.CancelledBy)
				require.True(t, j.ApprovedAt.IsZero())
				require.Equal(t, "cancelled", j.Progress().Stage)
			},
			stray: func(f flow) []step { return []step{f.approved(at), f.expired(), f.accepted()} },
		},
		{
			name: "expired",
			steps: func(f flow) []step {
				return []step{f.submittedAs(submittedAt, true, false), f.awaiting(at), f.expired()}
			},
			want: func(t *testing.T, j jobstate.Job) {
				require.Equal(t, jobstate.StatusExpired, j.Status)
				require.Equal(t, "not approved within 24h0m0s", j.Error)
				require.True(t, j.ApprovedAt.IsZero())
				require.Empty(t, j.CancelledBy)
				require.Equal(t, "expired", j.Progress().Stage)
			},
			stray: func(f flow) []step { return []step{f.approved(at), f.cancelled("late")} },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.runProjection(t, projection.Config{Concurrency: 1})
			f := newFlow("job-gate")
			h.publish(t, c.steps(f)...)
			h.waitIdle(t)
			ended := h.job(t, f.ref.JobID)
			c.want(t, ended)
			require.False(t, ended.FinishedAt.IsZero())

			h.publish(t, c.stray(f)...)
			h.waitIdle(t)
			later := h.job(t, f.ref.JobID)
			c.want(t, later)
			require.Equal(t, ended.FinishedAt, later.FinishedAt)
			h.requireNoDocument(t, f.ref)
			h.requireNoDeadLetters(t)
		})
	}
}

func TestApprovalAndExpiryNeedAJobAwaitingApproval(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	now := time.Now()

	// An approval of a job that never awaited approval changes nothing.
	plain := newFlow("job-plain")
	h.publish(t, plain.submittedAs(submittedAt, false, false), plain.approved(now))
	// Expiry after approval changes nothing either.
	approved := newFlow("job-approved")
	h.publish(t, approved.submittedAs(submittedAt, true, false), approved.awaiting(now.Add(-time.Hour)), approved.approved(now), approved.expired())
	h.waitIdle(t)

	j := h.job(t, plain.ref.JobID)
	require.Equal(t, jobstate.StatusPending, j.Status)
	require.True(t, j.ApprovedAt.IsZero())
	j = h.job(t, approved.ref.JobID)
	require.Equal(t, jobstate.StatusApproved, j.Status)
	require.Empty(t, j.Error)

	h.publish(t, approved.accepted())
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusProcessing, h.job(t, approved.ref.JobID).Status)
	h.requireNoDeadLetters(t)
}

func TestCancelledJobKeepsProgressButNeverCompletes(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	f := newFlow("job-cancel")

	h.publish(t, f.submittedAs(submittedAt, false, false), f.accepted(), f.chunked(), f.merged(0), f.indexed(0))
	h.publish(t, f.cancelled("stop"))
	h.waitIdle(t)
	ended := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCancelled, ended.Status)
	require.Equal(t, "cancelled: stop", ended.Error)
	require.Equal(t, "client-9", ended.CancelledBy)
	require.False(t, ended.FinishedAt.IsZero())
	require.Equal(t, 1, ended.ChunksProcessed())
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocCancelled, d.Status)

	// Chunks extracted before the cancellation are still merged and indexed.
	h.publish(t, f.merged(1), f.merged(2), f.indexed(1), f.indexed(2))
	h.waitIdle(t)
	j := h.job(t, f.ref.JobID)
	require.Equal(t, jobstate.StatusCancelled, j.Status)
	require.Equal(t, 3, j.ChunksProcessed())
	require.Equal(t, f.wantEntities(), j.Entities)
	require.Equal(t, ended.FinishedAt, j.FinishedAt)
	require.Equal(t, "cancelled", j.Progress().Stage)
	require.Empty(t, h.completions(t), "a cancelled job never completes")
	d, ok = h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocCancelled, d.Status)
	require.Equal(t, 3, d.Chunks)
	require.Equal(t, f.wantEntities(), d.Entities)
	require.Equal(t, f.wantRelations(), d.Relations)
	h.requireNoDeadLetters(t)
}

// deletion builds the events of the deletion of an ingested document.
type deletion struct {
	ref    events.JobRef
	ingest flow
}

func newDeletion(jobID string, ingest flow) deletion {
	return deletion{ref: events.JobRef{JobID: jobID, DocID: ingest.ref.DocID, Namespace: ingest.ref.Namespace}, ingest: ingest}
}

func (d deletion) deleted() step {
	return stepOf(d.ref.JobID+"-deleted", events.DocumentDeleted{JobRef: d.ref, IngestJobID: d.ingest.ref.JobID,
		ContentRef: "text-" + d.ingest.ref.JobID, ContentSHA256: events.ContentSHA256(text), RequestedBy: "client-8"})
}

func (d deletion) unmerged() step {
	return stepOf(d.ref.JobID+"-unmerged", events.DocumentUnmerged{JobRef: d.ref})
}

func (d deletion) unindexed() step {
	return stepOf(d.ref.JobID+"-unindexed", events.DocumentUnindexed{JobRef: d.ref})
}

// ingested runs f to completion and returns its document record.
func (h harness) ingested(t *testing.T, f flow) jobstate.Document {
	t.Helper()
	h.publish(t, slices.Concat([]step{f.submittedAs(submittedAt, false, false)}, f.inFlowOrder()[1:])...)
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusCompleted, h.job(t, f.ref.JobID).Status)
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocReady, d.Status)
	return d
}

func TestDeletionJob(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	f := newFlow("job-ingest")
	h.ingested(t, f)
	del := newDeletion("job-delete", f)

	h.publish(t, del.deleted())
	h.waitIdle(t)
	j := h.job(t, del.ref.JobID)
	require.Equal(t, jobstate.KindDelete, j.Kind)
	require.Equal(t, jobstate.StatusProcessing, j.Status)
	require.Equal(t, f.ref.JobID, j.IngestJobID)
	require.Equal(t, "client-8", j.ClientID)
	require.Equal(t, jobstate.Progress{Stage: "deleting"}, j.Progress())
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocDeleting, d.Status)
	require.Equal(t, del.ref.JobID, d.DeletionJobID)
	require.Equal(t, f.ref.JobID, d.JobID)

	h.publish(t, del.unmerged())
	h.waitIdle(t)
	j = h.job(t, del.ref.JobID)
	require.Equal(t, jobstate.StatusProcessing, j.Status)
	require.Equal(t, jobstate.Progress{Stage: "deleting", Percent: 50}, j.Progress())
	_, ok = h.document(t, f.ref)
	require.True(t, ok, "the document record stays until the deletion completes")

	h.publish(t, del.unindexed())
	h.waitIdle(t)
	j = h.job(t, del.ref.JobID)
	require.Equal(t, jobstate.StatusCompleted, j.Status)
	require.True(t, j.GraphRemoved && j.VectorsRemoved)
	require.False(t, j.FinishedAt.IsZero())
	h.requireNoDocument(t, f.ref)
	require.Equal(t, jobstate.StatusCompleted, h.job(t, f.ref.JobID).Status, "the ingestion job's record stays")

	// A late event of the ingestion job does not bring the record back.
	h.publish(t, f.indexed(2).withID("late-indexed"), f.merged(1).withID("late-merged"))
	h.waitIdle(t)
	h.requireNoDocument(t, f.ref)
	h.requireNoDeadLetters(t)
}

func TestDeletionCompletesInAnyOrder(t *testing.T) {
	cases := []struct {
		name        string
		concurrency int
		order       func(d deletion) []step
	}{
		{"deleted, unmerged, unindexed", 1, func(d deletion) []step { return []step{d.deleted(), d.unmerged(), d.unindexed()} }},
		{"deleted, unindexed, unmerged", 1, func(d deletion) []step { return []step{d.deleted(), d.unindexed(), d.unmerged()} }},
		{"unindexed, unmerged, deleted", 1, func(d deletion) []step { return []step{d.unindexed(), d.unmerged(), d.deleted()} }},
		{"unmerged, deleted, unindexed, folded concurrently", 8, func(d deletion) []step {
			return []step{d.unmerged(), d.deleted(), d.unindexed()}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.runProjection(t, projection.Config{Concurrency: c.concurrency})
			f := newFlow("job-ingest")
			h.ingested(t, f)
			del := newDeletion("job-delete", f)

			h.publish(t, c.order(del)...)
			h.waitIdle(t)
			j := h.job(t, del.ref.JobID)
			require.Equal(t, jobstate.StatusCompleted, j.Status)
			require.Equal(t, jobstate.KindDelete, j.Kind)
			require.Equal(t, f.ref.JobID, j.IngestJobID)
			require.Equal(t, jobstate.Progress{Stage: "done", Percent: 100}, j.Progress())
			h.requireNoDocument(t, f.ref)

			var deletions []events.JobCompleted
			for _, e := range h.completions(t) {
				if e.Data.JobID == del.ref.JobID {
					deletions = append(deletions, e.Data)
				}
			}
			require.Equal(t, []events.JobCompleted{{JobRef: del.ref}}, deletions, "job.completed once, without counts")
			h.requireNoDeadLetters(t)
		})
	}
}

func TestDocumentRecordLifecycle(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	first := newFlow("job-first")

	h.publish(t, first.submittedAs(submittedAt, false, false))
	h.waitIdle(t)
	h.requireNoDocument(t, first.ref)

	h.publish(t, first.accepted())
	h.waitIdle(t)
	d, ok := h.document(t, first.ref)
	require.True(t, ok)
	require.False(t, d.UpdatedAt.IsZero())
	d.UpdatedAt = time.Time{}
	d.CreatedAt = d.CreatedAt.UTC()
	require.Equal(t, jobstate.Document{DocID: first.ref.DocID, Namespace: "books", JobID: first.ref.JobID, ClientID: "client-7",
		Status: jobstate.DocIngesting, ContentRef: "text-job-first", ContentSHA256: events.ContentSHA256(text), ContentBytes: len(text),
		Metadata: map[string]string{"lang": "en"}, CreatedAt: submittedAt}, d)

	h.publish(t, first.chunked())
	h.publish(t, first.allMerged()...)
	h.publish(t, first.allIndexed()...)
	h.waitIdle(t)
	d, ok = h.document(t, first.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocReady, d.Status)
	require.Equal(t, first.ref.JobID, d.JobID)
	require.Equal(t, []int{3, first.wantEntities(), first.wantRelations()}, []int{d.Chunks, d.Entities, d.Relations})

	// A forced re-ingest of the same document id takes the record over.
	second := newFlow("job-second")
	second.ref.DocID = first.ref.DocID
	h.publish(t, second.submittedAs(submittedAt.Add(time.Hour), false, true), second.accepted())
	h.waitIdle(t)
	d, ok = h.document(t, first.ref)
	require.True(t, ok)
	require.Equal(t, second.ref.JobID, d.JobID)
	require.Equal(t, jobstate.DocIngesting, d.Status)
	require.Equal(t, submittedAt.Add(time.Hour), d.CreatedAt.UTC())
	require.Zero(t, d.Chunks)
	require.True(t, h.job(t, second.ref.JobID).Force)

	// Late events of the older job leave it alone.
	h.publish(t, first.indexed(1).withID("first-late"))
	h.waitIdle(t)
	d, _ = h.document(t, first.ref)
	require.Equal(t, second.ref.JobID, d.JobID)

	h.publish(t, failed(second, "second-failed", "extractor-documents", "cannot chunk"))
	h.waitIdle(t)
	d, _ = h.document(t, first.ref)
	require.Equal(t, second.ref.JobID, d.JobID)
	require.Equal(t, jobstate.DocFailed, d.Status)
	h.requireNoDeadLetters(t)
}

func TestDocumentRecordDoesNotDependOnEventOrder(t *testing.T) {
	h := newHarness(t)
	h.runProjection(t, projection.Config{Concurrency: 1})
	f := newFlow("job-reordered")
	// Acceptance first: the record appears, and takes the submission's
	// details once they arrive.
	h.publish(t, f.accepted())
	h.waitIdle(t)
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Empty(t, d.ClientID)

	steps := slices.Concat([]step{f.chunked()}, f.allIndexed(), f.allMerged())
	slices.Reverse(steps)
	h.publish(t, steps...)
	h.publish(t, f.submittedAs(submittedAt, false, false))
	h.waitIdle(t)
	d, ok = h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocReady, d.Status)
	require.Equal(t, "client-7", d.ClientID)
	require.Equal(t, "text-job-reordered", d.ContentRef)
	require.Equal(t, submittedAt, d.CreatedAt.UTC())
	require.Equal(t, []int{3, f.wantEntities(), f.wantRelations()}, []int{d.Chunks, d.Entities, d.Relations})

	// Neither a duplicate nor a stray acceptance of a finished job makes one.
	dup := newFlow("job-dup")
	h.publish(t, dup.submittedAs(submittedAt, false, false),
		stepOf("dup-verdict", events.DocumentDuplicate{JobRef: dup.ref, ExistingJobID: f.ref.JobID, ContentSHA256: events.ContentSHA256(text)}),
		dup.accepted())
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusDuplicate, h.job(t, dup.ref.JobID).Status)
	h.requireNoDocument(t, dup.ref)
	h.requireNoDeadLetters(t)
}

// flakyDocs fails the first creations of document records, as a store
// that is briefly down.
type flakyDocs struct {
	projection.Jobs
	failures atomic.Int64
}

func (f *flakyDocs) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if strings.HasPrefix(key, jobstate.DocKeyPrefixAll) && f.failures.Add(-1) >= 0 {
		return 0, errors.New("store briefly down")
	}
	return f.Jobs.Create(ctx, key, value)
}

func TestDocumentRecordSurvivesFailedWrites(t *testing.T) {
	h := newHarness(t)
	jobs := &flakyDocs{Jobs: h.jobs}
	jobs.failures.Store(2)
	h.run(t, projection.New(projection.Config{Concurrency: 1}, h.bus, jobs, nil))
	f := newFlow("job-flaky")
	f.docEntities, f.docRelations = nil, nil

	// Acceptance and then completion (no chunks) each fail to create the
	// record at first; the record must still appear once they are retried.
	h.publish(t, f.submittedAs(submittedAt, false, false), f.accepted(), f.chunked())
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusCompleted, h.job(t, f.ref.JobID).Status)
	require.Negative(t, jobs.failures.Load(), "every planned failure happened")
	d, ok := h.document(t, f.ref)
	require.True(t, ok)
	require.Equal(t, jobstate.DocReady, d.Status)
	h.requireNoDeadLetters(t)
}

// completionWatch wraps the job store and records whether the deletion
// job's record was ever written as completed while its document record
// still existed.
type completionWatch struct {
	*natskv.Store
	jobKey, docKey string
	mu             sync.Mutex
	completed      bool
	docSeenThen    bool
}

func (w *completionWatch) check(ctx context.Context, key string, value []byte) {
	if key != w.jobKey {
		return
	}
	var j jobstate.Job
	if json.Unmarshal(value, &j) != nil || j.Status != jobstate.StatusCompleted {
		return
	}
	_, _, err := w.Store.Get(ctx, w.docKey)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.completed = true
	w.docSeenThen = w.docSeenThen || err == nil
}

func (w *completionWatch) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	w.check(ctx, key, value)
	return w.Store.Create(ctx, key, value)
}

func (w *completionWatch) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	w.check(ctx, key, value)
	return w.Store.Update(ctx, key, value, rev)
}

// A client that sees a deletion job completed never still finds its
// document: the record goes before the job says completed.
func TestDeletionCompletesAfterTheDocumentRecordIsGone(t *testing.T) {
	h := newHarness(t)
	f := newFlow("job-ingest")
	del := newDeletion("job-delete", f)
	w := &completionWatch{Store: h.jobs, jobKey: jobstate.JobKey(del.ref.JobID), docKey: jobstate.DocKey(f.ref.Namespace, f.ref.DocID)}
	h.run(t, projection.New(projection.Config{Concurrency: 1}, h.bus, w, h.nc))
	h.ingested(t, f)
	h.publish(t, del.deleted(), del.unmerged(), del.unindexed())
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusCompleted, h.job(t, del.ref.JobID).Status)
	w.mu.Lock()
	defer w.mu.Unlock()
	require.True(t, w.completed)
	require.False(t, w.docSeenThen, "the deletion job was completed while its document record still existed")
}
