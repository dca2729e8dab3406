package ingestapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
)

// ServiceInfo is what GET /api/v1/info reports about the deployment.
type ServiceInfo struct {
	Version     string `json:"version"`
	Mode        string `json:"mode" doc:"\"embedded\" (kg serve) or \"services\"."`
	GraphStore  string `json:"graph_store"`
	VectorStore string `json:"vector_store"`
	KVStore     string `json:"kv_store"`
	Extractor   string `json:"extractor" doc:"\"offline\" or llm:<model>, as jobs name it."`
	Embedder    string `json:"embedder"`
}

// DeadLetters lists, shows and replays the dead-letter stream; a
// *bus.DeadLetterStore (bus.NewDeadLetterStore) is one. Errors the edge
// tells apart: bus.ErrDeadLetterNotFound (404), bus.ErrAlreadyReplayed and
// bus.ErrNotReplayable (409); any other is an outage (503).
type DeadLetters interface {
	List(ctx context.Context, f bus.DeadLetterFilter, limit int) (bus.DeadLetterPage, error)
	Get(ctx context.Context, seq uint64) (bus.DeadLetter, error)
	Replay(ctx context.Context, seq uint64) (bus.Replayed, error)
}

var _ DeadLetters = (*bus.DeadLetterStore)(nil)

// schedulerTimeout bounds a scheduler request (the request's own timeout
// may be shorter).
const schedulerTimeout = 30 * time.Second

// InfoReply describes the deployment and the caller's key.
type InfoReply struct {
	ServiceInfo
	GoVersion     string    `json:"go_version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Auth          AuthInfo  `json:"auth"`
	// ApprovalNamespaces are those the caller may access.
	ApprovalNamespaces []string   `json:"approval_namespaces" doc:"Namespaces whose every submission waits for approval (those the caller's key may access)."`
	Caller             CallerInfo `json:"caller"`
}

// AuthInfo says how requests are authenticated; never a key's secret or
// hash.
type AuthInfo struct {
	Enabled          bool `json:"enabled" doc:"False only when authentication was switched off explicitly (laptop mode)."`
	Keys             int  `json:"keys" doc:"Number of configured API keys."`
	DefaultRateLimit int  `json:"default_rate_limit_per_minute" doc:"Requests per minute per key unless the key sets its own; 0: unlimited."`
}

// CallerInfo is the key the request was made with.
type CallerInfo struct {
	KeyID      string   `json:"key_id"`
	ClientID   string   `json:"client_id"`
	Role       string   `json:"role" enum:"read,write,admin"`
	Namespaces []string `json:"namespaces" doc:"Namespaces the key may access; [\"*\"] for all."`
}

// DeadLetterListInput filters and pages GET /api/v1/admin/dead-letters.
type DeadLetterListInput struct {
	Consumer  string `query:"consumer" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$" doc:"Only dead letters of this consumer (e.g. dedup, graph-writer)."`
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Only dead letters of events of this namespace (default: every namespace the key may access)."`
	Limit     int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor    string `query:"cursor" maxLength:"20" pattern:"^[0-9]+$" doc:"next_cursor of the previous page."`
}

// DeadLetterView is one dead letter: an event a consumer gave up on.
type DeadLetterView struct {
	Seq        uint64    `json:"seq" doc:"The dead letter's id (its sequence in the DEADLETTER stream)."`
	Time       time.Time `json:"time" doc:"When the event was dead-lettered."`
	Consumer   string    `json:"consumer" doc:"The consumer that gave up on the event."`
	Subject    string    `json:"subject" doc:"The subject the event was published on."`
	StreamSeq  uint64    `json:"stream_seq,omitempty" doc:"The event's sequence in the EVENTS stream."`
	Type       string    `json:"type,omitempty" doc:"CloudEvents type; absent when the message was not an event."`
	EventID    string    `json:"event_id,omitempty"`
	JobID      string    `json:"job_id,omitempty"`
	Namespace  string    `json:"namespace,omitempty" doc:"The event's namespace; absent when the payload names none (then only keys with every namespace see the dead letter)."`
	Reason     string    `json:"reason"`
	Deliveries uint64    `json:"deliveries,omitempty" doc:"Deliveries to the consumer before it gave up."`
	ReplayOf   uint64    `json:"replay_of,omitempty" doc:"The dead letter this event had been replayed from."`
	Payload    string    `json:"payload" doc:"The payload as text (invalid UTF-8 replaced by U+FFFD); cut to 4 KiB in listings."`
	// PayloadBytes is the payload's full size.
	PayloadBytes     int                 `json:"payload_bytes"`
	PayloadTruncated bool                `json:"payload_truncated,omitempty"`
	Headers          map[string][]string `json:"headers,omitempty" doc:"The event's original NATS headers (single dead letter only)."`
}

func deadLetterView(d bus.DeadLetter) DeadLetterView {
	return DeadLetterView{Seq: d.Seq, Time: d.Time, Consumer: d.Consumer, Subject: d.Subject, StreamSeq: d.StreamSeq, Type: d.Type,
		EventID: d.EventID, JobID: d.JobID, Namespace: d.Namespace, Reason: d.Reason, Deliveries: d.Deliveries, ReplayOf: d.ReplayOf,
		Payload: d.Payload, PayloadBytes: d.PayloadBytes, PayloadTruncated: d.PayloadTruncated, Headers: d.Headers}
}

// DeadLetterList is one page of dead letters, oldest first.
type DeadLetterList struct {
	DeadLetters []DeadLetterView `json:"dead_letters"`
	NextCursor  string           `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page. A page may hold fewer entries than the limit, even none, and still have a next one."`
}

// DeadLetterPath names one dead letter.
type DeadLetterPath struct {
	Seq uint64 `path:"seq" minimum:"1" doc:"The dead letter's seq."`
}

// ReplayReply answers a replay.
type ReplayReply struct {
	Seq       uint64 `json:"seq" doc:"The dead letter replayed; it is removed from the dead letters."`
	Subject   string `json:"subject"`
	EventID   string `json:"event_id,omitempty"`
	MsgID     string `json:"msg_id" doc:"Nats-Msg-Id of the republished event (derived from the dead letter, so a repeated replay publishes once)."`
	StreamSeq uint64 `json:"stream_seq" doc:"The republished event's sequence in the EVENTS stream."`
	Duplicate bool   `json:"duplicate" doc:"An earlier attempt had already republished the event; it was not published again."`
	Message   string `json:"message"`
}

// SchedulerCleanupBody is the optional body of POST /admin/scheduler/cleanup.
type SchedulerCleanupBody struct {
	DryRun bool `json:"dry_run,omitempty" doc:"Report what would be expired and purged without changing anything."`
}

func (s *Server) adminRoutes() {
	started := s.now()
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "info", Method: http.MethodGet, Path: "/api/v1/info", Tags: []string{"admin"},
		Summary: "The deployment (version, stores, authentication) and the caller's key",
	}, RoleRead), func(ctx context.Context, _ *struct{}) (*struct{ Body InfoReply }, error) {
		return &struct{ Body InfoReply }{s.info(ctx, started)}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "list-dead-letters", Method: http.MethodGet, Path: "/api/v1/admin/dead-letters", Tags: []string{"admin"},
		Summary:     "List dead letters, oldest first",
		Description: "Events a consumer gave up on, with the reason. A key limited to some namespaces sees only dead letters of events of those namespaces.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, RoleAdmin), func(ctx context.Context, in *DeadLetterListInput) (*struct{ Body DeadLetterList }, error) {
		out, err := s.listDeadLetters(ctx, *in)
		if err != nil {
			return nil, err
		}
		return &struct{ Body DeadLetterList }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-dead-letter", Method: http.MethodGet, Path: "/api/v1/admin/dead-letters/{seq}", Tags: []string{"admin"},
		Summary: "Get a dead letter with its whole payload and original headers",
		Errors:  []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, RoleAdmin), func(ctx context.Context, in *DeadLetterPath) (*struct{ Body DeadLetterView }, error) {
		d, err := s.deadLetter(ctx, in.Seq)
		if err != nil {
			return nil, err
		}
		return &struct{ Body DeadLetterView }{deadLetterView(d)}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "replay-dead-letter", Method: http.MethodPost, Path: "/api/v1/admin/dead-letters/{seq}/replay", Tags: []string{"admin"},
		Summary:       "Replay a dead letter",
		Description:   "Republishes the event (its subject, headers and payload) so consumers see it again, and removes the dead letter; if it fails again it comes back as a new dead letter. Every consumer of the event's subject receives it. 404 once replayed; 409 when another replay of it is under way or it names no event subject.",
		DefaultStatus: http.StatusAccepted, Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
	}, RoleAdmin), func(ctx context.Context, in *DeadLetterPath) (*struct {
		Status int
		Body   ReplayReply
	}, error) {
		out, err := s.replayDeadLetter(ctx, in.Seq)
		if err != nil {
			return nil, err
		}
		return &struct {
			Status int
			Body   ReplayReply
		}{http.StatusAccepted, out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "scheduler-status", Method: http.MethodGet, Path: "/api/v1/admin/scheduler/status", Tags: []string{"admin"},
		Summary:     "The scheduler's settings and runs (approval expiry, retention of finished jobs)",
		Description: "Asked of the projection's scheduler; with several replicas, one of them answers.",
		Errors:      []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout},
	}, RoleAdmin), func(ctx context.Context, _ *struct{}) (*struct{ Body events.SchedulerStatus }, error) {
		var out events.SchedulerStatus
		if err := s.askScheduler(ctx, events.SchedulerStatusSubject, struct{}{}, &out); err != nil {
			return nil, err
		}
		return &struct{ Body events.SchedulerStatus }{out}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "scheduler-cleanup", Method: http.MethodPost, Path: "/api/v1/admin/scheduler/cleanup", Tags: []string{"admin"},
		Summary:      "Run approval expiry and retention now",
		Description:  "Expires jobs waiting for approval past the TTL and purges finished jobs past retention, in every namespace: it needs an admin key with every namespace (\"*\"). dry_run reports without changing anything.",
		MaxBodyBytes: humaBodyLimit(1 << 10), Errors: []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout},
	}, RoleAdmin), func(ctx context.Context, in *struct{ Body *SchedulerCleanupBody }) (*struct {
		Body events.SchedulerCleanupReply
	}, error) {
		if !s.principal(ctx).All {
			return nil, huma.Error403Forbidden(fmt.Sprintf("cleanup expires and purges jobs of every namespace; it needs a key with namespaces [%q]", AllNamespaces))
		}
		var req events.SchedulerCleanupRequest
		if in.Body != nil {
			req.DryRun = in.Body.DryRun
		}
		var out events.SchedulerCleanupReply
		if err := s.askScheduler(ctx, events.SchedulerCleanupSubject, req, &out); err != nil {
			return nil, err
		}
		if out.JobIDsExpired == nil {
			out.JobIDsExpired = []string{}
		}
		if out.JobIDsPurged == nil {
			out.JobIDsPurged = []string{}
		}
		return &struct {
			Body events.SchedulerCleanupReply
		}{out}, nil
	})
}

func (s *Server) info(ctx context.Context, started time.Time) InfoReply {
	p := s.principal(ctx)
	out := InfoReply{ServiceInfo: s.cfg.Info, GoVersion: runtime.Version(), StartedAt: started.UTC(),
		UptimeSeconds:      s.now().Sub(started).Seconds(),
		Auth:               AuthInfo{Enabled: !s.cfg.Auth.Disabled, DefaultRateLimit: s.cfg.Auth.DefaultRateLimit},
		ApprovalNamespaces: []string{},
		Caller:             CallerInfo{KeyID: p.KeyID, ClientID: p.ClientID, Role: string(p.Role), Namespaces: slices.Clone(p.Namespaces)},
	}
	if out.Version == "" {
		out.Version = "dev"
	}
	if !s.cfg.Auth.Disabled {
		out.Auth.Keys = len(s.cfg.Auth.Keys)
	}
	if p.All {
		out.Caller.Namespaces = []string{AllNamespaces}
	}
	// Other tenants' namespace names are not the caller's business.
	for _, ns := range s.cfg.ApprovalNamespaces {
		if p.Can(ns) {
			out.ApprovalNamespaces = append(out.ApprovalNamespaces, ns)
		}
	}
	return out
}

func (s *Server) deadLetters() (DeadLetters, error) {
	if s.deps.DeadLetters == nil {
		return nil, huma.Error503ServiceUnavailable("dead letters not available")
	}
	return s.deps.DeadLetters, nil
}

// canSeeDeadLetter: a dead letter belongs to its event's namespace; one
// whose payload names none is shown only to keys with every namespace.
func (s *Server) canSeeDeadLetter(ctx context.Context, d bus.DeadLetter) bool {
	p := s.principal(ctx)
	return p.All || d.Namespace != "" && p.Can(d.Namespace)
}

func (s *Server) listDeadLetters(ctx context.Context, in DeadLetterListInput) (DeadLetterList, error) {
	f := bus.DeadLetterFilter{Consumer: in.Consumer}
	p := s.principal(ctx)
	switch {
	case in.Namespace != "":
		if err := s.allowNamespace(ctx, in.Namespace); err != nil {
			return DeadLetterList{}, err
		}
		f.Namespaces = []string{in.Namespace}
	case !p.All:
		f.Namespaces = slices.Clone(p.Namespaces)
	}
	if in.Cursor != "" {
		after, err := strconv.ParseUint(in.Cursor, 10, 64)
		if err != nil {
			return DeadLetterList{}, huma.Error422UnprocessableEntity("cursor is not one this API returned", &huma.ErrorDetail{Location: "query.cursor", Value: in.Cursor})
		}
		f.AfterSeq = after
	}
	if in.Limit == 0 {
		in.Limit = 50
	}
	dls, err := s.deadLetters()
	if err != nil {
		return DeadLetterList{}, err
	}
	page, err := dls.List(ctx, f, in.Limit)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "list dead letters", "err", err)
		return DeadLetterList{}, huma.Error503ServiceUnavailable("dead-letter stream unavailable, retry later")
	}
	out := DeadLetterList{DeadLetters: make([]DeadLetterView, 0, len(page.Entries))}
	for _, d := range page.Entries {
		// The store filtered already; this keeps the rule in one place
		// should a store not.
		if s.canSeeDeadLetter(ctx, d) {
			out.DeadLetters = append(out.DeadLetters, deadLetterView(d))
		}
	}
	if page.Next != 0 {
		out.NextCursor = strconv.FormatUint(page.Next, 10)
	}
	return out, nil
}

// deadLetter reads a dead letter the request may see: one of a namespace
// the key may not access answers 404 like a missing one.
func (s *Server) deadLetter(ctx context.Context, seq uint64) (bus.DeadLetter, error) {
	dls, err := s.deadLetters()
	if err != nil {
		return bus.DeadLetter{}, err
	}
	d, err := dls.Get(ctx, seq)
	if err == nil && !s.canSeeDeadLetter(ctx, d) {
		err = bus.ErrDeadLetterNotFound
	}
	if err != nil {
		return bus.DeadLetter{}, s.deadLetterError(ctx, seq, err)
	}
	return d, nil
}

func (s *Server) replayDeadLetter(ctx context.Context, seq uint64) (ReplayReply, error) {
	if _, err := s.deadLetter(ctx, seq); err != nil {
		return ReplayReply{}, err
	}
	r, err := s.deps.DeadLetters.Replay(ctx, seq)
	if err != nil {
		return ReplayReply{}, s.deadLetterError(ctx, seq, err)
	}
	s.deps.Logger.InfoContext(ctx, "dead letter replayed", "seq", seq, "subject", r.Subject, "event_id", r.EventID,
		"duplicate", r.Duplicate, "key_id", s.principal(ctx).KeyID)
	msg := "replayed: the event was republished and the dead letter removed"
	if r.Duplicate {
		msg = "replayed: an earlier attempt had republished the event; the dead letter was removed"
	}
	return ReplayReply{Seq: r.Seq, Subject: r.Subject, EventID: r.EventID, MsgID: r.MsgID, StreamSeq: r.StreamSeq,
		Duplicate: r.Duplicate, Message: msg}, nil
}

func (s *Server) deadLetterError(ctx context.Context, seq uint64, err error) error {
	switch {
	case errors.Is(err, bus.ErrDeadLetterNotFound):
		return huma.Error404NotFound(fmt.Sprintf("no dead letter %d (a replayed dead letter is removed)", seq))
	case errors.Is(err, bus.ErrAlreadyReplayed):
		return huma.Error409Conflict(fmt.Sprintf("dead letter %d was replayed by another request meanwhile", seq))
	case errors.Is(err, bus.ErrNotReplayable):
		return huma.Error409Conflict(fmt.Sprintf("dead letter %d names no event subject and cannot be replayed", seq))
	}
	s.deps.Logger.WarnContext(ctx, "dead letter", "err", err, "seq", seq)
	return huma.Error503ServiceUnavailable("dead-letter stream unavailable, retry later")
}

// askScheduler sends a request to the projection's scheduler and decodes
// its reply into out: 503 when no scheduler runs, 504 when none answers in
// time, the service's own status for an error reply.
func (s *Server) askScheduler(ctx context.Context, subject string, req, out any) error {
	if s.deps.Query == nil {
		return huma.Error503ServiceUnavailable("scheduler unreachable")
	}
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode scheduler request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, schedulerTimeout)
	defer cancel()
	resp, err := s.deps.Query.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: data})
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return huma.Error504GatewayTimeout("the scheduler did not answer in time")
	case errors.Is(err, nats.ErrNoResponders):
		return huma.Error503ServiceUnavailable("no scheduler is running (it runs in the projection service)")
	case err != nil:
		s.deps.Logger.WarnContext(ctx, "scheduler request", "err", err, "subject", subject)
		return huma.Error503ServiceUnavailable("scheduler unreachable")
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		status, convErr := strconv.Atoi(code)
		status = upstreamStatus(status, convErr)
		return huma.NewError(status, "scheduler: "+resp.Header.Get(micro.ErrorHeader))
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return huma.Error502BadGateway("the scheduler sent an unreadable answer")
	}
	return nil
}
