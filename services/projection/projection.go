// Package projection is the projection service, the only writer of job
// state. It folds every event of a job into the job record with
// compare-and-set updates, in whatever order the events arrive, and derives
// completion: when every chunk is both merged and indexed (for a deletion
// job: when the document is gone from the graph and from the vectors) it
// marks the job completed and publishes job.completed. It keeps a document
// record per ingested document (see documents.go) and runs the scheduler
// that expires unapproved jobs and purges old job records (scheduler.go).
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

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/projection"

// Jobs is the store of job and document records (JetStream KV or Redis).
type Jobs interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Scheduler defaults, and the Retention that keeps job records forever.
const (
	DefaultSchedulerInterval = time.Minute
	DefaultApprovalTTL       = 24 * time.Hour
	DefaultRetention         = 7 * 24 * time.Hour
	RetainForever            = time.Duration(-1)
)

// Config of the service. Zero values take the defaults.
type Config struct {
	Concurrency int
	// SchedulerInterval is the time between two scheduler runs.
	SchedulerInterval time.Duration
	// ApprovalTTL is how long a job may await approval before the
	// scheduler expires it.
	ApprovalTTL time.Duration
	// Retention is how long the record of a finished job is kept after it
	// finished; RetainForever keeps it.
	Retention time.Duration
}

// Service is the projection.
type Service struct {
	cfg  Config
	bus  bus.Bus
	jobs Jobs
	// records reads the records in jobs, decoded as every reader decodes
	// them; the writes go to jobs.
	records *jobstate.Repository
	// nc serves the scheduler's micro service; nil runs no service.
	nc  *nats.Conn
	now func() time.Time

	// queues holds, per job key, the folds waiting for the write in
	// progress; a key is present while a write of its job is in progress.
	queuesMu sync.Mutex
	queues   map[string][]*pendingFold

	sched scheduler
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

// New builds the service. nc serves the scheduler's status and cleanup
// endpoints; with a nil nc the scheduler still runs, without them.
func New(cfg Config, b bus.Bus, jobs Jobs, nc *nats.Conn) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 8
	}
	if cfg.SchedulerInterval <= 0 {
		cfg.SchedulerInterval = DefaultSchedulerInterval
	}
	if cfg.ApprovalTTL <= 0 {
		cfg.ApprovalTTL = DefaultApprovalTTL
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	return &Service{cfg: cfg, bus: b, jobs: jobs, records: jobstate.NewRepository(jobs), nc: nc, now: time.Now,
		queues: map[string][]*pendingFold{}}
}

// Run consumes every event and runs the scheduler until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerProjection, Source, s.cfg.Concurrency, s.routes()...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopService := func() {}
	if s.nc != nil {
		if stopService, err = s.serveScheduler(ctx); err != nil {
			return err
		}
	}
	scheduled := make(chan struct{})
	go func() {
		defer close(scheduled)
		s.schedule(ctx)
	}()
	err = c.Run(ctx)
	cancel()
	<-scheduled
	stopService()
	return err
}

const maxCASAttempts = 100

// indexEntry is the value of a job or document index entry: the key says
// it all.
const indexEntry = "1"

// addIndexEntries writes the index entries of a record about to be written
// (now) that its stored version (before) does not have: before the record,
// so that a listing never misses a record that exists.
func (s *Service) addIndexEntries(ctx context.Context, now, before []string) error {
	for _, k := range now {
		if slices.Contains(before, k) {
			continue
		}
		if _, err := s.jobs.Put(ctx, k, []byte(indexEntry)); err != nil {
			return err
		}
	}
	return nil
}

// dropIndexEntries removes the index entries of a record's previous
// version (before) that its written version (now) does not have. One left
// behind is skipped by readers and removed by the scheduler.
func (s *Service) dropIndexEntries(ctx context.Context, before, now []string) {
	for _, k := range before {
		if slices.Contains(now, k) {
			continue
		}
		if err := s.jobs.Delete(ctx, k); err != nil {
			s.logger().Warn("remove an old index entry", "key", k, "err", err)
		}
	}
}

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
		stored, rev, err := s.records.Job(ctx, ref.JobID)
		j := &job{}
		var indexedAs []string // the stored record's index entries
		switch {
		case errors.Is(err, jobstate.ErrNotFound):
			now := s.now().UTC()
			j.Job = jobstate.Job{JobID: ref.JobID, DocID: ref.DocID, Namespace: ref.Namespace, Status: jobstate.StatusPending, CreatedAt: now}
		case err != nil:
			return err
		default:
			j.Job = stored
			indexedAs = jobstate.JobIndexKeys(&j.Job)
		}
		wasTerminal, wasAccepted := j.Status.Terminal(), j.Accepted
		viewBefore, wasIngesting := ingestingView(&j.Job)
		for _, p := range batch {
			p.fold(j)
		}
		j.derive()
		if !wasTerminal && j.Status.Terminal() {
			j.FinishedAt = s.now().UTC()
		}
		j.UpdatedAt = s.now().UTC()
		// A document record appears before the job record says accepted,
		// so that once it does, a missing document record means a deleted
		// document (see syncDocument). A job already finished when it is
		// accepted (a stray acceptance) gets none.
		if !wasAccepted && !wasTerminal && j.Accepted && !j.IsDeletion() {
			if err := s.syncDocument(ctx, &j.Job, true); err != nil {
				return err
			}
		}
		// A deletion completes only once its document record is gone, so a
		// client that sees the deletion job completed never still finds
		// the document.
		if j.IsDeletion() && !wasTerminal && j.Status == jobstate.StatusCompleted {
			if err := s.syncDocument(ctx, &j.Job, false); err != nil {
				return err
			}
		}
		val, err := json.Marshal(j.Job)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", ref.JobID, err)
		}
		// Index entries go in before the record that they point at, so that
		// a listing never misses a job whose record exists.
		indexAs := jobstate.JobIndexKeys(&j.Job)
		if err := s.addIndexEntries(ctx, indexAs, indexedAs); err != nil {
			return fmt.Errorf("index job %s: %w", ref.JobID, err)
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
		s.dropIndexEntries(ctx, indexedAs, indexAs)
		// Chunk progress does not show in the document record, so most
		// commits of a processing job leave it as it is.
		viewAfter, isIngesting := ingestingView(&j.Job)
		if !wasIngesting || !isIngesting || !sameDocument(viewBefore, viewAfter) {
			if err := s.syncDocument(ctx, &j.Job, !wasTerminal); err != nil {
				return err
			}
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
