// Package backends opens the store chosen for each concern from the
// environment: embedded (the default, no servers) or the production backend
// (Neo4j for the graph, Qdrant for vectors, Redis for KV). Every store comes
// with a health check for /health.
package backends

import (
	"context"
	"errors"
	"fmt"
	"github.com/kgraph-dev/kgraph/libs/ratelimit"
	"github.com/redis/go-redis/v9"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
	"github.com/kgraph-dev/kgraph/libs/qdrantvec"
	"github.com/kgraph-dev/kgraph/libs/redisstore"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// Backend names.
const (
	Embedded = "embedded"
	Neo4j    = "neo4j"
	Qdrant   = "qdrant"
	Redis    = "redis"
)

// Config selects and configures the backends.
type Config struct {
	Graph, Vector, KV string
	DataDir           string
	GraphPath         string
	VectorPath        string
	Neo4j             neo4jgraph.Config
	QdrantURL         string
	QdrantAPIKey      string
	RedisURL          string
}

// ReadConfig reads KG_GRAPH_STORE, KG_VECTOR_STORE, KG_KV_STORE and the
// settings of the chosen backends.
func ReadConfig(r *envconf.Reader, dataDir string) Config {
	c := Config{
		Graph:        strings.ToLower(r.String("KG_GRAPH_STORE", Embedded)),
		Vector:       strings.ToLower(r.String("KG_VECTOR_STORE", Embedded)),
		KV:           strings.ToLower(r.String("KG_KV_STORE", Embedded)),
		DataDir:      dataDir,
		QdrantURL:    r.String("QDRANT_URL", ""),
		QdrantAPIKey: r.String("QDRANT_API_KEY", ""),
		RedisURL:     r.String("REDIS_URL", ""),
	}
	c.GraphPath = r.String("KG_GRAPH_PATH", filepath.Join(dataDir, "graph.db"))
	c.VectorPath = r.String("KG_VECTOR_PATH", filepath.Join(dataDir, "vectors.db"))
	c.Neo4j = neo4jgraph.Config{
		URI:      r.String("NEO4J_URI", ""),
		User:     r.String("NEO4J_USER", "neo4j"),
		Password: r.String("NEO4J_PASSWORD", ""),
		Database: r.String("NEO4J_DATABASE", ""),
		// The driver's default pool is 100 connections; a graph-writer needs
		// about as many as it merges chunks at once.
		MaxConnectionPoolSize: r.Int("NEO4J_MAX_POOL_SIZE", 0),
	}
	return c
}

// Validate names every missing or unknown setting.
func (c Config) Validate() error {
	var errs []error
	switch c.Graph {
	case Embedded:
	case Neo4j:
		if c.Neo4j.URI == "" {
			errs = append(errs, errors.New("KG_GRAPH_STORE=neo4j needs NEO4J_URI (e.g. bolt://neo4j:7687)"))
		}
	default:
		errs = append(errs, fmt.Errorf("KG_GRAPH_STORE=%q: use embedded or neo4j", c.Graph))
	}
	switch c.Vector {
	case Embedded:
	case Qdrant:
		if c.QdrantURL == "" {
			errs = append(errs, errors.New("KG_VECTOR_STORE=qdrant needs QDRANT_URL (e.g. http://qdrant:6334)"))
		}
	default:
		errs = append(errs, fmt.Errorf("KG_VECTOR_STORE=%q: use embedded or qdrant", c.Vector))
	}
	switch c.KV {
	case Embedded:
	case Redis:
		if c.RedisURL == "" {
			errs = append(errs, errors.New("KG_KV_STORE=redis needs REDIS_URL (e.g. redis://redis:6379/0)"))
		}
	default:
		errs = append(errs, fmt.Errorf("KG_KV_STORE=%q: use embedded or redis", c.KV))
	}
	return errors.Join(errs...)
}

// Check is a named health check of one backend.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// GraphStore is the graph store contract (graph.Store).
type GraphStore = graph.Store

// OpenGraph opens the configured graph store.
func OpenGraph(ctx context.Context, c Config) (GraphStore, Check, error) {
	switch c.Graph {
	case Neo4j:
		s, err := neo4jgraph.Open(ctx, c.Neo4j)
		if err != nil {
			return nil, Check{}, fmt.Errorf("open neo4j graph store: %w", err)
		}
		return s, Check{Name: "neo4j", Check: func(ctx context.Context) error { _, err := s.Counts(ctx, "default"); return err }}, nil
	default:
		s, err := sqlitegraph.Open(ctx, c.GraphPath)
		if err != nil {
			return nil, Check{}, err
		}
		return s, Check{Name: "graph", Check: func(ctx context.Context) error { _, err := s.Counts(ctx, "default"); return err }}, nil
	}
}

// VectorStore is the vector store contract (vector.Store).
type VectorStore = vector.Store

// OpenVectors opens the configured vector store.
func OpenVectors(ctx context.Context, c Config) (VectorStore, Check, error) {
	switch c.Vector {
	case Qdrant:
		s, err := qdrantvec.Open(ctx, qdrantvec.Config{URL: c.QdrantURL, APIKey: c.QdrantAPIKey})
		if err != nil {
			return nil, Check{}, fmt.Errorf("open qdrant vector store: %w", err)
		}
		return s, Check{Name: "qdrant", Check: s.Ping}, nil
	default:
		s, err := sqlitevec.Open(ctx, c.VectorPath)
		if err != nil {
			return nil, Check{}, err
		}
		return s, Check{Name: "vectors", Check: func(ctx context.Context) error { _, err := s.Count(ctx, "default", "chunk"); return err }}, nil
	}
}

// KVStore is the key-value store contract (kv.Store).
type KVStore = kv.Store

// cacheTTL bounds the caches kept in Redis, as their JetStream buckets are
// bounded in the bus topology; job records and claims never expire.
func cacheTTL(bucket string) time.Duration {
	switch bucket {
	case bus.BucketQueryCache:
		return 24 * time.Hour
	case bus.BucketLLMCache:
		return 30 * 24 * time.Hour
	}
	return 0
}

// OpenKV opens the configured KV store for one bucket (a JetStream KV
// bucket, or a key prefix in Redis). close releases it.
func OpenKV(ctx context.Context, c Config, js jetstream.JetStream, bucket string) (store KVStore, check Check, close func() error, err error) {
	switch c.KV {
	case Redis:
		s, err := redisstore.Open(ctx, redisstore.Config{URL: c.RedisURL, Prefix: "kg:" + bucket + ":", TTL: cacheTTL(bucket)})
		if err != nil {
			return nil, Check{}, nil, fmt.Errorf("open redis store %s: %w", bucket, err)
		}
		return s, Check{Name: "redis", Check: s.Ping}, s.Close, nil
	default:
		s, err := natskv.Open(ctx, js, bucket)
		if err != nil {
			return nil, Check{}, nil, err
		}
		return s, Check{Name: "kv", Check: func(ctx context.Context) error { _, err := js.KeyValue(ctx, bucket); return err }},
			func() error { return nil }, nil
	}
}

// Limiter is a per-key request rate limiter.
type Limiter interface {
	Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error)
}

// OpenLimiter opens the rate limiter that matches the KV store: counters in
// Redis, shared by every edge replica, when the KV store is Redis; in
// memory, per process, otherwise (one process is the embedded mode's case).
func OpenLimiter(ctx context.Context, c Config) (Limiter, func() error, error) {
	if c.KV != Redis {
		return ratelimit.NewMemory(time.Now), func() error { return nil }, nil
	}
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("rate limiter: parse REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("rate limiter: connect to redis: %w", err)
	}
	return ratelimit.NewRedis(client, "kg:ratelimit:"), client.Close, nil
}
