// Package redisstore implements the kv.Store contract over Redis, for
// deployments that keep job state and deduplication claims outside NATS.
//
// Every key of a store lives under its Config.Prefix:
//
//	<prefix>k:<key>  hash {v: value, r: revision}
//	<prefix>m:keys   sorted set of the existing keys, all scored 0, for Keys
//	<prefix>m:rev    counter that every write increments for its revision
//
// Each write is one Lua script, so the check, the revision bump, the value
// and the index change together or not at all. Revisions come from a single
// counter per store rather than per key, so a key created again after a
// Delete still gets a higher revision than it ever had. Valid keys never
// contain ':', so no two distinct prefixes can produce the same Redis key.
//
// The counter and the data are lost together when Redis loses its dataset
// (no persistence, FLUSHDB); revisions then start again at 1, and a revision
// read before the loss may match a new write. Production servers should
// persist (AOF) for that reason as much as for the data.
//
// The store talks to one server, not to Redis Cluster: a script touches three
// keys, which a cluster accepts only when they share a hash slot.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Config says where the store is.
type Config struct {
	// URL is a redis:// or rediss:// URL as redis.ParseURL reads it, e.g.
	// redis://:password@host:6379/2.
	URL string
	// Prefix namespaces the store's Redis keys, e.g. "kg:jobs:". It must not
	// be empty: stores sharing a database are kept apart by it.
	Prefix string
	// TTL, when positive, expires every key that long after its last write
	// (for caches). Keys may still list an expired key until the next write
	// of it; Get reports it missing.
	TTL time.Duration
}

// keysPageSize bounds one ZRANGEBYLEX reply, so that listing many keys does
// not block the server for long or need one huge reply buffer.
const keysPageSize = 1000

// createSource writes the key only if it has no hash; 0 (never a revision)
// means it exists.
const createSource = `
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', rev)
local ttl = tonumber(ARGV[#ARGV])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return rev
`

// updateSource writes the key only if its revision is ARGV[3]; 0 means it is
// not (also when the key is missing, as HGET then yields false). Revisions
// are compared as the decimal strings Redis stores.
const updateSource = `
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[3] then
	return 0
end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', rev)
local ttl = tonumber(ARGV[#ARGV])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return rev
`

const putSource = `
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', rev)
local ttl = tonumber(ARGV[#ARGV])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return rev
`

const deleteSource = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
`

// Store is a key-value store in one Redis database under one key prefix. It
// is safe for concurrent use.
//
// An error other than the kv sentinels, from a write, leaves its outcome
// unknown: the server may have applied it before the connection failed. The
// client therefore never retries a command by itself, as a retried Create
// would report a claim it had won as lost. Read the key to find out.
type Store struct {
	client   *redis.Client
	prefix   string
	indexKey string
	revKey   string
	ttl      time.Duration

	create, update, put, del *redis.Script
}

// Open connects to cfg.URL and checks the server answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		return nil, errors.New("open redis store: empty key prefix")
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open redis store: parse URL: %w", err)
	}
	// Writes are not idempotent (see Store), so a command that may have
	// reached the server is never sent twice.
	opts.MaxRetries = -1
	// The caller's deadline, not only the client's default timeouts, bounds
	// each command.
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	s := &Store{
		client:   client,
		prefix:   cfg.Prefix,
		indexKey: cfg.Prefix + "m:keys",
		revKey:   cfg.Prefix + "m:rev",
		ttl:      cfg.TTL,
		create:   redis.NewScript(createSource),
		update:   redis.NewScript(updateSource),
		put:      redis.NewScript(putSource),
		del:      redis.NewScript(deleteSource),
	}
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open redis store at %s: %w", opts.Addr, err), client.Close())
	}
	return s, nil
}

// Close releases the store's connections.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close redis store: %w", err)
	}
	return nil
}

// Ping checks that the server answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Get returns the value and revision of key, or kv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, fmt.Errorf("get: %w", err)
	}
	// One HMGET reads value and revision atomically.
	fields, err := s.client.HMGet(ctx, s.dataKey(key), "v", "r").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	if len(fields) != 2 {
		return nil, 0, fmt.Errorf("get %s: HMGET returned %d fields, want 2", key, len(fields))
	}
	if fields[0] == nil && fields[1] == nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	value, okValue := fields[0].(string)
	revText, okRev := fields[1].(string)
	if !okValue || !okRev {
		return nil, 0, fmt.Errorf("get %s: malformed entry %q: want fields v and r", s.dataKey(key), fields)
	}
	rev, err := strconv.ParseUint(revText, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: parse revision: %w", key, err)
	}
	return []byte(value), rev, nil
}

// Create writes key only if it is missing or deleted, and returns
// kv.ErrExists otherwise. Of concurrent Creates, from any number of clients,
// exactly one succeeds.
func (s *Store) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	rev, err := s.write(ctx, s.create, key, value)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	if rev == 0 {
		return 0, fmt.Errorf("create %s: %w", key, kv.ErrExists)
	}
	return rev, nil
}

// Update writes key only if lastRevision is its current revision, and
// returns kv.ErrConflict otherwise (also for a missing or deleted key).
func (s *Store) Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	if lastRevision == 0 {
		return 0, fmt.Errorf("update %s: last revision must be positive", key)
	}
	rev, err := s.write(ctx, s.update, key, value, strconv.FormatUint(lastRevision, 10))
	if err != nil {
		return 0, fmt.Errorf("update %s at revision %d: %w", key, lastRevision, err)
	}
	if rev == 0 {
		return 0, fmt.Errorf("update %s at revision %d: %w", key, lastRevision, kv.ErrConflict)
	}
	return rev, nil
}

// Put writes key unconditionally.
func (s *Store) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	rev, err := s.write(ctx, s.put, key, value)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return rev, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := s.del.Run(ctx, s.client, s.scriptKeys(key), key).Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Keys returns the existing keys starting with prefix, sorted. It pages
// through the index by key, so a listing concurrent with writes sees every
// key that exists throughout, once, but is not a snapshot.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	// Every valid key is ASCII, so all keys starting with prefix sort below
	// prefix+"\xff" and none that don't fall in between.
	lo, hi := "["+prefix, "("+prefix+"\xff"
	if prefix == "" {
		lo, hi = "-", "+"
	}
	keys := []string{}
	for {
		page, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: s.indexKey, Start: lo, Stop: hi, ByLex: true, Count: keysPageSize,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("list keys with prefix %q: %w", prefix, err)
		}
		keys = append(keys, page...)
		if len(page) < keysPageSize {
			return keys, nil
		}
		lo = "(" + page[len(page)-1]
	}
}

// KeysAfter returns at most limit of the existing keys starting with prefix
// that sort after after, in order: one ZRANGEBYLEX of the index, however
// many keys there are.
func (s *Store) KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list keys with prefix %q: limit %d is not positive", prefix, limit)
	}
	lo, hi := "["+prefix, "("+prefix+"\xff"
	if prefix == "" {
		lo, hi = "-", "+"
	}
	if after != "" && after >= prefix {
		lo = "(" + after
	}
	keys, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.indexKey, Start: lo, Stop: hi, ByLex: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list keys with prefix %q after %q: %w", prefix, after, err)
	}
	if keys == nil {
		keys = []string{}
	}
	return keys, nil
}

// write runs one of the write scripts and returns its integer result.
func (s *Store) write(ctx context.Context, script *redis.Script, key string, value []byte, args ...any) (uint64, error) {
	// EVALSHA first; Run falls back to EVAL when the server lacks the script,
	// as after a restart.
	// The TTL in milliseconds is always the last argument (0 = none).
	argv := append(append([]any{key, value}, args...), s.ttl.Milliseconds())
	rev, err := script.Run(ctx, s.client, s.scriptKeys(key), argv...).Int64()
	if err != nil {
		return 0, err
	}
	if rev < 0 {
		return 0, fmt.Errorf("script returned negative revision %d", rev)
	}
	return uint64(rev), nil
}

// scriptKeys are the KEYS of every write script, declared so that Redis
// knows which keys a script touches.
func (s *Store) scriptKeys(key string) []string {
	return []string{s.dataKey(key), s.indexKey, s.revKey}
}

func (s *Store) dataKey(key string) string {
	return s.prefix + "k:" + key
}

// validateKey enforces the kv key syntax: dot-separated, non-empty tokens of
// [A-Za-z0-9_-]. Redis accepts any bytes, but keys must stay portable across
// stores, and the absence of ':' keeps prefixes from overlapping.
func validateKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	for token := range strings.SplitSeq(key, ".") {
		if token == "" {
			return fmt.Errorf("key %q has an empty token", key)
		}
		for _, r := range token {
			if !isKeyRune(r) {
				return fmt.Errorf("key %q has invalid character %q", key, r)
			}
		}
	}
	return nil
}

func isKeyRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// Store is a kv.Store.
var _ kv.Store = (*Store)(nil)
