package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
)

// The scheduler runs every SchedulerInterval, and on request over NATS
// (events.SchedulerCleanupSubject): it expires jobs that awaited approval
// longer than ApprovalTTL, by publishing job.expired, and purges the
// records of jobs that finished more than Retention ago. It never touches a
// document record.
//
// Every replica runs it, without a lease, because two replicas running at
// once do no harm: job.expired carries an id derived from the job id, so
// the stream drops the copies published within its duplicate window, and a
// copy folded later changes nothing (the job is no longer awaiting approval;
// dedup releases a claim only while the expired job holds it); purging
// deletes a record that is deleted either way, and deleting a missing key
// is no error. What it costs is one scan of the job records per replica and
// interval.

// scheduler is the state of this replica's scheduler runs.
type scheduler struct {
	// runMu lets one run at a time go through the job records.
	runMu sync.Mutex

	mu          sync.Mutex
	lastRunAt   time.Time
	nextRunAt   time.Time
	lastExpired int
	lastPurged  int
	runs        int
	running     bool
}

// schedule runs the scheduler every interval until ctx ends.
func (s *Service) schedule(ctx context.Context) {
	interval := s.cfg.SchedulerInterval
	s.setNextRun(s.now().Add(interval))
	t := time.NewTimer(interval)
	defer t.Stop()
	// The first run also checks the document index (see run).
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.run(ctx, false, first)
		first = false
		if err != nil && ctx.Err() == nil {
			s.logger().Warn("scheduler run", "err", err)
		}
		s.setNextRun(s.now().Add(interval))
		t.Reset(interval)
	}
}

func (s *Service) setNextRun(at time.Time) {
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	s.sched.nextRunAt = at.UTC()
}

// Cleanup runs expiry and retention now, after any run in progress. A dry
// run changes nothing and reports what a run would do. On an error the
// reply holds what was done before it.
func (s *Service) Cleanup(ctx context.Context, dryRun bool) (events.SchedulerCleanupReply, error) {
	return s.run(ctx, dryRun, true)
}

// run is one scheduler run. The job index is checked on every run, as the
// run reads every job record anyway; the document index, whose check reads
// every document record (they are kept forever), on the first run after a
// start and on request: entries go missing only in a store written before
// the index existed, and stale ones are skipped by readers meanwhile.
func (s *Service) run(ctx context.Context, dryRun, checkDocIndex bool) (events.SchedulerCleanupReply, error) {
	s.sched.runMu.Lock()
	defer s.sched.runMu.Unlock()
	s.setRunning(true)
	defer s.setRunning(false)
	reply, err := s.sweep(ctx, dryRun)
	if err == nil && !dryRun && checkDocIndex {
		err = s.repairDocIndex(ctx)
	}
	if !dryRun {
		s.sched.mu.Lock()
		s.sched.lastRunAt = s.now().UTC()
		s.sched.lastExpired, s.sched.lastPurged = reply.Expired, reply.Purged
		s.sched.runs++
		s.sched.mu.Unlock()
	}
	return reply, err
}

func (s *Service) setRunning(running bool) {
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	s.sched.running = running
}

// SchedulerStatus reports the settings and the runs of this replica.
func (s *Service) SchedulerStatus() events.SchedulerStatus {
	retention := max(s.cfg.Retention, 0) // RetainForever shows as 0
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	return events.SchedulerStatus{
		Interval: s.cfg.SchedulerInterval.String(), IntervalSeconds: s.cfg.SchedulerInterval.Seconds(),
		ApprovalTTL: s.cfg.ApprovalTTL.String(), ApprovalTTLSeconds: s.cfg.ApprovalTTL.Seconds(),
		Retention: retention.String(), RetentionSeconds: retention.Seconds(),
		LastRunAt: s.sched.lastRunAt, NextRunAt: s.sched.nextRunAt,
		LastExpired: s.sched.lastExpired, LastPurged: s.sched.lastPurged,
		Runs: s.sched.runs, Running: s.sched.running,
	}
}

// sweep goes once through the job records. It stops at the first store or
// publish error: the next run starts over.
func (s *Service) sweep(ctx context.Context, dryRun bool) (events.SchedulerCleanupReply, error) {
	reply := events.SchedulerCleanupReply{JobIDsExpired: []string{}, JobIDsPurged: []string{}}
	// The index is listed before the records: an entry of a job created
	// meanwhile is then listed without its record, which
	// removeStaleIndexEntries checks again before removing anything.
	index, err := s.listIndex(ctx, jobstate.JobIndexPrefixes())
	if err != nil {
		return reply, err
	}
	keys, err := s.jobs.Keys(ctx, jobstate.JobKeyPrefix)
	if err != nil {
		return reply, fmt.Errorf("list job records: %w", err)
	}
	now := s.now()
	for _, key := range keys {
		id, ok := jobstate.ParseJobKey(key)
		if !ok {
			continue
		}
		j, _, err := s.records.Job(ctx, id)
		switch {
		case errors.Is(err, jobstate.ErrNotFound):
			continue // purged or deleted since the listing
		case errors.Is(err, jobstate.ErrCorrupt):
			s.logger().Warn("scheduler skips an undecodable job record", "key", key, "err", err)
			continue
		case err != nil:
			return counted(reply), err
		}
		purge := s.purges(&j, now)
		if !purge && !dryRun {
			if err := s.own(ctx, jobstate.JobIndexKeys(&j), index); err != nil {
				return counted(reply), err
			}
		}
		switch {
		case s.expires(&j, now):
			if !dryRun {
				if err := s.expire(ctx, &j); err != nil {
					return counted(reply), err
				}
			}
			reply.JobIDsExpired = append(reply.JobIDsExpired, j.JobID)
		case purge:
			if !dryRun {
				if err := s.jobs.Delete(ctx, key); err != nil {
					return counted(reply), fmt.Errorf("purge job record %s: %w", key, err)
				}
				// After the record: an entry without one is skipped, and one
				// left here is removed by the next run.
				entries := jobstate.JobIndexKeys(&j)
				s.dropIndexEntries(ctx, entries, nil)
				for _, k := range entries {
					delete(index.owned, k)
				}
			}
			reply.JobIDsPurged = append(reply.JobIDsPurged, j.JobID)
		}
	}
	if !dryRun {
		if err := s.removeStaleIndexEntries(ctx, index, s.jobOwner, now); err != nil {
			return counted(reply), err
		}
	}
	return counted(reply), nil
}

// indexEntries are the index entries listed at the start of a check, each
// marked once a record is found to own it; added counts the entries that
// records lacked and the check wrote.
type indexEntries struct {
	owned map[string]bool
	added int
}

// listIndex lists every entry under prefixes, none owned yet.
func (s *Service) listIndex(ctx context.Context, prefixes []string) (*indexEntries, error) {
	index := &indexEntries{owned: map[string]bool{}}
	for _, prefix := range prefixes {
		keys, err := s.jobs.Keys(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list the index under %s: %w", prefix, err)
		}
		for _, k := range keys {
			index.owned[k] = false
		}
	}
	return index, nil
}

// own writes the entries of a record that the index lacks (a record written
// before the index existed, or whose entries were lost) and marks them
// owned.
func (s *Service) own(ctx context.Context, keys []string, index *indexEntries) error {
	for _, k := range keys {
		if _, listed := index.owned[k]; !listed {
			if _, err := s.jobs.Put(ctx, k, []byte(indexEntry)); err != nil {
				return fmt.Errorf("write index entry %s: %w", k, err)
			}
			index.added++
		}
		index.owned[k] = true
	}
	return nil
}

// staleIndexGrace keeps an unowned index entry of a recent record: the
// projection writes a record's entries just before the record.
const staleIndexGrace = 10 * time.Minute

// indexOwner reads the record that an index entry at a position names, and
// returns the record's index keys: nil when there is none. It also returns
// the position's creation time, and false for a position of another shape.
type indexOwner func(ctx context.Context, pos string) (ownerKeys []string, createdAt time.Time, ok bool, err error)

// removeStaleIndexEntries removes the listed entries that no record owned:
// left by a crash between an entry and its record's write, or by a changed
// creation time. Each is checked against its record as it is now. It ends
// the check, and logs what it changed.
func (s *Service) removeStaleIndexEntries(ctx context.Context, index *indexEntries, owner indexOwner, now time.Time) error {
	if index.added > 0 {
		s.logger().Info("scheduler added missing index entries", "count", index.added)
	}
	removed := 0
	for k, owned := range index.owned {
		if owned {
			continue
		}
		pos, ok := jobstate.ParseIndexKey(k)
		if !ok {
			continue
		}
		keys, createdAt, ok, err := owner(ctx, pos)
		if err != nil {
			return err
		}
		if !ok || now.Sub(createdAt) < staleIndexGrace || slices.Contains(keys, k) {
			continue // not ours to judge; recent; or written since the listing
		}
		if err := s.jobs.Delete(ctx, k); err != nil {
			return fmt.Errorf("remove stale index entry %s: %w", k, err)
		}
		removed++
	}
	if removed > 0 {
		s.logger().Info("scheduler removed stale index entries", "count", removed)
	}
	return nil
}

// jobOwner is the indexOwner of job index entries.
func (s *Service) jobOwner(ctx context.Context, pos string) ([]string, time.Time, bool, error) {
	createdAt, jobID, ok := jobstate.ParseJobPosition(pos)
	if !ok {
		return nil, time.Time{}, false, nil
	}
	j, _, err := s.records.Job(ctx, jobID)
	switch {
	case errors.Is(err, jobstate.ErrNotFound), errors.Is(err, jobstate.ErrCorrupt):
		return nil, createdAt, true, nil
	case err != nil:
		return nil, time.Time{}, false, err
	}
	return jobstate.JobIndexKeys(&j), createdAt, true, nil
}

// docOwner is the indexOwner of document index entries.
func (s *Service) docOwner(ctx context.Context, pos string) ([]string, time.Time, bool, error) {
	createdAt, ns, docID, ok := jobstate.ParseDocPosition(pos)
	if !ok {
		return nil, time.Time{}, false, nil
	}
	d, _, err := s.readDocument(ctx, ns, docID)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	if d == nil {
		return nil, createdAt, true, nil
	}
	return jobstate.DocIndexKeys(d), createdAt, true, nil
}

// repairDocIndex brings the document index in line with the document
// records, as sweep does for jobs.
func (s *Service) repairDocIndex(ctx context.Context) error {
	index, err := s.listIndex(ctx, jobstate.DocIndexPrefixes())
	if err != nil {
		return err
	}
	keys, err := s.jobs.Keys(ctx, jobstate.DocKeyPrefixAll)
	if err != nil {
		return fmt.Errorf("list document records: %w", err)
	}
	for _, key := range keys {
		ns, docID, ok := jobstate.ParseDocKey(key)
		if !ok {
			continue
		}
		d, rev, err := s.readDocument(ctx, ns, docID)
		if err != nil {
			return err
		}
		if rev == 0 || d == nil {
			continue // deleted since the listing, or undecodable
		}
		if err := s.own(ctx, jobstate.DocIndexKeys(d), index); err != nil {
			return err
		}
	}
	return s.removeStaleIndexEntries(ctx, index, s.docOwner, s.now())
}

// expires reports whether j has awaited approval longer than the TTL.
func (s *Service) expires(j *jobstate.Job, now time.Time) bool {
	return j.Status == jobstate.StatusAwaitingApproval && !j.AwaitingSince.IsZero() && now.Sub(j.AwaitingSince) > s.cfg.ApprovalTTL
}

// purges reports whether j finished longer ago than the retention.
func (s *Service) purges(j *jobstate.Job, now time.Time) bool {
	return s.cfg.Retention > 0 && j.Status.Terminal() && !j.FinishedAt.IsZero() && now.Sub(j.FinishedAt) > s.cfg.Retention
}

// expire publishes job.expired; the projection folds it like any event.
func (s *Service) expire(ctx context.Context, j *jobstate.Job) error {
	data := events.JobExpired{JobRef: events.JobRef{JobID: j.JobID, DocID: j.DocID, Namespace: j.Namespace},
		Reason: "not approved within " + s.cfg.ApprovalTTL.String()}
	e := events.New(events.DerivedID(j.JobID, string(events.TypeJobExpired)), Source, data, s.now())
	if err := bus.Publish(ctx, s.bus.Pub, e); err != nil {
		return fmt.Errorf("expire job %s: %w", j.JobID, err)
	}
	return nil
}

func counted(r events.SchedulerCleanupReply) events.SchedulerCleanupReply {
	r.Expired, r.Purged = len(r.JobIDsExpired), len(r.JobIDsPurged)
	return r
}

// serveScheduler starts the scheduler's micro service; stop ends it and
// waits for the requests in flight. Requests are answered until stop,
// with ctx ending any cleanup in progress.
func (s *Service) serveScheduler(ctx context.Context) (stop func(), err error) {
	var (
		mu       sync.Mutex
		stopped  bool
		inflight sync.WaitGroup
	)
	// guard refuses requests once stopping: the draining subscriptions may
	// still deliver some, and stop must not return while one is handled.
	guard := func(h func(micro.Request)) micro.HandlerFunc {
		return func(r micro.Request) {
			mu.Lock()
			if stopped {
				mu.Unlock()
				s.replyError(r, http.StatusServiceUnavailable, "scheduler is stopping, retry")
				return
			}
			inflight.Add(1)
			mu.Unlock()
			defer inflight.Done()
			h(r)
		}
	}
	svc, err := micro.AddService(s.nc, micro.Config{Name: events.SchedulerServiceName, Version: "0.1.0",
		Description: "kgraph scheduler: approval expiry and job record retention"})
	if err != nil {
		return nil, fmt.Errorf("start scheduler micro service: %w", err)
	}
	stop = func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		if err := svc.Stop(); err != nil {
			s.logger().Warn("stop scheduler service", "err", err)
		}
		inflight.Wait()
	}
	if err := svc.AddEndpoint("status", guard(s.serveStatus), micro.WithEndpointSubject(events.SchedulerStatusSubject)); err != nil {
		stop()
		return nil, fmt.Errorf("add scheduler status endpoint: %w", err)
	}
	cleanup := guard(func(r micro.Request) { s.serveCleanup(ctx, r) })
	if err := svc.AddEndpoint("cleanup", cleanup, micro.WithEndpointSubject(events.SchedulerCleanupSubject)); err != nil {
		stop()
		return nil, fmt.Errorf("add scheduler cleanup endpoint: %w", err)
	}
	return stop, nil
}

func (s *Service) serveStatus(r micro.Request) {
	if err := r.RespondJSON(s.SchedulerStatus()); err != nil {
		s.logger().Warn("send scheduler status", "err", err)
	}
}

func (s *Service) serveCleanup(ctx context.Context, r micro.Request) {
	var req events.SchedulerCleanupRequest
	if len(r.Data()) > 0 {
		if err := json.Unmarshal(r.Data(), &req); err != nil {
			s.replyError(r, http.StatusBadRequest, "cleanup request is not valid JSON")
			return
		}
	}
	reply, err := s.Cleanup(ctx, req.DryRun)
	if err != nil {
		s.logger().Warn("scheduler cleanup", "err", err, "expired", reply.Expired, "purged", reply.Purged)
		s.replyError(r, http.StatusInternalServerError, fmt.Sprintf("cleanup stopped after expiring %d and purging %d jobs: %v",
			reply.Expired, reply.Purged, err))
		return
	}
	if err := r.RespondJSON(reply); err != nil {
		s.logger().Warn("send scheduler cleanup reply", "err", err)
	}
}

// replyError answers with a NATS service error whose code is an HTTP status.
func (s *Service) replyError(r micro.Request, status int, msg string) {
	if err := r.Error(strconv.Itoa(status), msg, nil); err != nil {
		s.logger().Warn("send scheduler error", "err", err)
	}
}
