package ingestapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
)

// JobListInput filters and pages GET /api/v1/jobs.
type JobListInput struct {
	Status    string `query:"status" enum:"pending,awaiting_approval,approved,processing,completed,duplicate,failed,cancelled,expired" doc:"Only jobs in this status."`
	ClientID  string `query:"client_id" maxLength:"128" doc:"Only jobs submitted by this client id."`
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Only jobs of this namespace (default: every namespace the key may access)."`
	Kind      string `query:"kind" enum:"ingest,delete"`
	Limit     int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor    string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page."`
}

// JobList is one page of jobs, newest first.
type JobList struct {
	Jobs       []JobView `json:"jobs"`
	NextCursor string    `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

// JobActionBody is the optional body of cancel and approve.
type JobActionBody struct {
	Reason string `json:"reason,omitempty" maxLength:"500"`
}

// JobActionReply answers cancel and approve.
type JobActionReply struct {
	Job     JobView `json:"job"`
	Message string  `json:"message"`
}

func (s *Server) jobRoutes() {
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "list-jobs", Method: http.MethodGet, Path: "/api/v1/jobs", Tags: []string{"jobs"},
		Summary:     "List jobs, newest first",
		Description: "Filters combine; pages with a cursor. Lists only jobs of namespaces the key may access.",
	}, RoleRead), func(ctx context.Context, in *JobListInput) (*struct{ Body JobList }, error) {
		out, err := s.listJobs(ctx, *in)
		if err != nil {
			return nil, err
		}
		return &struct{ Body JobList }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-job", Method: http.MethodGet, Path: "/api/v1/jobs/{id}", Tags: []string{"jobs"}, Summary: "Get a job's status",
	}, RoleRead), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"128"`
	}) (*struct{ Body JobView }, error) {
		v, err := s.job(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body JobView }{v}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "cancel-job", Method: http.MethodPost, Path: "/api/v1/jobs/{id}/cancel", Tags: []string{"jobs"},
		Summary:      "Cancel a job",
		Description:  "A pending job or one awaiting approval never starts; a processing job stops between chunks (chunks already extracted are still merged) and its progress says how far it got. 409 for a job that already ended.",
		MaxBodyBytes: humaBodyLimit(4 << 10), Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, RoleWrite), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"128"`
		Body *JobActionBody
	}) (*struct{ Body JobActionReply }, error) {
		var reason string
		if in.Body != nil {
			reason = in.Body.Reason
		}
		out, err := s.cancelJob(ctx, in.ID, reason)
		if err != nil {
			return nil, err
		}
		return &struct{ Body JobActionReply }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "approve-job", Method: http.MethodPost, Path: "/api/v1/jobs/{id}/approve", Tags: []string{"jobs"},
		Summary:      "Approve a job that awaits approval",
		Description:  "409 unless the job is awaiting approval.",
		MaxBodyBytes: humaBodyLimit(4 << 10), Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, RoleWrite), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"128"`
		Body *JobActionBody
	}) (*struct{ Body JobActionReply }, error) {
		out, err := s.approveJob(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body JobActionReply }{out}, nil
	})
}

// listJobs scans the job records. Retention keeps their number bounded;
// the scan reads records concurrently.
func (s *Server) listJobs(ctx context.Context, in JobListInput) (JobList, error) {
	if in.Namespace != "" {
		if err := s.allowNamespace(ctx, in.Namespace); err != nil {
			return JobList{}, err
		}
	}
	after, err := decodeCursor(in.Cursor, func(pos string) bool { _, _, ok := jobstate.ParseJobPosition(pos); return ok })
	if err != nil {
		return JobList{}, err
	}
	if in.Limit == 0 {
		in.Limit = 50
	}
	p := s.principal(ctx)
	prefixes := indexListings(p, in.Namespace, jobstate.JobIndexPrefixAll, jobstate.JobIndexPrefix)
	keep := func(job *jobstate.Job) (JobView, bool) {
		if !p.Can(job.Namespace) || in.Namespace != "" && job.Namespace != in.Namespace {
			return JobView{}, false
		}
		kind := cmp.Or(job.Kind, jobstate.KindIngest)
		if in.Status != "" && string(job.Status) != in.Status || in.ClientID != "" && job.ClientID != in.ClientID ||
			in.Kind != "" && kind != in.Kind {
			return JobView{}, false
		}
		return jobView(*job), true
	}
	jobs, next, err := indexPage(ctx, s.deps.Jobs, prefixes, after, in.Limit, s.records.IndexedJobs, keep, s.deps.Logger)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "list jobs", "err", err)
		return JobList{}, huma.Error503ServiceUnavailable("job store unavailable, retry later")
	}
	return JobList{Jobs: jobs, NextCursor: encodeCursor(next)}, nil
}

// awaitStatus rereads a job until done says the projection has folded the
// event just published, or a short wait ends; the reply then shows the
// outcome in most cases.
func (s *Server) awaitStatus(ctx context.Context, id string, done func(jobstate.Job) bool) jobstate.Job {
	deadline := time.Now().Add(2 * time.Second)
	var last jobstate.Job
	for {
		j, _, err := s.readJob(ctx, id)
		if err == nil {
			last = j
			if done(j) {
				return j
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// jobRecordSoon reads a job for an action on it. A job this edge submitted
// a moment ago has no record until the projection folds its submission, and
// one submitted for approval stays pending until dedup has gated it; for
// such a job a missing or pending record is read again for a short while
// (before a 404, or a 409 on approval). Any other unknown id is a 404 at
// once.
func (s *Server) jobRecordSoon(ctx context.Context, id string) (jobstate.Job, error) {
	deadline := time.Now().Add(s.cfg.JobAppearWait)
	for {
		j, err := s.jobRecord(ctx, id)
		var se huma.StatusError
		missing := err != nil && errors.As(err, &se) && se.GetStatus() == http.StatusNotFound && s.recent.has(id)
		ungated := err == nil && j.Status == jobstate.StatusPending && s.recent.gated(id)
		if !missing && !ungated || time.Now().After(deadline) {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, err
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (s *Server) cancelJob(ctx context.Context, id, reason string) (JobActionReply, error) {
	j, err := s.jobRecordSoon(ctx, id)
	if err != nil {
		return JobActionReply{}, err
	}
	if err := s.allowNamespace(ctx, j.Namespace); err != nil {
		return JobActionReply{}, err
	}
	if j.Status.Terminal() {
		return JobActionReply{}, huma.Error409Conflict(fmt.Sprintf("job %s already ended with status %s; nothing to cancel", id, j.Status))
	}
	if j.IsDeletion() {
		return JobActionReply{}, huma.Error409Conflict("a deletion cannot be cancelled once requested")
	}
	e := events.New(events.DerivedID(id, string(events.TypeJobCancelled)), Source, events.JobCancelled{
		JobRef: events.JobRef{JobID: j.JobID, DocID: j.DocID, Namespace: j.Namespace}, Reason: reason, CancelledBy: s.principal(ctx).ClientID,
	}, s.now())
	if err := bus.Publish(ctx, s.deps.Publisher, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish job.cancelled", "err", err, "job_id", id)
		return JobActionReply{}, huma.Error503ServiceUnavailable("event bus unavailable, retry later")
	}
	s.deps.Logger.InfoContext(ctx, "job cancel requested", "job_id", id, "status", j.Status)
	after := s.awaitStatus(ctx, id, func(j jobstate.Job) bool { return j.Status.Terminal() })
	msg := "cancelled"
	if after.Status != jobstate.StatusCancelled {
		msg = "cancellation requested; the job stops between chunks"
	} else if after.ChunksTotal > 0 {
		msg = fmt.Sprintf("cancelled after %d of %d chunks", after.ChunksProcessed(), after.ChunksTotal)
	}
	return JobActionReply{Job: jobView(after), Message: msg}, nil
}

func (s *Server) approveJob(ctx context.Context, id string) (JobActionReply, error) {
	j, err := s.jobRecordSoon(ctx, id)
	if err != nil {
		return JobActionReply{}, err
	}
	if err := s.allowNamespace(ctx, j.Namespace); err != nil {
		return JobActionReply{}, err
	}
	if j.Status != jobstate.StatusAwaitingApproval {
		return JobActionReply{}, huma.Error409Conflict(fmt.Sprintf("job %s is %s, not awaiting approval", id, j.Status))
	}
	e := events.New(events.DerivedID(id, string(events.TypeJobApproved)), Source, events.JobApproved{
		JobRef:     events.JobRef{JobID: j.JobID, DocID: j.DocID, Namespace: j.Namespace},
		ContentRef: j.ContentRef, ContentSHA256: j.ContentSHA256, Metadata: j.Metadata, ApprovedBy: s.principal(ctx).ClientID,
	}, s.now())
	if err := bus.Publish(ctx, s.deps.Publisher, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish job.approved", "err", err, "job_id", id)
		return JobActionReply{}, huma.Error503ServiceUnavailable("event bus unavailable, retry later")
	}
	s.deps.Logger.InfoContext(ctx, "job approved", "job_id", id)
	after := s.awaitStatus(ctx, id, func(j jobstate.Job) bool { return j.Status != jobstate.StatusAwaitingApproval })
	return JobActionReply{Job: jobView(after), Message: "approved"}, nil
}

// rolePublic is the role of the operations anyone may call.
const rolePublic = "public"

// withPublic marks an operation that needs no key (probes).
func withPublic(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["role"] = rolePublic
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions["x-kgraph-role"] = rolePublic
	return op
}

// withRole records the role an operation needs in its metadata:
// requireDeclaredRole enforces it, the OpenAPI document shows it
// (x-kgraph-role), and the authorization matrix test checks every
// operation against it.
func withRole(op huma.Operation, r Role) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["role"] = string(r)
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions["x-kgraph-role"] = string(r)
	op.Security = []map[string][]string{{"apiKey": {}}, {"bearer": {}}}
	return op
}

// recentJobs remembers the jobs this edge submitted in the last minute, and
// which of them await approval, so that an action on one of them can wait
// for its record (bounded: the oldest are forgotten first).
type recentJobs struct {
	mu    sync.Mutex
	order []string
	jobs  map[string]recentJob
	max   int
	now   func() time.Time
}

type recentJob struct {
	at    time.Time
	gated bool // submitted for approval
}

func newRecentJobs(max int, now func() time.Time) *recentJobs {
	return &recentJobs{jobs: map[string]recentJob{}, max: max, now: now}
}

func (r *recentJobs) add(id string, gated bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs[id] = recentJob{at: r.now(), gated: gated}
	r.order = append(r.order, id)
	for len(r.order) > r.max {
		delete(r.jobs, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentJobs) get(id string) (recentJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[id]
	return j, ok && r.now().Sub(j.at) < time.Minute
}

func (r *recentJobs) has(id string) bool {
	_, ok := r.get(id)
	return ok
}

// gated reports whether the job is a recent submission for approval.
func (r *recentJobs) gated(id string) bool {
	j, ok := r.get(id)
	return ok && j.gated
}
