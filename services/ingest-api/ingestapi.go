// Package ingestapi is the REST edge: it validates submissions, stores the
// text in the object store, publishes document.submitted and answers 202
// with a job id; it reads job status from the projection's records and asks
// the query service over NATS request/reply.
package ingestapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/chunk"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/ratelimit"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/ingest-api"

// Documents stores submitted document text.
type Documents interface {
	Put(ctx context.Context, name, text string) error
	Get(ctx context.Context, name string) (string, error)
}

// Records reads KV records: job and document records, dedup claims.
type Records interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Keys(ctx context.Context, prefix string) ([]string, error)
	KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error)
}

// RateLimiter decides whether a key may make another request.
type RateLimiter interface {
	Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error)
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
	// MaxUploadBytes bounds a multipart upload (413 beyond it).
	MaxUploadBytes int64
	// RequestTimeout bounds every request but the streams (503 beyond it).
	RequestTimeout time.Duration
	// Auth: API keys, roles, namespaces and rate limits.
	Auth AuthConfig
	// CORSOrigins are the origins browsers may call the API from ("*" for
	// any); none means no CORS headers at all.
	CORSOrigins []string
	// ApprovalNamespaces require approval of every submission.
	ApprovalNamespaces []string
	// Estimate prices submissions that wait for approval.
	Estimate EstimateConfig
	// Chunks are the extractor's chunk sizes, which Wire builds
	// Estimate.ChunkTokens from (zero: chunk.DefaultConfig).
	Chunks chunk.Config
	// Info is reported by GET /api/v1/info.
	Info ServiceInfo
	// AnswerCacheTTL bounds how long the edge serves an answer from its
	// own cache (default 10s; negative: no edge cache). Changes to the
	// graph drop answers sooner (WatchGraphChanges).
	AnswerCacheTTL time.Duration
	// AnswerCacheEntries bounds the edge's answer cache (default 4096).
	AnswerCacheEntries int
	// HealthCacheTTL is how long a health verdict is reused (default 1s),
	// so probes and load balancers cannot load the backends.
	HealthCacheTTL time.Duration
	// JobAppearWait is how long cancel and approve wait for the record of
	// a job submitted a moment ago (default 3s) before answering 404.
	JobAppearWait time.Duration
}

// Validate checks the configuration; New expects it validated.
func (c *Config) Validate() error {
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	for _, ns := range c.ApprovalNamespaces {
		if !validName(ns) {
			return fmt.Errorf("approval namespace %q is invalid", ns)
		}
	}
	return c.Estimate.Validate()
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
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 16 << 20
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	c.Estimate.defaults()
	if c.AnswerCacheTTL == 0 {
		c.AnswerCacheTTL = 10 * time.Second
	}
	if c.AnswerCacheEntries == 0 {
		c.AnswerCacheEntries = 4096
	}
	if c.HealthCacheTTL == 0 {
		c.HealthCacheTTL = time.Second
	}
	if c.JobAppearWait == 0 {
		c.JobAppearWait = 3 * time.Second
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
	// RemoteHealth asks the services that own the other backends (the
	// graph and vector stores of a services deployment) for their
	// verdicts; nil when the edge checks every backend itself (kg serve).
	RemoteHealth RemoteHealth
	Logger       *slog.Logger
	// Limiter applies per-key rate limits; nil means none.
	Limiter RateLimiter
	// DeadLetters lists and replays dead letters; nil makes those
	// endpoints answer 503.
	DeadLetters DeadLetters
	// Metrics is where the edge registers its metrics and what GET
	// /api/v1/metrics serves; nil gives the edge a registry of its own.
	Metrics *prometheus.Registry
}

// Server is the REST edge.
type Server struct {
	cfg  Config
	deps Deps
	now  func() time.Time
	api  huma.API
	mux  *chi.Mux
	// records reads the job and document records in deps.Jobs.
	records *jobstate.Repository

	metrics      *httpMetrics
	queryCounter *prometheus.CounterVec
	answers      *answerCache
	recent       *recentJobs

	healthMu   sync.Mutex
	healthLast HealthReply
	healthAt   time.Time
}

// New builds the edge and its routes.
func New(cfg Config, deps Deps) *Server {
	cfg.defaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Logger = slog.New(requestIDHandler{deps.Logger.Handler()})
	if deps.Metrics == nil {
		deps.Metrics = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, now: time.Now, mux: chi.NewMux(), records: jobstate.NewRepository(deps.Jobs)}
	s.metrics = newHTTPMetrics(deps.Metrics)
	s.answers = newAnswerCache(cfg.AnswerCacheEntries, cfg.AnswerCacheTTL)
	s.recent = newRecentJobs(10_000, time.Now)
	s.queryCounter = s.queryRequests()
	s.mux.Use(middleware.RequestID, requestIDHeader, s.accessLog, s.cors(), s.recoverer, s.authenticate, s.guardBody, s.requestTimeout)
	s.mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	s.mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
	hc := huma.DefaultConfig("kgraph API", cmp.Or(cfg.Info.Version, "dev"))
	hc.CreateHooks = nil
	hc.Info.Description = "Submit documents, follow ingestion jobs and query the knowledge graph. Every endpoint but the probes needs an API key (X-API-Key or Authorization: Bearer) whose role and namespaces allow the call."
	hc.Transformers = append(hc.Transformers, problemTransformer)
	hc.Formats = map[string]huma.Format{"application/json": preEncodedJSON, "json": preEncodedJSON}
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"apiKey": {Type: "apiKey", In: "header", Name: "X-API-Key"},
		"bearer": {Type: "http", Scheme: "bearer"},
	}
	s.api = humachi.New(s.mux, hc)
	s.api.UseMiddleware(s.requireDeclaredRole)
	s.routes()
	s.metricsRoutes()
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
		limit := s.cfg.MaxBodyBytes
		if r.URL.Path == uploadPath {
			limit = s.cfg.MaxUploadBytes
		}
		if r.ContentLength > limit {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "could not read the request body")
			return
		}
		if int64(len(body)) > limit {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
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
	_ = json.NewEncoder(w).Encode(huma.ErrorModel{Type: ProblemType(status), Title: http.StatusText(status), Status: status, Detail: detail})
}

// JobView is a job's status.
type JobView struct {
	JobID         string            `json:"job_id"`
	Kind          string            `json:"kind" enum:"ingest,delete" doc:"ingest: a document's ingestion; delete: a document's deletion."`
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	ClientID      string            `json:"client_id,omitempty"`
	Status        string            `json:"status" enum:"pending,awaiting_approval,approved,processing,completed,duplicate,failed,cancelled,expired"`
	Progress      jobstate.Progress `json:"progress"`
	Duplicate     bool              `json:"duplicate"`
	ExistingJobID string            `json:"existing_job_id,omitempty"`
	Extractor     string            `json:"extractor,omitempty"`
	Usage         events.Usage      `json:"usage" doc:"LLM calls, cache hits, tokens and cost so far."`
	Estimate      *events.Estimate  `json:"estimate,omitempty" doc:"Cost estimate of a job that requires approval (no LLM call was made for it)."`
	Metadata      map[string]string `json:"metadata,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	FinishedAt    *time.Time        `json:"finished_at,omitempty"`
	AwaitingSince *time.Time        `json:"awaiting_since,omitempty"`
	ApprovedAt    *time.Time        `json:"approved_at,omitempty"`
	ApprovedBy    string            `json:"approved_by,omitempty"`
	CancelledBy   string            `json:"cancelled_by,omitempty"`
	Error         string            `json:"error,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// jobView is the API's view of a job record.
func jobView(j jobstate.Job) JobView {
	kind := j.Kind
	if kind == "" {
		kind = jobstate.KindIngest
	}
	return JobView{JobID: j.JobID, Kind: kind, DocID: j.DocID, Namespace: j.Namespace, ClientID: j.ClientID, Status: string(j.Status),
		Progress: j.Progress(), Duplicate: j.Status == jobstate.StatusDuplicate, ExistingJobID: j.ExistingJobID,
		Extractor: j.Extractor, Usage: j.Usage, Estimate: j.Estimate, Metadata: j.Metadata,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, FinishedAt: optTime(j.FinishedAt), AwaitingSince: optTime(j.AwaitingSince),
		ApprovedAt: optTime(j.ApprovedAt), ApprovedBy: j.ApprovedBy, CancelledBy: j.CancelledBy, Error: j.Error}
}

// preEncodedJSON is huma's JSON format, except that an answer from the
// edge's cache is written as the bytes it was stored as: encoding/json
// re-scans a Marshaler's output byte by byte, which cost more than all the
// rest of a cached query.
var preEncodedJSON = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		var r *QueryReply
		switch b := v.(type) {
		case QueryReply:
			r = &b
		case *QueryReply:
			r = b
		}
		if r != nil && r.encoded != nil {
			_, err := w.Write(r.encoded)
			return err
		}
		return huma.DefaultJSONFormat.Marshal(w, v)
	},
	Unmarshal: huma.DefaultJSONFormat.Unmarshal,
}

func (s *Server) routes() {
	s.documentRoutes()
	s.jobRoutes()
	s.adminRoutes()
	s.graphRoutes()
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "query", Method: http.MethodPost, Path: "/api/v1/query", Tags: []string{"query"},
		Summary: "Ask a question (local, global or naive mode)", MaxBodyBytes: humaBodyLimit(64 << 10),
	}, RoleRead), func(ctx context.Context, in *struct{ Body QueryBody }) (*struct{ Body QueryReply }, error) {
		if err := s.allowNamespace(ctx, nsOrDefault(in.Body.Namespace)); err != nil {
			return nil, err
		}
		r, err := s.query(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		s.observeQuery(r.Mode, r.Cached)
		return &struct{ Body QueryReply }{r}, nil
	})
	s.streamRoutes()
	huma.Register(s.api, withPublic(huma.Operation{
		OperationID: "health-live", Method: http.MethodGet, Path: "/api/v1/health/live", Tags: []string{"health"},
		Summary: "Liveness: the process serves requests",
	}), func(context.Context, *struct{}) (*struct{ Body HealthReply }, error) {
		return &struct{ Body HealthReply }{HealthReply{Status: "healthy", Backends: map[string]BackendHealth{}}}, nil
	})
	huma.Register(s.api, withPublic(huma.Operation{
		OperationID: "health-ready", Description: "Public, for probes: backend names and states, without error details (GET /api/v1/health has them).", Method: http.MethodGet, Path: "/api/v1/health/ready", Tags: []string{"health"},
		Summary: "Readiness: every backend answers (503 otherwise)",
	}), func(ctx context.Context, _ *struct{}) (*struct {
		Status int
		Body   HealthReply
	}, error) {
		h := s.health(ctx)
		status := http.StatusOK
		if h.Status != "healthy" {
			status = http.StatusServiceUnavailable
		}
		// Error texts can name internal hosts; only keys see them.
		public := HealthReply{Status: h.Status, Backends: make(map[string]BackendHealth, len(h.Backends))}
		for name, b := range h.Backends {
			b.Error = ""
			public.Backends[name] = b
		}
		return &struct {
			Status int
			Body   HealthReply
		}{status, public}, nil
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "health", Method: http.MethodGet, Path: "/api/v1/health", Tags: []string{"health"}, Summary: "Health of the edge and its backends",
	}, RoleRead), func(ctx context.Context, _ *struct{}) (*struct {
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

func (s *Server) job(ctx context.Context, id string) (JobView, error) {
	j, err := s.jobRecord(ctx, id)
	if err != nil {
		return JobView{}, err
	}
	return jobView(j), nil
}

// jobRecord reads a job the request may see: a job of a namespace the key
// may not access answers 404 like a missing one.
func (s *Server) jobRecord(ctx context.Context, id string) (jobstate.Job, error) {
	notFound := huma.Error404NotFound(fmt.Sprintf("no job %q (a job just submitted appears within moments)", id))
	// An id no job can have is not looked up: as a KV key it could name
	// another key or a wildcard, and the store rejects it with an error that
	// is not "not found".
	if !validJobID(id) {
		return jobstate.Job{}, notFound
	}
	j, _, err := s.readJob(ctx, id)
	if errors.Is(err, jobstate.ErrNotFound) {
		return jobstate.Job{}, notFound
	}
	if err != nil {
		return jobstate.Job{}, err
	}
	if !s.canSee(ctx, j.Namespace) {
		return jobstate.Job{}, notFound
	}
	return j, nil
}

// readJob reads a job record; jobstate.ErrNotFound passes through, other
// failures become 503s.
func (s *Server) readJob(ctx context.Context, id string) (jobstate.Job, uint64, error) {
	j, rev, err := s.records.Job(ctx, id)
	switch {
	case errors.Is(err, jobstate.ErrNotFound):
		return jobstate.Job{}, 0, err
	case errors.Is(err, jobstate.ErrCorrupt):
		s.deps.Logger.WarnContext(ctx, "read job", "err", err, "job_id", id)
		return jobstate.Job{}, 0, huma.Error503ServiceUnavailable("job record unreadable")
	case err != nil:
		s.deps.Logger.WarnContext(ctx, "read job", "err", err, "job_id", id)
		return jobstate.Job{}, 0, huma.Error503ServiceUnavailable("job store unavailable, retry later")
	}
	return j, rev, nil
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
