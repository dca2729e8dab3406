package ingestapi

// The query endpoint: the question, the answer, and the request to the
// query service.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
)

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

	encoded []byte
}

// MarshalJSON writes an answer from the edge's cache as the bytes encoded
// when it was stored, with its latency spliced in: encoding a large answer
// on every hit cost more than the rest of the request.
func (r QueryReply) MarshalJSON() ([]byte, error) {
	if r.encoded != nil {
		return r.encoded, nil
	}
	type plain QueryReply // drops this method
	return json.Marshal(plain(r))
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
	key := answerKey(data)
	var epoch uint64
	cacheable := !in.NoCache
	if cacheable {
		if a, ok := s.answers.get(key, in.Namespace, s.now()); ok {
			return a.withLatency(float64(time.Since(start).Microseconds()) / 1000), nil
		}
		epoch, cacheable = s.answers.begin(in.Namespace)
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
		return QueryReply{}, huma.NewError(upstreamStatus(status, convErr), resp.Header.Get(micro.ErrorHeader))
	}
	var out events.QueryResponse
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return QueryReply{}, huma.Error502BadGateway("query service sent an unreadable answer")
	}
	reply := QueryReply{Answer: out.Answer, Mode: out.Mode, Answerer: out.Answerer, Model: out.Model, Context: out.Context,
		Cached: out.Cached, Usage: out.Usage, References: out.References,
		LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if cacheable {
		s.answers.put(key, in.Namespace, epoch, reply, s.now())
	}
	return reply, nil
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
