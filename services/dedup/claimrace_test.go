package dedup_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/services/dedup"
)

// cancellingClaims is the claim store while a cancellation is handled in
// the moment a submission takes its claim: once the claim is created, the
// job record says cancelled, and the cancellation's own release has found
// no claim to release.
type cancellingClaims struct {
	*natskv.Store
	cancel func(ctx context.Context) error
}

func (c cancellingClaims) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := c.Store.Create(ctx, key, value)
	if err == nil {
		if err := c.cancel(ctx); err != nil {
			return 0, err
		}
	}
	return rev, err
}

// countingJobs counts the reads of job records.
type countingJobs struct {
	dedup.Jobs
	reads atomic.Int64
}

func (c *countingJobs) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	c.reads.Add(1)
	return c.Jobs.Get(ctx, key)
}

// The job record is read before the claim and again after it. Passing the
// first reading on instead of the second would keep this claim for good:
// the cancelled job would hold its text, and every later submission of it
// would end as a duplicate of a job that never ran.
func TestCancellationWhileClaimingReleasesTheClaim(t *testing.T) {
	h := newHarness(t)
	pending := jobstate.Job{JobID: "job-1", DocID: "doc-job-1", Namespace: "books", Status: jobstate.StatusPending}
	h.putJob(t, pending)
	claims := cancellingClaims{Store: h.claims, cancel: func(ctx context.Context) error {
		cancelled := pending
		cancelled.Status = jobstate.StatusCancelled
		raw, err := json.Marshal(cancelled)
		if err != nil {
			return err
		}
		_, err = h.jobs.Put(ctx, jobstate.JobKey(cancelled.JobID), raw)
		return err
	}}
	jobs := &countingJobs{Jobs: h.jobs}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dedup.New(dedup.Config{}, h.bus, claims, jobs, h.docs).Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("dedup did not stop")
		}
	})

	h.submit(t, "evt-1", events.DocumentSubmitted{JobRef: ref("job-1", "books"), Content: text, SubmittedAt: time.Now()})
	h.waitIdle(t)
	require.Empty(t, published[events.DocumentAccepted](t, h), "a job cancelled while claiming is not accepted")
	h.requireUnclaimed(t, "books", text)
	require.EqualValues(t, 2, jobs.reads.Load(), "one read of the job before the claim and one after it")
	h.requireNoDeadLetters(t)
}
