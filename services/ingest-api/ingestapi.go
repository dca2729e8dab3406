// Package ingestapi is the REST edge: it validates submissions, stores the
// text in the object store, publishes document.submitted and answers 202
// with a job id; it reads job status from the projection's records and asks
// the query service over NATS request/reply.
package ingestapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/ingest-api"

// Documents stores submitted document text.
type Documents interface {
	Put(ctx context.Context, name, text string) error
}

// Records reads KV records: job records and dedup claims.
type Records interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
}

// Requester sends a NATS request (the query service).
type Requester interface {
	RequestMsgWithContext(ctx context.Context, m *nats.Msg) (*nats.Msg, error)
}

// HealthCheck checks one backend.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config of the edge.
type Config struct {
	// MaxBodyBytes bounds a request body (413 beyond it).
	MaxBodyBytes int64
	// QueryTimeout bounds a query (504 beyond it), streamed or not.
	QueryTimeout time.Duration
	// JobPollInterval is how often a job event stream rereads the job
	// record (default 200ms).
	JobPollInterval time.Duration
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 30 * time.Second
	}
	if c.JobPollInterval <= 0 {
		c.JobPollInterval = 200 * time.Millisecond
	}
}

// Deps are the edge's dependencies.
type Deps struct {
	Publisher bus.MsgPublisher
	Documents Documents
	Jobs      Records
	Claims    Records
	Query     Requester
	// QueryStream streams answers (POST /api/v1/query/stream); a
	// *nats.Conn serves. Nil makes that endpoint answer 503.
	QueryStream QueryStreamer
	Health      []HealthCheck
	Logger      *slog.Logger
}

// Server is the REST edge.
type Server struct {
	cfg  Config
	deps Deps
	now  func() time.Time
	api  huma.API
	mux  *chi.Mux
}

// New builds the edge and its routes.
func New(cfg Config, deps Deps) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, deps: deps, now: time.Now, mux: chi.NewMux()}
	s.mux.Use(middleware.RequestID, requestIDHeader, middleware.Recoverer, s.guardBody)
	s.mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	s.mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
	hc := huma.DefaultConfig("kgraph API", "0.1.0")
	hc.CreateHooks = nil
	hc.Info.Description = "Submit documents, follow ingestion jobs and query the knowledge graph."
	s.api = humachi.New(s.mux, hc)
	s.routes()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// OpenAPI returns the OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

func requestIDHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", middleware.GetReqID(r.Context()))
		next.ServeHTTP(w, r)
	})
}

// guardBody rejects oversize bodies (413) and bodies that are not valid
// UTF-8 (400) before any handler parses them: encoding/json would silently
// replace invalid bytes, and the document would not be what was sent.
func (s *Server) guardBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "could not read the request body")
			return
		}
		if int64(len(body)) > s.cfg.MaxBodyBytes {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		if !utf8.Valid(body) {
			writeProblem(w, http.StatusBadRequest, "request body is not valid UTF-8")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail})
}

// SubmitBody is a document submission.
type SubmitBody struct {
	Content   string            `json:"content" minLength:"1" doc:"The document text (UTF-8)."`
	Metadata  map[string]string `json:"metadata,omitempty" doc:"Free-form string metadata kept with the job."`
	DocID     string            `json:"doc_id,omitempty" maxLength:"128" pattern:"^[A-Za-z0-9][A-Za-z0-9_.:-]*$" doc:"Your id for the document; derived from the content when omitted."`
	Namespace string            `json:"namespace,omitempty" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace (tenant or collection); default \"default\"."`
	Force     bool              `json:"force,omitempty" doc:"Re-ingest even if the same content was already ingested in the namespace."`
}

// SubmitReply answers a submission.
type SubmitReply struct {
	JobID         string `json:"job_id"`
	DocID         string `json:"doc_id"`
	Namespace     string `json:"namespace"`
	Status        string `json:"status" enum:"pending,duplicate"`
	Duplicate     bool   `json:"duplicate"`
	ExistingJobID string `json:"existing_job_id,omitempty" doc:"The earlier job with the same content, when already known."`
}

// JobView is a job's status.
type JobView struct {
	JobID         string            `json:"job_id"`
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	Status        string            `json:"status" enum:"pending,processing,completed,duplicate,failed"`
	Progress      jobstate.Progress `json:"progress"`
	Duplicate     bool              `json:"duplicate"`
	ExistingJobID string            `json:"existing_job_id,omitempty"`
	Extractor     string            `json:"extractor,omitempty"`
	Usage         events.Usage      `json:"usage" doc:"LLM calls, cache hits, tokens and cost so far."`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	Error         string            `json:"error,omitempty"`
}

// QueryBody is a question.
type QueryBody struct {
	Question     string `json:"question" minLength:"1" maxLength:"4000"`
	Mode         string `json:"mode,omitempty" enum:"local,global,naive" default:"local" doc:"local: entities, their relations, sources and community reports; global: map-reduce over community reports; naive: chunk vectors."`
	Namespace    string `json:"namespace,omitempty" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$"`
	TopK         int    `json:"top_k,omitempty" minimum:"0" maximum:"1000" doc:"Entities (local, default 60) or chunks (naive, default 20) retrieved."`
	ResponseType string `json:"response_type,omitempty" maxLength:"200" doc:"The answer's form, e.g. \"Single Paragraph\" (default \"Multiple Paragraphs\")."`
	OnlyContext  bool   `json:"only_context,omitempty" doc:"Return the assembled context without calling the LLM."`
	Level        *int   `json:"level,omitempty" minimum:"0" maximum:"16" doc:"Deepest community level used (default 2)."`
	NoCache      bool   `json:"no_cache,omitempty" doc:"Bypass the response cache."`

	MaxTokensTextUnit        int `json:"max_tokens_text_unit,omitempty" minimum:"0" maximum:"1000000"`
	MaxTokensLocalContext    int `json:"max_tokens_local_context,omitempty" minimum:"0" maximum:"1000000"`
	MaxTokensCommunityReport int `json:"max_tokens_community_report,omitempty" minimum:"0" maximum:"1000000"`
	GlobalMaxTokensReport    int `json:"global_max_tokens_report,omitempty" minimum:"0" maximum:"1000000"`
	NaiveMaxTokens           int `json:"naive_max_tokens,omitempty" minimum:"0" maximum:"1000000"`
}

// QueryReply is an answer.
type QueryReply struct {
	Answer     string             `json:"answer"`
	Mode       string             `json:"mode"`
	LatencyMS  float64            `json:"latency_ms"`
	Answerer   string             `json:"answerer"`
	Model      string             `json:"model,omitempty"`
	Context    string             `json:"context,omitempty"`
	Cached     bool               `json:"cached"`
	Usage      *events.QueryUsage `json:"usage,omitempty"`
	References events.References  `json:"references"`
}

// BackendHealth is one backend's health.
type BackendHealth struct {
	Status    string  `json:"status" enum:"healthy,unhealthy"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// HealthReply is the service health.
type HealthReply struct {
	Status   string                   `json:"status" enum:"healthy,degraded,unhealthy"`
	Backends map[string]BackendHealth `json:"backends"`
}

func (s *Server) routes() {
	huma.Register(s.api, huma.Operation{
		OperationID: "submit-document", Method: http.MethodPost, Path: "/api/v1/documents", Tags: []string{"documents"},
		Summary: "Submit a document", DefaultStatus: http.StatusAccepted, MaxBodyBytes: humaBodyLimit(s.cfg.MaxBodyBytes),
	}, func(ctx context.Context, in *struct{ Body SubmitBody }) (*struct{ Body SubmitReply }, error) {
		r, err := s.submit(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &struct{ Body SubmitReply }{r}, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "get-job", Method: http.MethodGet, Path: "/api/v1/jobs/{id}", Tags: []string{"jobs"}, Summary: "Get a job's status",
	}, func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"128"`
	}) (*struct{ Body JobView }, error) {
		v, err := s.job(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body JobView }{v}, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "query", Method: http.MethodPost, Path: "/api/v1/query", Tags: []string{"query"},
		Summary: "Ask a question (local, global or naive mode)", MaxBodyBytes: humaBodyLimit(64 << 10),
	}, func(ctx context.Context, in *struct{ Body QueryBody }) (*struct{ Body QueryReply }, error) {
		r, err := s.query(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &struct{ Body QueryReply }{r}, nil
	})
	s.streamRoutes()
	huma.Register(s.api, huma.Operation{
		OperationID: "health-live", Method: http.MethodGet, Path: "/api/v1/health/live", Tags: []string{"health"},
		Summary: "Liveness: the process serves requests",
	}, func(context.Context, *struct{}) (*struct{ Body HealthReply }, error) {
		return &struct{ Body HealthReply }{HealthReply{Status: "healthy", Backends: map[string]BackendHealth{}}}, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "health-ready", Method: http.MethodGet, Path: "/api/v1/health/ready", Tags: []string{"health"},
		Summary: "Readiness: every backend answers (503 otherwise)",
	}, func(ctx context.Context, _ *struct{}) (*struct {
		Status int
		Body   HealthReply
	}, error) {
		h := s.health(ctx)
		status := http.StatusOK
		if h.Status != "healthy" {
			status = http.StatusServiceUnavailable
		}
		return &struct {
			Status int
			Body   HealthReply
		}{status, h}, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "health", Method: http.MethodGet, Path: "/api/v1/health", Tags: []string{"health"}, Summary: "Health of the edge and its backends",
	}, func(ctx context.Context, _ *struct{}) (*struct {
		Status int
		Body   HealthReply
	}, error) {
		h := s.health(ctx)
		status := http.StatusOK
		if h.Status == "unhealthy" {
			status = http.StatusServiceUnavailable
		}
		return &struct {
			Status int
			Body   HealthReply
		}{status, h}, nil
	})
}

// humaBodyLimit converts "at most n bytes" into huma's MaxBodyBytes, which
// rejects a body of exactly MaxBodyBytes.
func humaBodyLimit(n int64) int64 { return n + 1 }

func newJobID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "job_" + hex.EncodeToString(b[:])
}

func (s *Server) submit(ctx context.Context, in SubmitBody) (SubmitReply, error) {
	if strings.TrimSpace(in.Content) == "" {
		return SubmitReply{}, huma.Error422UnprocessableEntity("content is empty", &huma.ErrorDetail{Location: "body.content", Message: "must contain text"})
	}
	ns := in.Namespace
	if ns == "" {
		ns = events.DefaultNamespace
	}
	hash := events.ContentSHA256(in.Content)
	docID := in.DocID
	if docID == "" {
		docID = "doc_" + hash[:24]
	}
	jobID := newJobID()
	ref := "job/" + jobID
	if err := s.deps.Documents.Put(ctx, ref, in.Content); err != nil {
		s.deps.Logger.ErrorContext(ctx, "store document text", "err", err, "job_id", jobID)
		return SubmitReply{}, huma.Error503ServiceUnavailable("document store unavailable, retry later")
	}
	reply := SubmitReply{JobID: jobID, DocID: docID, Namespace: ns, Status: string(jobstate.StatusPending)}
	// Tell the client at once when the content is already claimed; dedup
	// still decides (and records the job as duplicate) from the event.
	if raw, _, err := s.deps.Claims.Get(ctx, jobstate.ClaimKey(ns, hash)); err == nil && !in.Force {
		var c jobstate.Claim
		if json.Unmarshal(raw, &c) == nil && c.JobID != "" {
			reply.Duplicate, reply.ExistingJobID, reply.Status = true, c.JobID, string(jobstate.StatusDuplicate)
		}
	}
	e := events.New(events.DerivedID(jobID, string(events.TypeDocumentSubmitted)), Source, events.DocumentSubmitted{
		JobRef:     events.JobRef{JobID: jobID, DocID: docID, Namespace: ns},
		ContentRef: ref, ContentSHA256: hash, ContentBytes: len(in.Content), Metadata: in.Metadata,
		ClientID: "", Force: in.Force, SubmittedAt: s.now().UTC(),
	}, s.now())
	// The 202 goes out only after the stream has stored the event, so an
	// acknowledged submission survives a restart of any process.
	if err := bus.Publish(ctx, s.deps.Publisher, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish document.submitted", "err", err, "job_id", jobID)
		return SubmitReply{}, huma.Error503ServiceUnavailable("event bus unavailable, retry later")
	}
	s.deps.Logger.InfoContext(ctx, "document submitted", "job_id", jobID, "doc_id", docID, "namespace", ns, "bytes", len(in.Content))
	return reply, nil
}

func (s *Server) job(ctx context.Context, id string) (JobView, error) {
	notFound := huma.Error404NotFound(fmt.Sprintf("no job %q (a job just submitted appears within moments)", id))
	// An id no job can have is not looked up: as a KV key it could name
	// another key or a wildcard, and the store rejects it with an error that
	// is not "not found".
	if !validJobID(id) {
		return JobView{}, notFound
	}
	raw, _, err := s.deps.Jobs.Get(ctx, jobstate.JobKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return JobView{}, notFound
	}
	if err != nil {
		return JobView{}, huma.Error503ServiceUnavailable("job store unavailable, retry later")
	}
	var j jobstate.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return JobView{}, huma.Error503ServiceUnavailable("job record unreadable")
	}
	return JobView{JobID: j.JobID, DocID: j.DocID, Namespace: j.Namespace, Status: string(j.Status), Progress: j.Progress(),
		Duplicate: j.Status == jobstate.StatusDuplicate, ExistingJobID: j.ExistingJobID, Extractor: j.Extractor, Usage: j.Usage,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, Error: j.Error}, nil
}

// validJobID reports whether id matches events.IDPattern and length, as every
// job id does.
func validJobID(id string) bool {
	if id == "" || len(id) > events.MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func (s *Server) query(ctx context.Context, in QueryBody) (QueryReply, error) {
	start := time.Now()
	if strings.TrimSpace(in.Question) == "" {
		return QueryReply{}, huma.Error422UnprocessableEntity("question is empty")
	}
	if in.Namespace == "" {
		in.Namespace = events.DefaultNamespace
	}
	data, err := encodeQuery(in)
	if err != nil {
		return QueryReply{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	resp, err := s.deps.Query.RequestMsgWithContext(qctx, &nats.Msg{Subject: events.QuerySubject, Data: data})
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return QueryReply{}, huma.Error504GatewayTimeout("query timed out")
	case errors.Is(err, nats.ErrNoResponders):
		return QueryReply{}, huma.Error503ServiceUnavailable("query service unavailable")
	case err != nil:
		return QueryReply{}, huma.Error503ServiceUnavailable("query service unreachable")
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		status, convErr := strconv.Atoi(code)
		if convErr != nil || status < 400 || status > 599 {
			status = http.StatusBadGateway
		}
		return QueryReply{}, huma.NewError(status, resp.Header.Get(micro.ErrorHeader))
	}
	var out events.QueryResponse
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return QueryReply{}, huma.Error502BadGateway("query service sent an unreadable answer")
	}
	return QueryReply{Answer: out.Answer, Mode: out.Mode, Answerer: out.Answerer, Model: out.Model, Context: out.Context,
		Cached: out.Cached, Usage: out.Usage, References: out.References,
		LatencyMS: float64(time.Since(start).Microseconds()) / 1000}, nil
}

// encodeQuery is the query service's request for in.
func encodeQuery(in QueryBody) ([]byte, error) {
	data, err := json.Marshal(events.QueryRequest{Question: in.Question, Mode: in.Mode, Namespace: in.Namespace, TopK: in.TopK,
		ResponseType: in.ResponseType, OnlyContext: in.OnlyContext, Level: in.Level, NoCache: in.NoCache,
		MaxTokensTextUnit: in.MaxTokensTextUnit, MaxTokensLocalContext: in.MaxTokensLocalContext,
		MaxTokensCommunityReport: in.MaxTokensCommunityReport, GlobalMaxTokensReport: in.GlobalMaxTokensReport,
		NaiveMaxTokens: in.NaiveMaxTokens})
	if err != nil {
		return nil, fmt.Errorf("encode query: %w", err)
	}
	return data, nil
}

func (s *Server) health(ctx context.Context) HealthReply {
	h := HealthReply{Status: "healthy", Backends: map[string]BackendHealth{}}
	unhealthy := 0
	for _, c := range s.deps.Health {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := c.Check(cctx)
		cancel()
		b := BackendHealth{Status: "healthy", LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			b.Status, b.Error = "unhealthy", err.Error()
			unhealthy++
		}
		h.Backends[c.Name] = b
	}
	switch {
	case unhealthy == len(s.deps.Health) && unhealthy > 0:
		h.Status = "unhealthy"
	case unhealthy > 0:
		h.Status = "degraded"
	}
	return h
}
