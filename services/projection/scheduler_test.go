package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/services/projection"
)

// clock is the wall clock moved forward by a settable offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func (h harness) hasJob(t *testing.T, jobID string) bool {
	t.Helper()
	_, _, err := h.jobs.Get(context.Background(), jobstate.JobKey(jobID))
	if errors.Is(err, kv.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// status is the job's status, "" when it has no record or it cannot be
// read; it does not fail the test, so that it can be polled.
func (h harness) status(jobID string) jobstate.Status {
	raw, _, err := h.jobs.Get(context.Background(), jobstate.JobKey(jobID))
	if err != nil {
		return ""
	}
	var j jobstate.Job
	if json.Unmarshal(raw, &j) != nil {
		return ""
	}
	return j.Status
}

func TestSchedulerExpiresOnlyJobsAwaitingApprovalTooLong(t *testing.T) {
	h := newHarness(t)
	svc := h.runProjection(t, projection.Config{Concurrency: 1, SchedulerInterval: 50 * time.Millisecond})
	now := time.Now()
	old, recent, approved, plain := newFlow("job-old"), newFlow("job-recent"), newFlow("job-approved"), newFlow("job-plain")
	h.publish(t, old.submittedAs(submittedAt, true, false), old.awaiting(now.Add(-25*time.Hour)))
	h.publish(t, recent.submittedAs(submittedAt, true, false), recent.awaiting(now.Add(-23*time.Hour)))
	h.publish(t, approved.submittedAs(submittedAt, true, false), approved.awaiting(now.Add(-48*time.Hour)), approved.approved(now.Add(-47*time.Hour)))
	// Submitted long ago, never gated: not awaiting approval.
	h.publish(t, plain.submittedAs(submittedAt, false, false))

	require.Eventually(t, func() bool { return h.status(old.ref.JobID) == jobstate.StatusExpired }, 10*time.Second, 20*time.Millisecond)
	runs := svc.SchedulerStatus().Runs
	require.Eventually(t, func() bool { return svc.SchedulerStatus().Runs >= runs+2 }, 10*time.Second, 20*time.Millisecond,
		"later runs do not expire anything else")
	h.waitIdle(t)

	j := h.job(t, old.ref.JobID)
	require.Equal(t, "not approved within 24h0m0s", j.Error)
	require.False(t, j.FinishedAt.IsZero())
	require.Equal(t, jobstate.StatusAwaitingApproval, h.status(recent.ref.JobID))
	require.Equal(t, jobstate.StatusApproved, h.status(approved.ref.JobID))
	require.Equal(t, jobstate.StatusPending, h.status(plain.ref.JobID))

	expired := published[events.JobExpired](t, h)
	require.Len(t, expired, 1, "one job.expired, however many runs saw the job")
	require.Equal(t, events.JobExpired{JobRef: old.ref, Reason: "not approved within 24h0m0s"}, expired[0].Data)
	require.Equal(t, events.DerivedID(old.ref.JobID, string(events.TypeJobExpired)), expired[0].ID)
	require.Equal(t, projection.Source, expired[0].Source)
	h.requireNoDeadLetters(t)
}

func TestRetentionPurgesOnlyOldFinishedJobs(t *testing.T) {
	cases := []struct {
		name       string
		retention  time.Duration
		wantPurged []string
	}{
		{"seven days", 7 * 24 * time.Hour, []string{"job-cancelled", "job-deletion", "job-done", "job-dup", "job-failed"}},
		{"forever", projection.RetainForever, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			clk := &clock{}
			svc := projection.New(projection.Config{Concurrency: 1, Retention: c.retention}, h.bus, h.jobs, h.nc)
			projection.SetClock(svc, clk.now)
			h.run(t, svc)

			done := newFlow("job-done")
			h.ingested(t, done)
			failedJob, dup, cancelled, busy := newFlow("job-failed"), newFlow("job-dup"), newFlow("job-cancelled"), newFlow("job-busy")
			h.publish(t, failedJob.submittedAs(submittedAt, false, false), failed(failedJob, "job-failed-failed", "dedup", "no text"))
			h.publish(t, dup.submittedAs(submittedAt, false, false), stepOf("dup-verdict", events.DocumentDuplicate{JobRef: dup.ref,
				ExistingJobID: done.ref.JobID, ContentSHA256: events.ContentSHA256(text)}))
			h.publish(t, cancelled.submittedAs(submittedAt, false, false), cancelled.cancelled(""))
			h.publish(t, busy.submittedAs(submittedAt, false, false), busy.accepted())
			gone := newFlow("job-gone")
			del := newDeletion("job-deletion", gone)
			h.publish(t, del.deleted(), del.unmerged(), del.unindexed())
			h.waitIdle(t)

			clk.advance(8 * 24 * time.Hour)
			// Finished just now, by the moved clock.
			fresh := newFlow("job-fresh")
			h.publish(t, fresh.submittedAs(submittedAt, false, false), failed(fresh, "job-fresh-failed", "dedup", "no text"))
			h.waitIdle(t)
			all := []string{"job-done", "job-failed", "job-dup", "job-cancelled", "job-busy", "job-deletion", "job-fresh"}

			ctx := context.Background()
			dry, err := svc.Cleanup(ctx, true)
			require.NoError(t, err)
			require.Equal(t, events.SchedulerCleanupReply{Expired: 0, Purged: len(c.wantPurged), JobIDsExpired: []string{},
				JobIDsPurged: c.wantPurged}, dry)
			for _, id := range all {
				require.True(t, h.hasJob(t, id), "a dry run keeps %s", id)
			}
			require.Zero(t, svc.SchedulerStatus().Runs, "dry runs are not counted")

			reply, err := svc.Cleanup(ctx, false)
			require.NoError(t, err)
			require.Equal(t, dry, reply)
			for _, id := range all {
				require.Equal(t, !slices.Contains(c.wantPurged, id), h.hasJob(t, id), "job %s", id)
			}
			d, ok := h.document(t, done.ref)
			require.True(t, ok, "document records are never purged")
			require.Equal(t, jobstate.DocReady, d.Status)
			st := svc.SchedulerStatus()
			require.Equal(t, 1, st.Runs)
			require.Equal(t, len(c.wantPurged), st.LastPurged)
			require.WithinDuration(t, clk.now(), st.LastRunAt, time.Minute)
			h.requireNoDeadLetters(t)
		})
	}
}

// request sends a request to the scheduler once its service answers.
func request(t *testing.T, nc *nats.Conn, subject string, data []byte) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := nc.Request(subject, data, 5*time.Second)
		if errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // not started yet
			continue
		}
		require.NoError(t, err)
		return m
	}
}

func decodeReply[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	require.Empty(t, m.Header.Get(micro.ErrorCodeHeader), "error reply: %s", m.Header.Get(micro.ErrorHeader))
	var v T
	require.NoError(t, json.Unmarshal(m.Data, &v))
	return v
}

func TestSchedulerOverNATS(t *testing.T) {
	h := newHarness(t)
	started := time.Now()
	h.runProjection(t, projection.Config{Concurrency: 1, SchedulerInterval: time.Hour, ApprovalTTL: 2 * time.Hour})

	st := decodeReply[events.SchedulerStatus](t, request(t, h.nc, events.SchedulerStatusSubject, nil))
	require.WithinDuration(t, started.Add(time.Hour), st.NextRunAt, time.Minute)
	st.NextRunAt = time.Time{}
	require.Equal(t, events.SchedulerStatus{Interval: "1h0m0s", IntervalSeconds: 3600, ApprovalTTL: "2h0m0s", ApprovalTTLSeconds: 7200,
		Retention: "168h0m0s", RetentionSeconds: 7 * 24 * 3600}, st)

	f := newFlow("job-waiting")
	h.publish(t, f.submittedAs(submittedAt, true, false), f.awaiting(time.Now().Add(-3*time.Hour)))
	h.waitIdle(t)

	dry := decodeReply[events.SchedulerCleanupReply](t, request(t, h.nc, events.SchedulerCleanupSubject, []byte(`{"dry_run":true}`)))
	require.Equal(t, events.SchedulerCleanupReply{Expired: 1, Purged: 0, JobIDsExpired: []string{f.ref.JobID}, JobIDsPurged: []string{}}, dry)
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusAwaitingApproval, h.status(f.ref.JobID))

	reply := decodeReply[events.SchedulerCleanupReply](t, request(t, h.nc, events.SchedulerCleanupSubject, []byte(`{}`)))
	require.Equal(t, dry, reply)
	h.waitIdle(t)
	require.Equal(t, jobstate.StatusExpired, h.status(f.ref.JobID))
	require.Equal(t, "not approved within 2h0m0s", h.job(t, f.ref.JobID).Error)

	st = decodeReply[events.SchedulerStatus](t, request(t, h.nc, events.SchedulerStatusSubject, nil))
	require.Equal(t, 1, st.Runs)
	require.Equal(t, 1, st.LastExpired)
	require.Zero(t, st.LastPurged)
	require.False(t, st.Running)
	require.WithinDuration(t, time.Now(), st.LastRunAt, time.Minute)

	// An empty request is a run; nothing is left to expire, and the lists
	// are empty rather than null.
	m := request(t, h.nc, events.SchedulerCleanupSubject, nil)
	require.JSONEq(t, `{"expired":0,"purged":0,"job_ids_expired":[],"job_ids_purged":[]}`, string(m.Data))

	m = request(t, h.nc, events.SchedulerCleanupSubject, []byte(`{"dry_run":`))
	require.Equal(t, "400", m.Header.Get(micro.ErrorCodeHeader))
	h.requireNoDeadLetters(t)
}
