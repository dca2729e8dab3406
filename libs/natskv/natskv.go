// Package natskv implements the kv.Store contract over a JetStream
// key-value bucket, mapping JetStream's errors to the kv sentinels.
//
// The bucket keeps one revision per key: callers need the latest value and
// its revision for compare-and-set, never the history. A deleted key is a
// delete marker that Get reports as kv.ErrNotFound and that Create may
// replace, so a released claim can be claimed again.
package natskv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Store is a key-value store over one JetStream KV bucket. It is safe for
// concurrent use.
type Store struct {
	kv jetstream.KeyValue
}

// Open binds to the bucket, keeping the configuration it was declared with
// (see bus.EnsureTopology), or creates it with one revision per key on file
// storage when it does not exist yet.
func Open(ctx context.Context, js jetstream.JetStream, bucket string) (*Store, error) {
	if b, err := js.KeyValue(ctx, bucket); err == nil {
		return &Store{kv: b}, nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open kv bucket %s: %w", bucket, err)
	}
	b, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:  bucket,
		History: 1,
		Storage: jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile by another process
		b, err = js.KeyValue(ctx, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("open kv bucket %s: %w", bucket, err)
	}
	return &Store{kv: b}, nil
}

// Get returns the value and revision of key, or kv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, fmt.Errorf("get: %w", err)
	}
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	return entry.Value(), entry.Revision(), nil
}

// Create writes key only if it is missing or deleted, and returns
// kv.ErrExists otherwise. Of concurrent Creates exactly one succeeds.
func (s *Store) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	rev, err := s.kv.Create(ctx, key, value)
	// On a deleted key jetstream.Create retries with the delete marker's
	// revision; losing that race yields the raw wrong-last-sequence error,
	// which errors.Is also matches to ErrKeyExists.
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("create %s: %w", key, kv.ErrExists)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	return rev, nil
}

// Update writes key only if lastRevision is its current revision, and
// returns kv.ErrConflict otherwise (also for a missing or deleted key).
func (s *Store) Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	// JetStream reads revision 0 as "the key must not exist", which would
	// turn Update into Create.
	if lastRevision == 0 {
		return 0, fmt.Errorf("update %s: last revision must be positive", key)
	}
	rev, err := s.kv.Update(ctx, key, value, lastRevision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("update %s at revision %d: %w", key, lastRevision, kv.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s at revision %d: %w", key, lastRevision, err)
	}
	return rev, nil
}

// Put writes key unconditionally.
func (s *Store) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	rev, err := s.kv.Put(ctx, key, value)
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
	if err := s.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Keys returns the existing keys starting with prefix, sorted. The complete
// tokens of prefix narrow the server-side subject filter, so listing
// "dedup.default." does not stream every job key.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	filter := jetstream.AllKeys
	if i := strings.LastIndexByte(prefix, '.'); i >= 0 {
		if validateKey(prefix[:i]) != nil {
			// No valid key can start with this prefix.
			return []string{}, nil
		}
		filter = prefix[:i] + ".>"
	}
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list keys with prefix %q: %w", prefix, err)
	}
	keys := []string{}
	for key := range lister.Keys() {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	// The lister closes its channel early when ctx ends; a partial list must
	// not pass for a complete one.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list keys with prefix %q: %w", prefix, err)
	}
	slices.Sort(keys)
	// A key written during the listing can be reported twice.
	return slices.Compact(keys), nil
}

// KeysAfter returns at most limit of the existing keys starting with prefix
// that sort after after, in order. JetStream lists a bucket's keys in no
// order, so each page lists every key under prefix: fine for the embedded
// deployment's numbers of jobs, while Redis reads only the page.
func (s *Store) KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list keys with prefix %q: limit %d is not positive", prefix, limit)
	}
	keys, err := s.Keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(keys, after)
	if i < len(keys) && keys[i] == after {
		i++
	}
	keys = keys[i:]
	return keys[:min(limit, len(keys))], nil
}

// validateKey enforces the kv key syntax: dot-separated, non-empty tokens of
// [A-Za-z0-9_-]. JetStream itself accepts more ('/', '='), but keys must stay
// portable across stores and safe inside subject filters.
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
