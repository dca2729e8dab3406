// Package query is the query service: it answers questions over NATS
// request/reply (a micro service on events.QuerySubject) in naive mode
// (chunk vectors) and local mode (entity vectors → entities, their relations
// and source chunks). Without an LLM the answer is extractive: the sentences
// of the retrieved context that best match the question.
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
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

// Graph reads the graph.
type Graph interface {
	Entities(ctx context.Context, ns string, keys []string) ([]graph.Entity, error)
	RelationsOf(ctx context.Context, ns string, keys []string, limit int) ([]graph.Relation, error)
	Chunks(ctx context.Context, ns string, ids []string) ([]graph.Chunk, error)
}

// Config of the service.
type Config struct {
	Concurrency   int
	Timeout       time.Duration
	ChunkTopK     int
	EntityTopK    int
	RelationLimit int
}

func (c *Config) defaults() {
	if c.Concurrency < 1 {
		c.Concurrency = 16
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.ChunkTopK <= 0 {
		c.ChunkTopK = 5
	}
	if c.EntityTopK <= 0 {
		c.EntityTopK = 10
	}
	if c.RelationLimit <= 0 {
		c.RelationLimit = 20
	}
}

// Service is the query service.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	embed   Embedder
	vectors Searcher
	graph   Graph
}

// New builds the service.
func New(cfg Config, nc *nats.Conn, log *slog.Logger, e Embedder, v Searcher, g Graph) *Service {
	cfg.defaults()
	return &Service{cfg: cfg, nc: nc, log: log, embed: e, vectors: v, graph: g}
}

// Error is a query failure with the HTTP status the edge should answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Run serves requests until ctx ends, then stops the micro service, which
// drains its subscription; requests in flight finish first.
func (s *Service) Run(ctx context.Context) error {
	slots := make(chan struct{}, s.cfg.Concurrency)
	// stopped closes once Run holds every slot for good. The draining
	// subscription may still deliver requests after that; they are refused
	// with a retryable 503 instead of blocking its goroutine forever and
	// leaving the caller without a reply.
	stopped := make(chan struct{})
	handlerCtx := context.WithoutCancel(ctx)
	svc, err := micro.AddService(s.nc, micro.Config{
		Name: "kgraph-query", Version: "0.1.0", Description: "kgraph local/global/naive queries",
		Endpoint: &micro.EndpointConfig{Subject: events.QuerySubject, Handler: micro.HandlerFunc(func(r micro.Request) {
			select {
			case slots <- struct{}{}:
			case <-stopped:
				s.replyError(r, &Error{Status: http.StatusServiceUnavailable, Msg: "query service is stopping, retry"})
				return
			}
			go func() {
				defer func() { <-slots }()
				rctx, cancel := context.WithTimeout(handlerCtx, s.cfg.Timeout)
				defer cancel()
				s.serve(rctx, r)
			}()
		})},
	})
	if err != nil {
		return fmt.Errorf("start query micro service: %w", err)
	}
	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		s.log.Warn("stop query service", "err", err)
	}
	for range s.cfg.Concurrency { // wait for the requests in flight
		slots <- struct{}{}
	}
	close(stopped)
	return nil
}

func (s *Service) serve(ctx context.Context, r micro.Request) {
	var req events.QueryRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		s.replyError(r, &Error{Status: http.StatusBadRequest, Msg: "query request is not valid JSON"})
		return
	}
	res, err := s.Answer(ctx, req)
	if err != nil {
		var qe *Error
		if !errors.As(err, &qe) {
			s.log.Error("query failed", "err", err, "mode", req.Mode)
			qe = &Error{Status: http.StatusServiceUnavailable, Msg: "query backend unavailable"}
			if errors.Is(err, context.DeadlineExceeded) {
				qe = &Error{Status: http.StatusGatewayTimeout, Msg: "query timed out"}
			}
		}
		s.replyError(r, qe)
		return
	}
	data, err := json.Marshal(res)
	if err != nil {
		s.log.Error("encode query answer", "err", err)
		s.replyError(r, &Error{Status: http.StatusInternalServerError, Msg: "query answer could not be encoded"})
		return
	}
	s.reply(r, &nats.Msg{Data: data})
}

// reply publishes m to r's reply subject. It does not use r's Respond or
// Error: those record the outcome in fields that micro's dispatcher reads as
// soon as the handler returns, a data race when the answer comes from
// another goroutine later.
func (s *Service) reply(r micro.Request, m *nats.Msg) {
	if m.Subject = r.Reply(); m.Subject == "" {
		return // published without a reply subject: nobody waits for an answer
	}
	if err := s.nc.PublishMsg(m); err != nil {
		s.log.Warn("send query reply", "err", err)
	}
}

// replyError answers with a NATS service error whose code is the HTTP status.
func (s *Service) replyError(r micro.Request, qe *Error) {
	s.reply(r, &nats.Msg{Header: nats.Header{
		micro.ErrorCodeHeader: []string{strconv.Itoa(qe.Status)},
		micro.ErrorHeader:     []string{qe.Msg},
	}})
}

// Answer answers one request.
func (s *Service) Answer(ctx context.Context, req events.QueryRequest) (events.QueryResponse, error) {
	if strings.TrimSpace(req.Question) == "" {
		return events.QueryResponse{}, &Error{Status: http.StatusBadRequest, Msg: "question must not be empty"}
	}
	if req.Namespace == "" {
		req.Namespace = events.DefaultNamespace
	}
	switch req.Mode {
	case events.ModeNaive:
		return s.naive(ctx, req)
	case events.ModeLocal:
		return s.local(ctx, req)
	case events.ModeGlobal:
		return events.QueryResponse{}, &Error{Status: http.StatusNotImplemented, Msg: "global mode needs community reports, which are not built yet"}
	default:
		return events.QueryResponse{}, &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("unknown mode %q (use local, global or naive)", req.Mode)}
	}
}

func (s *Service) embedQuestion(ctx context.Context, q string) ([]float32, error) {
	vecs, err := s.embed.Embed(ctx, []string{q})
	if err != nil {
		return nil, fmt.Errorf("embed question: %w", err)
	}
	return vecs[0], nil
}

func (s *Service) naive(ctx context.Context, req events.QueryRequest) (events.QueryResponse, error) {
	vec, err := s.embedQuestion(ctx, req.Question)
	if err != nil {
		return events.QueryResponse{}, err
	}
	topK := s.cfg.ChunkTopK
	if req.TopK > 0 {
		topK = req.TopK
	}
	hits, err := s.vectors.Search(ctx, vector.Query{Namespace: req.Namespace, Kind: KindChunk, Vector: vec, TopK: topK})
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("search chunks: %w", err)
	}
	ids := make([]string, len(hits))
	score := map[string]float32{}
	for i, h := range hits {
		ids[i] = h.ID
		score[h.ID] = h.Score
	}
	chunks, err := s.graph.Chunks(ctx, req.Namespace, ids)
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("read chunks: %w", err)
	}
	res := events.QueryResponse{Mode: req.Mode, Answerer: "extractive", References: events.References{
		Entities: []events.EntityRef{}, Relations: []events.RelationRef{}, Chunks: []events.ChunkRef{}}}
	texts := make([]string, 0, len(chunks))
	for _, c := range chunks {
		res.References.Chunks = append(res.References.Chunks, events.ChunkRef{ChunkID: c.ID, DocID: c.DocID, Index: c.Index, Score: score[c.ID]})
		texts = append(texts, c.Text)
	}
	res.Answer = extractiveAnswer(req.Question, req.Namespace, texts, nil)
	return res, nil
}

func (s *Service) local(ctx context.Context, req events.QueryRequest) (events.QueryResponse, error) {
	vec, err := s.embedQuestion(ctx, req.Question)
	if err != nil {
		return events.QueryResponse{}, err
	}
	topK := s.cfg.EntityTopK
	if req.TopK > 0 {
		topK = req.TopK
	}
	hits, err := s.vectors.Search(ctx, vector.Query{Namespace: req.Namespace, Kind: KindEntity, Vector: vec, TopK: topK})
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("search entities: %w", err)
	}
	keys := make([]string, len(hits))
	score := map[string]float32{}
	for i, h := range hits {
		keys[i] = h.ID
		score[h.ID] = h.Score
	}
	ents, err := s.graph.Entities(ctx, req.Namespace, keys)
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("read entities: %w", err)
	}
	rels, err := s.graph.RelationsOf(ctx, req.Namespace, keys, s.cfg.RelationLimit)
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("read relations: %w", err)
	}
	// Source chunks: those that mention the most of the retrieved entities.
	mentions := map[string]int{}
	for _, e := range ents {
		for _, id := range e.ChunkIDs {
			mentions[id]++
		}
	}
	chunkIDs := make([]string, 0, len(mentions))
	for id := range mentions {
		chunkIDs = append(chunkIDs, id)
	}
	sort.Slice(chunkIDs, func(i, j int) bool {
		if mentions[chunkIDs[i]] != mentions[chunkIDs[j]] {
			return mentions[chunkIDs[i]] > mentions[chunkIDs[j]]
		}
		return chunkIDs[i] < chunkIDs[j]
	})
	if len(chunkIDs) > s.cfg.ChunkTopK {
		chunkIDs = chunkIDs[:s.cfg.ChunkTopK]
	}
	chunks, err := s.graph.Chunks(ctx, req.Namespace, chunkIDs)
	if err != nil {
		return events.QueryResponse{}, fmt.Errorf("read chunks: %w", err)
	}
	res := events.QueryResponse{Mode: req.Mode, Answerer: "extractive", References: events.References{
		Entities: []events.EntityRef{}, Relations: []events.RelationRef{}, Chunks: []events.ChunkRef{}}}
	var facts []string
	for _, e := range ents {
		res.References.Entities = append(res.References.Entities, events.EntityRef{Key: e.Key, Name: e.Name, Type: e.Type, Score: score[e.Key]})
		facts = append(facts, fmt.Sprintf("%s (%s): %s", e.Name, e.Type, firstLine(e.Description)))
	}
	for _, r := range rels {
		res.References.Relations = append(res.References.Relations, events.RelationRef{Source: r.Source, Target: r.Target, Weight: r.Weight})
	}
	texts := make([]string, 0, len(chunks))
	for _, c := range chunks {
		res.References.Chunks = append(res.References.Chunks, events.ChunkRef{ChunkID: c.ID, DocID: c.DocID, Index: c.Index})
		texts = append(texts, c.Text)
	}
	if len(facts) > 5 {
		facts = facts[:5]
	}
	res.Answer = extractiveAnswer(req.Question, req.Namespace, texts, facts)
	return res, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// extractiveAnswer picks the sentences of the context that share the most
// words with the question.
func extractiveAnswer(question, namespace string, texts, facts []string) string {
	if len(texts) == 0 && len(facts) == 0 {
		return fmt.Sprintf("Nothing indexed in namespace %q matches the question.", namespace)
	}
	terms := map[string]bool{}
	for _, w := range words(question) {
		if len(w) > 2 {
			terms[w] = true
		}
	}
	type scored struct {
		s     string
		score int
		order int
	}
	var cands []scored
	seen := map[string]bool{}
	for _, t := range texts {
		for _, sent := range sentences(t) {
			if seen[sent] {
				continue
			}
			seen[sent] = true
			n := 0
			for _, w := range words(sent) {
				if terms[w] {
					n++
				}
			}
			cands = append(cands, scored{sent, n, len(cands)})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	var b strings.Builder
	b.WriteString("Extractive answer (no LLM configured).")
	if len(facts) > 0 {
		b.WriteString("\nRelevant entities:")
		for _, f := range facts {
			b.WriteString("\n- " + f)
		}
	}
	if len(cands) > 0 {
		b.WriteString("\nMost relevant passages:")
		for i := 0; i < len(cands) && i < 3; i++ {
			b.WriteString("\n- " + cands[i].s)
		}
	}
	return b.String()
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func sentences(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == '.' || r == '!' || r == '?' || r == '\n' {
			if s := strings.TrimSpace(text[start : i+1]); len(s) > 1 {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
