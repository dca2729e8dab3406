// Package kv defines the errors of the key-value stores that hold job state
// and deduplication claims. The store contract itself lives in kvtest, next
// to the suite that checks it; implementations (natskv) return these
// sentinels, wrapped, so callers can test them with errors.Is.
package kv

import "errors"

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
