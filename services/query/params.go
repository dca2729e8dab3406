package query

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
)

// Limits of the request parameters; beyond them a request is refused with a
// 400 rather than allowed to make the service assemble contexts no model
// could take.
const (
	maxTokenBudget     = 1_000_000
	maxResponseTypeLen = 200
	maxLevel           = 1000
)

// params are a request's effective parameters: the request's values or the
// service's defaults. Only those the mode uses are set, so parameters a
// mode ignores do not split the response cache. The JSON form is part of
// the cache key.
type params struct {
	TopK                     int    `json:"top_k,omitempty"`
	ResponseType             string `json:"response_type"`
	OnlyContext              bool   `json:"only_context,omitempty"`
	MaxTokensTextUnit        int    `json:"max_tokens_text_unit,omitempty"`
	MaxTokensLocalContext    int    `json:"max_tokens_local_context,omitempty"`
	MaxTokensCommunityReport int    `json:"max_tokens_community_report,omitempty"`
	GlobalMaxTokensReport    int    `json:"global_max_tokens_report,omitempty"`
	NaiveMaxTokens           int    `json:"naive_max_tokens,omitempty"`
	Level                    int    `json:"level"`
}

// request is a validated QueryRequest.
type request struct {
	question  string
	mode      string
	namespace string
	noCache   bool
	params
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// resolve validates req and applies the defaults. Errors are 400s naming
// the offending field by its JSON name.
func (s *Service) resolve(req events.QueryRequest) (request, error) {
	if strings.TrimSpace(req.Question) == "" {
		return request{}, badRequest("question must not be empty")
	}
	switch req.Mode {
	case events.ModeLocal, events.ModeGlobal, events.ModeNaive:
	default:
		return request{}, badRequest("mode %q is unknown (use local, global or naive)", req.Mode)
	}
	r := request{question: req.Question, mode: req.Mode, namespace: req.Namespace, noCache: req.NoCache}
	if r.namespace == "" {
		r.namespace = events.DefaultNamespace
	}
	// Every numeric parameter must make sense, even one the mode ignores
	// (like top_k in global mode).
	for _, f := range []struct {
		name string
		v    int
	}{
		{"top_k", req.TopK}, {"max_tokens_text_unit", req.MaxTokensTextUnit},
		{"max_tokens_local_context", req.MaxTokensLocalContext},
		{"max_tokens_community_report", req.MaxTokensCommunityReport},
		{"global_max_tokens_report", req.GlobalMaxTokensReport}, {"naive_max_tokens", req.NaiveMaxTokens},
	} {
		switch {
		case f.v < 0:
			return request{}, badRequest("%s must be positive (got %d)", f.name, f.v)
		case f.v > maxTokenBudget:
			return request{}, badRequest("%s must be at most %d (got %d)", f.name, maxTokenBudget, f.v)
		}
	}
	c := s.cfg
	if req.TopK > c.MaxTopK {
		return request{}, badRequest("top_k must be at most %d (got %d)", c.MaxTopK, req.TopK)
	}
	r.OnlyContext = req.OnlyContext
	r.ResponseType = strings.TrimSpace(req.ResponseType)
	switch {
	case r.ResponseType == "":
		r.ResponseType = c.ResponseType
	case len(r.ResponseType) > maxResponseTypeLen:
		return request{}, badRequest("response_type is longer than %d bytes", maxResponseTypeLen)
	}
	switch r.mode {
	case events.ModeLocal:
		r.TopK = cmp.Or(req.TopK, c.EntityTopK)
		r.MaxTokensTextUnit = cmp.Or(req.MaxTokensTextUnit, c.MaxTokensTextUnit)
		r.MaxTokensLocalContext = cmp.Or(req.MaxTokensLocalContext, c.MaxTokensLocalContext)
		r.MaxTokensCommunityReport = cmp.Or(req.MaxTokensCommunityReport, c.MaxTokensCommunityReport)
	case events.ModeGlobal:
		r.GlobalMaxTokensReport = cmp.Or(req.GlobalMaxTokensReport, c.GlobalMaxTokensReport)
	case events.ModeNaive:
		r.TopK = cmp.Or(req.TopK, c.ChunkTopK)
		r.NaiveMaxTokens = cmp.Or(req.NaiveMaxTokens, c.NaiveMaxTokens)
	}
	// Naive mode uses no communities; its level stays 0.
	if r.mode != events.ModeNaive {
		r.Level = c.Level
		if req.Level != nil {
			if *req.Level < 0 || *req.Level > maxLevel {
				return request{}, badRequest("level must be between 0 and %d (got %d)", maxLevel, *req.Level)
			}
			r.Level = *req.Level
		}
	}
	return r, nil
}
