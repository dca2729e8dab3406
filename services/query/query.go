// Package query is the query service: it answers questions over NATS (a
// micro service with a request/reply endpoint on events.QuerySubject and a
// streaming one on events.QueryStreamSubject) in GraphRAG's three modes,
// following nano-graphrag's query operators:
//
//   - local: entity vectors → the top entities, their relations, the source
//     chunks and the reports of the communities holding them, packed under
//     token budgets into one context for the LLM;
//   - global: the community reports up to a level, map-reduced: one LLM call
//     per batch of reports rates key points, one more writes the answer
//     from the best points;
//   - naive: chunk vectors → the top chunks as the context.
//
// Without an LLM the answer is extractive: the sentences of the retrieved
// context that best match the question (local, naive) or the best-rated
// community reports (global). Answers can be cached per graph generation.
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// Vector kinds searched (written by the vector-indexer).
const (
	KindChunk  = "chunk"
	KindEntity = "entity"
)

// Embedder embeds the question; it must be the indexer's model.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Searcher searches vectors.
type Searcher interface {
	Search(ctx context.Context, q vector.Query) ([]vector.Hit, error)
}

// Graph is what the service needs of the graph store (a graph.Store):
// entities, relations and chunks for local and naive queries, communities
// for global ones and the local reports, generations for the cache, and
// search and counts for graph exploration.
type Graph interface {
	Entities(ctx context.Context, ns string, keys []string) ([]graph.Entity, error)
	// RelationsOf returns the relations touching any of keys; all of them
	// when limit <= 0.
	RelationsOf(ctx context.Context, ns string, keys []string, limit int) ([]graph.Relation, error)
	Chunks(ctx context.Context, ns string, ids []string) ([]graph.Chunk, error)
	// TopRelations returns the best limit relations touching any of keys
	// by rank (the sum of both endpoints' degrees), then weight, then
	// (Source, Target), with their ranks.
	TopRelations(ctx context.Context, ns string, keys []string, limit int) ([]graph.RankedEdge, error)
	// RelationsBetween returns the relations between pairs of keys.
	RelationsBetween(ctx context.Context, ns string, pairs [][2]string) ([]graph.Relation, error)
	// Degrees returns the number of relations of each key that has any,
	// kept by the store rather than counted from the relations.
	Degrees(ctx context.Context, ns string, keys []string) (map[string]int, error)
	// ChunkEntities returns the keys of the entities each chunk mentions.
	ChunkEntities(ctx context.Context, ns string, ids []string) (map[string][]string, error)
	// Communities returns the communities of levels 0 to maxLevel, with
	// their reports (empty until written).
	Communities(ctx context.Context, ns string, maxLevel int) ([]graph.Community, error)
	// CommunitiesOf returns those of the communities of levels 0 to
	// maxLevel that have any of keys as a member, with how many of keys
	// are members, without their member lists and their reports' bodies.
	CommunitiesOf(ctx context.Context, ns string, keys []string, maxLevel int) ([]graph.CommunityMatch, error)
	// CommunitiesByID returns the communities of the level with the ids,
	// with their reports, sorted by id.
	CommunitiesByID(ctx context.Context, ns string, level int, ids []string) ([]graph.Community, error)
	// TopCommunities returns at most limit of the communities of levels 0
	// to maxLevel that have a report, best rated, then largest, then by id.
	// Their member lists are left out, their sizes are kept.
	TopCommunities(ctx context.Context, ns string, maxLevel, limit int) ([]graph.CommunityMatch, error)
	// Generation is a number that changes whenever the namespace's graph
	// changes; cached answers are keyed by it.
	Generation(ctx context.Context, ns string) (uint64, error)
	// CommunitiesBuilt is the generation the communities were built from
	// and when: the reports are written after the merges they describe,
	// which need not change the graph's generation, so cached answers are
	// keyed by it too, and /stats says when communities are stale.
	CommunitiesBuilt(ctx context.Context, ns string) (graph.CommunitiesBuild, error)
	// SearchEntities finds entities by name, for the graph explorer.
	SearchEntities(ctx context.Context, ns, query string, limit int) ([]graph.Entity, error)
	// Counts counts a namespace's documents, chunks, entities, relations
	// and communities.
	Counts(ctx context.Context, ns string) (graph.Counts, error)
}

// Chat is the LLM (an *llm.Chat).
type Chat interface {
	Complete(ctx context.Context, req llm.ChatRequest) (llm.ChatResponse, error)
	Stream(ctx context.Context, req llm.ChatRequest, onDelta func(string) error) (llm.ChatResponse, error)
	Model() string
}

// Cache stores answers (a natskv.Store). Get returns an error wrapping
// kv.ErrNotFound for a missing key.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// StreamEvent is one event of a streamed answer.
type StreamEvent = events.QueryStreamEvent

// Defaults of Config, nano-graphrag's QueryParam defaults where it has one.
const (
	DefaultConcurrency              = 16
	DefaultTimeout                  = 30 * time.Second
	DefaultLLMTimeout               = 2 * time.Minute
	DefaultEntityTopK               = 60
	DefaultChunkTopK                = 20
	DefaultMaxTopK                  = 1000
	DefaultResponseType             = "Multiple Paragraphs"
	DefaultMaxTokensTextUnit        = 4000
	DefaultMaxTokensLocalContext    = 4800
	DefaultMaxTokensCommunityReport = 3200
	DefaultGlobalMaxTokensReport    = 16384
	DefaultNaiveMaxTokens           = 12000
	DefaultLevel                    = 2
	DefaultGlobalMaxCommunities     = 512
	DefaultMapConcurrency           = 8
)

// Config of the service; zero fields take the defaults above. The request
// parameters of the same names override the query defaults per request.
type Config struct {
	// Concurrency bounds the requests served at once, both endpoints
	// together.
	Concurrency int
	// Timeout bounds one request (DefaultTimeout, or DefaultLLMTimeout
	// with an LLM).
	Timeout time.Duration
	// EntityTopK is the local default of top_k, ChunkTopK the naive one;
	// MaxTopK the largest top_k a request may ask for.
	EntityTopK int
	ChunkTopK  int
	MaxTopK    int
	// ResponseType is the default response_type.
	ResponseType string
	// Token budgets, in estimated tokens (ceil(bytes/4)).
	MaxTokensTextUnit        int
	MaxTokensLocalContext    int
	MaxTokensCommunityReport int
	GlobalMaxTokensReport    int
	NaiveMaxTokens           int
	// Level is the default community level. Zero means DefaultLevel, so a
	// service-wide default of level 0 cannot be configured; a request can
	// ask for it.
	Level int
	// GlobalMaxCommunities bounds the reports a global query maps over,
	// the best rated first (nano-graphrag's global_max_consider_community).
	GlobalMaxCommunities int
	// MapConcurrency bounds the map calls of one global query in flight.
	MapConcurrency int
	// Prices turn the LLM's token usage into dollars in the answer's usage.
	Prices llm.PriceTable
	// DisableCache switches the response cache off (KG_QUERY_CACHE=false).
	DisableCache bool
}

func (c *Config) defaults(withLLM bool) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
		if withLLM {
			c.Timeout = DefaultLLMTimeout
		}
	}
	def(&c.EntityTopK, DefaultEntityTopK)
	def(&c.ChunkTopK, DefaultChunkTopK)
	def(&c.MaxTopK, DefaultMaxTopK)
	if c.ResponseType == "" {
		c.ResponseType = DefaultResponseType
	}
	def(&c.MaxTokensTextUnit, DefaultMaxTokensTextUnit)
	def(&c.MaxTokensLocalContext, DefaultMaxTokensLocalContext)
	def(&c.MaxTokensCommunityReport, DefaultMaxTokensCommunityReport)
	def(&c.GlobalMaxTokensReport, DefaultGlobalMaxTokensReport)
	def(&c.NaiveMaxTokens, DefaultNaiveMaxTokens)
	def(&c.Level, DefaultLevel)
	def(&c.GlobalMaxCommunities, DefaultGlobalMaxCommunities)
	def(&c.MapConcurrency, DefaultMapConcurrency)
}

// Option adds an optional collaborator to the service.
type Option func(*Service)

// WithChat makes an LLM write the answers; without it they are extractive.
func WithChat(c Chat) Option { return func(s *Service) { s.chat = c } }

// WithCache caches answers.
func WithCache(c Cache) Option { return func(s *Service) { s.cache = c } }

// Service is the query service.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	embed   Embedder
	vectors Searcher
	graph   Graph
	chat    Chat
	cache   Cache
	checks  []StoreCheck
}

// New builds the service.
func New(cfg Config, nc *nats.Conn, log *slog.Logger, e Embedder, v Searcher, g Graph, opts ...Option) *Service {
	s := &Service{nc: nc, log: log, embed: e, vectors: v, graph: g}
	for _, o := range opts {
		o(s)
	}
	cfg.defaults(s.chat != nil)
	s.cfg = cfg
	return s
}

// Error is a query failure with the HTTP status the edge should answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// publicError turns any failure into the *Error a client is told about;
// internal details of other failures stay in the log.
func (s *Service) publicError(err error, mode string) *Error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	s.log.Error("query failed", "err", err, "mode", mode)
	var apiErr *llm.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Msg: "query timed out"}
	case errors.As(err, &apiErr):
		return &Error{Status: http.StatusBadGateway, Msg: "the LLM provider failed to answer"}
	default:
		return &Error{Status: http.StatusServiceUnavailable, Msg: "query backend unavailable"}
	}
}

// Answer answers one request.
func (s *Service) Answer(ctx context.Context, req events.QueryRequest) (events.QueryResponse, error) {
	return s.answer(ctx, req, nil)
}

// AnswerStream answers one request as a stream of events: one references
// event, the answer's deltas as the LLM writes them (the extractive or
// fixed answer as one delta), and a done event with usage and latency; or,
// after any of those, an error event. It returns the failure the error
// event reports, or the first error of emit, after which it emits nothing.
func (s *Service) AnswerStream(ctx context.Context, req events.QueryRequest, emit func(StreamEvent) error) error {
	guarded := func(e StreamEvent) error {
		if err := emit(e); err != nil {
			return &emitError{err}
		}
		return nil
	}
	res, err := s.answer(ctx, req, guarded)
	if err != nil {
		var ee *emitError
		if errors.As(err, &ee) {
			return fmt.Errorf("emit %w", ee)
		}
		qe := s.publicError(err, req.Mode)
		if emitErr := emit(StreamEvent{Type: events.StreamError, Error: &events.QueryError{Status: qe.Status, Message: qe.Msg}}); emitErr != nil {
			return errors.Join(err, fmt.Errorf("emit error event: %w", emitErr))
		}
		return err
	}
	if err := emit(StreamEvent{Type: events.StreamDone, Usage: res.Usage, LatencyMS: res.LatencyMS}); err != nil {
		return fmt.Errorf("emit done event: %w", err)
	}
	return nil
}

// emitError marks a failure of the stream's consumer, which is not reported
// to the consumer again.
type emitError struct{ err error }

func (e *emitError) Error() string { return "stream event: " + e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// plan is a retrieved context and how to answer from it.
type plan struct {
	refs     events.References
	context  string
	answerer string
	// answer is the whole answer when final is nil: extractive, or a
	// fixed reply because nothing was retrieved.
	answer string
	// final returns the messages of the LLM call that writes the answer,
	// or, when messages is nil, the answer itself (a global query whose
	// map step found nothing). Global queries run their map step here.
	final func(ctx context.Context, u *usage) (messages []llm.Message, answer string, err error)
	// stage names the final call in the LLM's stats.
	stage string
}

func emptyReferences() events.References {
	return events.References{Entities: []events.EntityRef{}, Relations: []events.RelationRef{},
		Chunks: []events.ChunkRef{}, Reports: []events.ReportRef{}}
}

// nothingFound answers when retrieval finds no context: nano-graphrag's
// fail response when an LLM would have answered.
func (s *Service) nothingFound(r request) plan {
	p := plan{refs: emptyReferences(), answerer: events.AnswererNoContext, answer: prompts.FailResponse}
	if s.chat == nil {
		p.answer = fmt.Sprintf("Nothing indexed in namespace %q matches the question.", r.namespace)
	}
	return p
}

func (s *Service) answer(ctx context.Context, req events.QueryRequest, emit func(StreamEvent) error) (events.QueryResponse, error) {
	start := time.Now()
	r, err := s.resolve(req)
	if err != nil {
		return events.QueryResponse{}, err
	}
	key := s.cacheKey(ctx, r)
	if res, ok := s.cached(ctx, key); ok {
		res.Cached = true
		res.Usage = &events.QueryUsage{}
		if emit != nil {
			if err := emitReferences(emit, res); err != nil {
				return events.QueryResponse{}, err
			}
			if err := emitDelta(emit, res.Answer); err != nil {
				return events.QueryResponse{}, err
			}
		}
		res.LatencyMS = millis(time.Since(start))
		return res, nil
	}

	p, err := s.plan(ctx, r)
	if err != nil {
		return events.QueryResponse{}, err
	}
	res := events.QueryResponse{Mode: r.mode, References: p.refs, Answerer: p.answerer}
	if r.OnlyContext {
		res.Answerer = events.AnswererContextOnly
		res.Context = p.context
	} else if p.answerer == events.AnswererLLM {
		res.Model = s.chat.Model()
	}
	if emit != nil {
		if err := emitReferences(emit, res); err != nil {
			return events.QueryResponse{}, err
		}
	}
	var u usage
	if !r.OnlyContext {
		if res.Answer, err = s.write(ctx, p, &u, emit); err != nil {
			return events.QueryResponse{}, err
		}
	}
	s.store(ctx, key, res)
	res.Usage = u.snapshot()
	res.LatencyMS = millis(time.Since(start))
	return res, nil
}

func (s *Service) plan(ctx context.Context, r request) (plan, error) {
	switch r.mode {
	case events.ModeLocal:
		return s.planLocal(ctx, r)
	case events.ModeGlobal:
		return s.planGlobal(ctx, r)
	default:
		return s.planNaive(ctx, r)
	}
}

// write produces the answer of p, streaming it to emit when emit is set.
func (s *Service) write(ctx context.Context, p plan, u *usage, emit func(StreamEvent) error) (string, error) {
	if p.final == nil {
		return p.answer, emitDelta(emit, p.answer)
	}
	messages, answer, err := p.final(ctx, u)
	if err != nil {
		return "", err
	}
	if messages == nil {
		return answer, emitDelta(emit, answer)
	}
	req := llm.ChatRequest{Messages: messages, Stage: p.stage}
	var resp llm.ChatResponse
	if emit == nil {
		resp, err = s.chat.Complete(ctx, req)
	} else {
		resp, err = s.chat.Stream(ctx, req, func(d string) error { return emitDelta(emit, d) })
	}
	if err != nil {
		return "", fmt.Errorf("write the answer: %w", err)
	}
	u.add(resp, s.cost(resp))
	return resp.Content, nil
}

func emitReferences(emit func(StreamEvent) error, res events.QueryResponse) error {
	refs := res.References
	return emit(StreamEvent{Type: events.StreamReferences, Mode: res.Mode, Answerer: res.Answerer, Model: res.Model,
		Cached: res.Cached, References: &refs, Context: res.Context})
}

// emitDelta emits a non-empty piece of the answer; it does nothing without
// a stream.
func emitDelta(emit func(StreamEvent) error, delta string) error {
	if emit == nil || delta == "" {
		return nil
	}
	return emit(StreamEvent{Type: events.StreamDelta, Delta: delta})
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cost prices a call by the model the server reported, or the configured
// one when the table does not know the reported name.
func (s *Service) cost(resp llm.ChatResponse) float64 {
	if _, ok := s.cfg.Prices.Lookup(resp.Model); ok {
		return s.cfg.Prices.Cost(resp.Model, resp.Usage)
	}
	return s.cfg.Prices.Cost(s.chat.Model(), resp.Usage)
}

// usage adds up the LLM calls of one answer; the map calls of a global
// query add to it concurrently.
type usage struct {
	mu sync.Mutex
	u  events.QueryUsage
}

func (a *usage) add(resp llm.ChatResponse, cost float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.u.Calls++
	a.u.PromptTokens += resp.Usage.PromptTokens
	a.u.CompletionTokens += resp.Usage.CompletionTokens
	a.u.CostUSD += cost
	a.u.Estimated = a.u.Estimated || resp.Usage.Estimated
}

func (a *usage) snapshot() *events.QueryUsage {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.u
	return &u
}
