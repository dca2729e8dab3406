// Package kv is the contract of the key-value stores that hold job state,
// deduplication claims and caches (natskv, redisstore), checked by the one
// suite in kvtest, and its errors: implementations return these sentinels,
// wrapped, so callers can test them with errors.Is.
package kv

import (
	"context"
	"errors"
)

var (
	// ErrNotFound: the key does not exist or has been deleted.
	ErrNotFound = errors.New("kv: key not found")
	// ErrExists: Create found the key already present, so the caller lost
	// the claim.
	ErrExists = errors.New("kv: key exists")
	// ErrConflict: Update's lastRevision is no longer the key's revision;
	// re-read and retry.
	ErrConflict = errors.New("kv: revision conflict")
)

// Store is the key-value contract used for job state and deduplication
// claims.
//
// Keys are dot-separated tokens of [A-Za-z0-9_-] (e.g. "job.abc123",
// "dedup.default.<sha256>"); other keys are rejected with an error. Every
// write returns the key's new revision, which increases with each write.
//
//   - Get returns ErrNotFound for a missing or deleted key.
//   - Create writes only if the key is missing or deleted and returns
//     ErrExists otherwise; concurrent Creates of one key have exactly one
//     winner, which makes Create a claim.
//   - Update writes only if lastRevision is the key's current revision and
//     returns ErrConflict otherwise, also when the key is missing or
//     deleted (compare-and-set). lastRevision must be positive.
//   - Put writes unconditionally.
//   - Delete removes the key; deleting a missing key is not an error.
//   - Keys returns the existing keys that start with prefix (a plain string
//     prefix, "" for all), sorted, and an empty slice when none match.
//   - KeysAfter returns one page of that listing: at most limit (> 0) of
//     the keys that start with prefix and sort after the key after ("" for
//     from the first), in order. Keys whose names sort by what they index
//     (jobstate's job index, newest first) make it an index read a page at a
//     time, however many keys there are.
type Store interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
	KeysAfter(ctx context.Context, prefix, after string, limit int) ([]string, error)
}
