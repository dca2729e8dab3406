package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// cacheKeyVersion starts every cache key; bump it when the key's inputs or
// the cached value change meaning, so old entries are never read. v2 put
// the namespace in the key as a token of its own.
const cacheKeyVersion = "v2"

// extractiveModel stands for "no LLM" in cache keys.
const extractiveModel = "extractive"

// cacheKey returns the response cache key of r, or "" when r must not be
// cached: no cache, no_cache asked, a namespace that cannot be a key token,
// or a graph whose generation is unknown (an answer could then outlive the
// data it was built from).
//
// The key is "v2.<namespace>.<sha>", the SHA-256 of the namespace, the
// mode, the normalised question, the effective parameters, the graph
// generation (and the communities' generation when the store has one) and
// the model, so a change of any of them misses; the namespace token lets
// ClearCache find a namespace's answers by prefix.
func (s *Service) cacheKey(ctx context.Context, r request) string {
	if s.cache == nil || r.noCache || !validNamespace(r.namespace) {
		return ""
	}
	gen, err := s.graph.Generation(ctx, r.namespace)
	if err != nil {
		s.log.Warn("read graph generation; answering without the cache", "err", err, "namespace", r.namespace)
		return ""
	}
	built, err := s.graph.CommunitiesBuilt(ctx, r.namespace)
	if err != nil {
		s.log.Warn("read communities generation; answering without the cache", "err", err, "namespace", r.namespace)
		return ""
	}
	commGen := built.Generation
	model := extractiveModel
	if s.chat != nil {
		model = "llm:" + s.chat.Model()
	}
	input, err := json.Marshal(struct {
		Namespace  string `json:"namespace"`
		Mode       string `json:"mode"`
		Question   string `json:"question"`
		Params     params `json:"params"`
		Generation uint64 `json:"generation"`
		// Reports are written after the merges they describe, which
		// need not change the graph's generation.
		CommunitiesGeneration uint64 `json:"communities_generation"`
		Model                 string `json:"model"`
	}{r.namespace, r.mode, normalizeQuestion(r.question), r.params, gen, commGen, model})
	if err != nil {
		s.log.Warn("encode cache key", "err", err) // cannot happen: plain values
		return ""
	}
	sum := sha256.Sum256(input)
	return cacheKeyPrefix(r.namespace) + hex.EncodeToString(sum[:])
}

// cacheKeyPrefix starts the cache keys of a namespace's answers.
func cacheKeyPrefix(namespace string) string {
	return cacheKeyVersion + "." + namespace + "."
}

// normalizeQuestion makes questions that differ only in case and spacing
// share a cache entry.
func normalizeQuestion(q string) string {
	return strings.Join(strings.Fields(strings.ToLower(q)), " ")
}

// cached returns the response stored under key. A cache that fails is
// logged and treated as a miss: it must not fail the query.
func (s *Service) cached(ctx context.Context, key string) (events.QueryResponse, bool) {
	if key == "" {
		return events.QueryResponse{}, false
	}
	data, _, err := s.cache.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, kv.ErrNotFound) {
			s.log.Warn("read the response cache", "err", err)
		}
		return events.QueryResponse{}, false
	}
	var res events.QueryResponse
	if err := json.Unmarshal(data, &res); err != nil {
		s.log.Warn("cached response is unreadable; answering again", "err", err, "key", key)
		return events.QueryResponse{}, false
	}
	return res, true
}

// store caches a successful response, without what is particular to this
// request (usage, latency).
func (s *Service) store(ctx context.Context, key string, res events.QueryResponse) {
	if key == "" {
		return
	}
	res.Usage, res.LatencyMS, res.Cached = nil, 0, false
	data, err := json.Marshal(res)
	if err == nil {
		_, err = s.cache.Put(ctx, key, data)
	}
	if err != nil {
		s.log.Warn("write the response cache", "err", err)
	}
}
