// Package natsdocs stores document text in a JetStream object store, which
// chunks large texts that would not fit in one message.
//
// A missing document is reported as ErrNotFound, which wraps kv.ErrNotFound.
package natsdocs

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/libs/kv"
)

// ErrNotFound is returned, wrapped, by Get when no document has the name.
// It wraps kv.ErrNotFound, so callers that only know the kv sentinels (the
// services) recognise it too.
var ErrNotFound = fmt.Errorf("natsdocs: document %w", kv.ErrNotFound)

// Store holds document texts by name. It is safe for concurrent use.
type Store struct {
	objects jetstream.ObjectStore
}

// Open creates the object store bucket, or updates its configuration if it
// exists, and returns a store over it.
func Open(ctx context.Context, js jetstream.JetStream, bucket string) (*Store, error) {
	objects, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:  bucket,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open document bucket %s: %w", bucket, err)
	}
	return &Store{objects: objects}, nil
}

// Put stores text under name, replacing any previous text.
func (s *Store) Put(ctx context.Context, name string, text string) error {
	if name == "" {
		return errors.New("put document: empty name")
	}
	if _, err := s.objects.PutString(ctx, name, text); err != nil {
		return fmt.Errorf("put document %s: %w", name, err)
	}
	return nil
}

// Get returns the text stored under name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("get document: empty name")
	}
	text, err := s.objects.GetString(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("get document %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get document %s: %w", name, err)
	}
	return text, nil
}

// Delete removes the text stored under name. Deleting a missing document is
// not an error, so a retried deletion succeeds.
func (s *Store) Delete(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("delete document: empty name")
	}
	err := s.objects.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete document %s: %w", name, err)
	}
	return nil
}
