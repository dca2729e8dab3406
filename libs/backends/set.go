package backends

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
)

// Set opens the stores of one process, each once, when a service first asks
// for it, and keeps their health checks and closers. A service's wiring
// function asks the set for what it uses; the host decides how many
// services share a set: a service binary has its own, kg serve one for all
// seven, so its services share one SQLite graph, one vector file and one
// Redis client per bucket, as they always did.
type Set struct {
	cfg Config
	js  jetstream.JetStream

	mu      sync.Mutex
	kv      map[string]KVStore
	docs    *natsdocs.Store
	graph   GraphStore
	vectors VectorStore
	limiter Limiter
	checks  []Check
	closers []func() error
}

// NewSet returns an empty set over the configured backends; the NATS KV and
// object stores live in js.
func NewSet(cfg Config, js jetstream.JetStream) *Set {
	return &Set{cfg: cfg, js: js, kv: map[string]KVStore{}}
}

// KV returns the KV store of one bucket.
func (s *Set) KV(ctx context.Context, bucket string) (KVStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.kv[bucket]; ok {
		return st, nil
	}
	st, check, closeStore, err := OpenKV(ctx, s.cfg, s.js, bucket)
	if err != nil {
		return nil, err
	}
	s.kv[bucket] = st
	s.add(check, closeStore)
	return st, nil
}

// Documents returns the object store of document texts.
func (s *Set) Documents(ctx context.Context) (*natsdocs.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.docs == nil {
		docs, err := natsdocs.Open(ctx, s.js, bus.BucketDocuments)
		if err != nil {
			return nil, err
		}
		s.docs = docs
	}
	return s.docs, nil
}

// Graph returns the graph store.
func (s *Set) Graph(ctx context.Context) (GraphStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.graph == nil {
		g, check, err := OpenGraph(ctx, s.cfg)
		if err != nil {
			return nil, err
		}
		s.graph = g
		s.add(check, g.Close)
	}
	return s.graph, nil
}

// Vectors returns the vector store.
func (s *Set) Vectors(ctx context.Context) (VectorStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vectors == nil {
		v, check, err := OpenVectors(ctx, s.cfg)
		if err != nil {
			return nil, err
		}
		s.vectors = v
		s.add(check, v.Close)
	}
	return s.vectors, nil
}

// Limiter returns the request rate limiter.
func (s *Set) Limiter(ctx context.Context) (Limiter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limiter == nil {
		l, closeLimiter, err := OpenLimiter(ctx, s.cfg)
		if err != nil {
			return nil, err
		}
		s.limiter = l
		s.closers = append(s.closers, closeLimiter)
	}
	return s.limiter, nil
}

// add keeps a store's closer and its check; one check per name, since the
// stores of one backend share it (every NATS KV bucket is "kv", every Redis
// prefix "redis").
func (s *Set) add(check Check, closeStore func() error) {
	s.closers = append(s.closers, closeStore)
	if check.Check != nil && !slices.ContainsFunc(s.checks, func(c Check) bool { return c.Name == check.Name }) {
		s.checks = append(s.checks, check)
	}
}

// Checks are the health checks of the stores opened so far, in the order
// they were opened.
func (s *Set) Checks() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checks)
}

// Close closes the stores, the last opened first.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, c := range slices.Backward(s.closers) {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}
