// Package dedup is the dedup service: it claims (namespace, SHA-256 of the
// normalised content) atomically, so that the same content in the same
// namespace is processed once. The first job wins the claim and is accepted;
// later ones end as duplicates pointing at it, before any extraction work.
package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Source is the CloudEvents source of the events this service emits.
const Source = "kgraph/dedup"

// Claims is the atomic claim store (JetStream KV or Redis).
type Claims interface {
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
}

// Documents reads submitted document text.
type Documents interface {
	Get(ctx context.Context, name string) (string, error)
}

// Config of the service.
type Config struct {
	Concurrency int
}

// Service is the dedup service.
type Service struct {
	cfg    Config
	bus    bus.Bus
	claims Claims
	docs   Documents
	now    func() time.Time
}

// New builds the service.
func New(cfg Config, b bus.Bus, claims Claims, docs Documents) *Service {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	return &Service{cfg: cfg, bus: b, claims: claims, docs: docs, now: time.Now}
}

// Run consumes document.submitted until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, err := s.bus.Consumer(bus.ConsumerDedup, Source, s.cfg.Concurrency, bus.On(s.handleSubmitted))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

func (s *Service) handleSubmitted(ctx context.Context, e events.Event[events.DocumentSubmitted]) error {
	d := e.Data
	text := d.Content
	if text == "" {
		if d.ContentRef == "" {
			return bus.Permanent(errors.New("document has neither content nor content_ref"))
		}
		var err error
		text, err = s.docs.Get(ctx, d.ContentRef)
		if errors.Is(err, kv.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("document text %q not found", d.ContentRef))
		}
		if err != nil {
			return fmt.Errorf("read document text %q: %w", d.ContentRef, err)
		}
	}
	if strings.TrimSpace(text) == "" {
		return bus.Permanent(errors.New("document content is empty"))
	}
	hash := events.ContentSHA256(text)
	key := jobstate.ClaimKey(d.Namespace, hash)
	claim, err := json.Marshal(jobstate.Claim{JobID: d.JobID, DocID: d.DocID, ClaimedAt: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("encode claim: %w", err)
	}
	winner := jobstate.Claim{JobID: d.JobID, DocID: d.DocID}
	if d.Force {
		// A forced submission takes over the claim: later duplicates point
		// at the newest ingestion.
		if _, err := s.claims.Put(ctx, key, claim); err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
	} else if _, err := s.claims.Create(ctx, key, claim); err != nil {
		if !errors.Is(err, kv.ErrExists) {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		raw, _, err := s.claims.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read claim %s: %w", key, err)
		}
		if err := json.Unmarshal(raw, &winner); err != nil {
			return fmt.Errorf("decode claim %s: %w", key, err)
		}
	}
	if winner.JobID != d.JobID {
		dup := events.DocumentDuplicate{JobRef: d.JobRef, ExistingJobID: winner.JobID, ExistingDocID: winner.DocID, ContentSHA256: hash}
		return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, dup, s.now()))
	}
	// This job holds the claim (first delivery, or a redelivery after a
	// crash between claim and publish): accept it; the event id is derived,
	// so a repeated accept is dropped by the stream.
	acc := events.DocumentAccepted{JobRef: d.JobRef, ContentRef: d.ContentRef, ContentSHA256: hash, Metadata: d.Metadata}
	if d.ContentRef == "" {
		acc.Content = d.Content
	}
	return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, acc, s.now()))
}
