package query

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kgraph-dev/kgraph/events"
)

// clearableCache is a Cache whose entries can be listed and deleted (both
// KV stores are).
type clearableCache interface {
	Keys(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// ClearCache deletes the namespace's cached answers. Answers cached under
// an older key version are never read again and are left to expire.
func (s *Service) ClearCache(ctx context.Context, req events.QueryCacheClearRequest) (events.QueryCacheClearResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.QueryCacheClearResponse{}, err
	}
	res := events.QueryCacheClearResponse{Namespace: ns}
	if s.cache == nil {
		return res, nil // nothing is cached
	}
	cc, ok := s.cache.(clearableCache)
	if !ok {
		return events.QueryCacheClearResponse{}, &Error{Status: http.StatusNotImplemented, Msg: "the response cache cannot be cleared"}
	}
	keys, err := cc.Keys(ctx, cacheKeyPrefix(ns))
	if err != nil {
		return events.QueryCacheClearResponse{}, s.cacheFailure(err)
	}
	for _, key := range keys {
		if err := cc.Delete(ctx, key); err != nil {
			s.log.Warn("cache clear stopped", "namespace", ns, "deleted", res.Deleted, "of", len(keys))
			return events.QueryCacheClearResponse{}, s.cacheFailure(err)
		}
		res.Deleted++
	}
	s.log.Info("response cache cleared", "namespace", ns, "deleted", res.Deleted)
	return res, nil
}

// cacheFailure logs a failure of the cache and answers 503 (504 past the
// deadline); a clear is idempotent, so the client may simply retry.
func (s *Service) cacheFailure(err error) *Error {
	qe := s.exploreError(fmt.Errorf("clear the response cache: %w", err), "cache clear")
	if qe.Status == http.StatusServiceUnavailable {
		qe.Msg = "response cache unavailable, retry"
	}
	return qe
}
