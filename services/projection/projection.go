// Package projection is the projection service, the only writer of job
// state. It folds every event of a job into the job record with
// compare-and-set updates, in whatever order the events arrive, and derives
// completion: when every chunk is both merged and indexed it marks the job
// completed and publishes job.completed.
//
// Every chunk event of a job updates the same record, so the events of one
// job that this process handles at once are coalesced: one of them folds all
// of them into the record in a single compare-and-set write, and each is
// acked only after that write. Replicas still race through compare-and-set.
package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/projection"

// Jobs is the job record store (JetStream KV or Redis).
type Jobs interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
}

// Config of the service.
type Config struct {
	Concurrency int
}

// Service is the projection.
type Service struct {
	cfg  Config
	bus  bus.Bus
	jobs Jobs
	now  func() time.Time

	// queues holds, per job key, the folds waiting for the write in
	// progress; a key is present while a write of its job is in progress.
	queuesMu sync.Mutex
	queues   map[string][]*pendingFold
}

// pendingFold is one event's change to a job record, waiting to be written.
type pendingFold struct {
	fold func(j *job)
	// done receives the outcome of the write that included the fold, or
	// errLead when the fold's handler is to write the next batch itself.
	done chan error
}

// errLead hands the writing of a job's queued folds to a waiting handler.
var errLead = errors.New("lead the next write")

// New builds the service.
func New(cfg Config, b bus.Bus, jobs Jobs) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 8
	}
	return &Service{cfg: cfg, bus: b, jobs: jobs, now: time.Now, queues: map[string][]*pendingFold{}}
}

// Run consumes every event until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerProjection, Source, s.cfg.Concurrency,
		on(s, func(j *job, e events.DocumentSubmitted, at time.Time) {
			j.Submitted = true
			j.ClientID = e.ClientID
			if !e.SubmittedAt.IsZero() {
				j.CreatedAt = e.SubmittedAt.UTC()
			}
		}),
		on(s, func(j *job, e events.DocumentDuplicate, _ time.Time) {
			if !j.Status.Terminal() {
				j.ExistingJobID = e.ExistingJobID
				j.finish(jobstate.StatusDuplicate)
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
		bus.Ignore(events.TypeCommunitiesUpdated),
	)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// job wraps the record with the projection's rules.
type job struct{ jobstate.Job }

func (j *job) finish(st jobstate.Status) {
	if !j.Status.Terminal() {
		j.Status = st
	}
}

// derive recomputes the status from the facts gathered so far.
func (j *job) derive() {
	if j.Status.Terminal() {
		return
	}
	switch {
	case j.Chunked && j.Merged.Count() >= j.ChunksTotal && j.Indexed.Count() >= j.ChunksTotal && j.ChunksProcessed() >= j.ChunksTotal:
		j.Status = jobstate.StatusCompleted
	case j.Accepted:
		j.Status = jobstate.StatusProcessing
	default:
		j.Status = jobstate.StatusPending
	}
}

// on adapts a fold function of one event type into a route that applies it
// to the job record with optimistic concurrency.
func on[T events.Payload](s *Service, fold func(j *job, e T, at time.Time)) bus.Route {
	return bus.On(func(ctx context.Context, e events.Event[T]) error {
		return s.apply(ctx, e.Data.Ref(), func(j *job) { fold(j, e.Data, e.Time) })
	})
}

const maxCASAttempts = 100

// apply folds one event into its job record and returns once a write that
// includes it has committed. When no write of the job is in progress the
// caller writes at once; otherwise its fold waits for the write in progress,
// and the first waiter then writes every fold queued meanwhile in one batch.
func (s *Service) apply(ctx context.Context, ref events.JobRef, fold func(j *job)) error {
	key := jobstate.JobKey(ref.JobID)
	p := &pendingFold{fold: fold, done: make(chan error, 1)}
	s.queuesMu.Lock()
	queue, busy := s.queues[key]
	s.queues[key] = append(queue, p)
	s.queuesMu.Unlock()
	if busy {
		select {
		case err := <-p.done:
			if !errors.Is(err, errLead) {
				return err
			}
		case <-ctx.Done():
			// A fold that is written anyway is harmless: folds are
			// idempotent, and the event is redelivered.
			s.abandon(key, p)
			return ctx.Err()
		}
	}
	// The batch holds p: a writer takes the whole queue, and p stays queued
	// until taken.
	s.queuesMu.Lock()
	batch := s.queues[key]
	s.queues[key] = []*pendingFold{}
	s.queuesMu.Unlock()
	err := s.write(ctx, ref, batch)
	for _, q := range batch {
		if q != p {
			q.done <- err
		}
	}
	s.queuesMu.Lock()
	s.handOverLocked(key)
	s.queuesMu.Unlock()
	return err
}

// handOverLocked passes the writing of a job's queued folds to the handler
// of the first of them, or forgets the key when none is queued.
func (s *Service) handOverLocked(key string) {
	queue := s.queues[key]
	if len(queue) == 0 {
		delete(s.queues, key)
		return
	}
	queue[0].done <- errLead
}

// abandon withdraws the fold of a handler that gave up waiting, passing on
// the lead if it had been handed to it.
func (s *Service) abandon(key string, p *pendingFold) {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	queue := s.queues[key]
	i := slices.Index(queue, p)
	if i < 0 {
		// Taken into a batch being written; its outcome lands in the
		// buffered done channel unread.
		return
	}
	s.queues[key] = slices.Delete(queue, i, i+1)
	// A queued fold can only have been sent the lead, never an outcome.
	select {
	case <-p.done:
		s.handOverLocked(key)
	default:
	}
}

// write folds a batch of events into the job record with compare-and-set,
// folding again from the stored record after every conflict.
func (s *Service) write(ctx context.Context, ref events.JobRef, batch []*pendingFold) error {
	key := jobstate.JobKey(ref.JobID)
	for range maxCASAttempts {
		raw, rev, err := s.jobs.Get(ctx, key)
		j := &job{}
		switch {
		case errors.Is(err, kv.ErrNotFound):
			now := s.now().UTC()
			j.Job = jobstate.Job{JobID: ref.JobID, DocID: ref.DocID, Namespace: ref.Namespace, Status: jobstate.StatusPending, CreatedAt: now}
		case err != nil:
			return fmt.Errorf("read job %s: %w", ref.JobID, err)
		default:
			if err := json.Unmarshal(raw, &j.Job); err != nil {
				return fmt.Errorf("decode job %s: %w", ref.JobID, err)
			}
		}
		wasTerminal := j.Status.Terminal()
		for _, p := range batch {
			p.fold(j)
		}
		j.derive()
		if !wasTerminal && j.Status.Terminal() {
			j.FinishedAt = s.now().UTC()
		}
		j.UpdatedAt = s.now().UTC()
		val, err := json.Marshal(j.Job)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", ref.JobID, err)
		}
		if rev == 0 {
			_, err = s.jobs.Create(ctx, key, val)
		} else {
			_, err = s.jobs.Update(ctx, key, val, rev)
		}
		if errors.Is(err, kv.ErrExists) || errors.Is(err, kv.ErrConflict) {
			continue // another event of the same job won the race; fold again
		}
		if err != nil {
			return fmt.Errorf("write job %s: %w", ref.JobID, err)
		}
		// Published after the commit, and again on any later event of a
		// completed job: a crash in between cannot lose job.completed, and
		// its derived id makes the copies disappear in the stream.
		if j.Status == jobstate.StatusCompleted {
			done := events.JobCompleted{JobRef: events.JobRef{JobID: j.JobID, DocID: j.DocID, Namespace: j.Namespace},
				ChunksTotal: j.ChunksTotal, Entities: j.Entities, Relations: j.Relations}
			e := events.New(events.DerivedID(j.JobID, string(events.TypeJobCompleted)), Source, done, s.now())
			if err := bus.Publish(ctx, s.bus.Pub, e); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("update job %s: still conflicting after %d attempts", ref.JobID, maxCASAttempts)
}
