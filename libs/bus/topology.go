// Package bus is kgraph's JetStream plumbing: the streams, buckets and
// durable consumers (declared here and nowhere else), the publisher, and the
// consumer adapter that turns a handler's error into ack, nak-with-backoff or
// dead-letter.
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/events"
)

// Names of the streams, KV buckets and object store.
const (
	StreamEvents     = "EVENTS"
	StreamDeadLetter = "DEADLETTER"
	BucketJobs       = "kg_jobs"
	BucketDedup      = "kg_dedup"
	BucketDocuments  = "kg_documents"
	// BucketLLMCache holds LLM responses keyed on model and prompt.
	BucketLLMCache = "kg_llm_cache"
	// BucketQueryCache holds query answers keyed on the question, its
	// parameters and the graph's generation; entries expire after a day.
	BucketQueryCache = "kg_query_cache"
)

// Durable consumer names. Each is bound to one service.
const (
	ConsumerDedup              = "dedup"
	ConsumerExtractorDocuments = "extractor-documents"
	ConsumerExtractorChunks    = "extractor-chunks"
	ConsumerGraphWriter        = "graph-writer"
	ConsumerCommunities        = "graph-writer-communities" // rebuilds communities after job.completed
	ConsumerVectorIndexer      = "vector-indexer"
	ConsumerProjection         = "projection"
)

// ConsumerSpec declares one durable consumer.
type ConsumerSpec struct {
	Name        string
	Description string
	Types       []events.Type
	// AllEvents subscribes to every event subject, so the consumer also sees
	// events of unknown types and dead-letters them (the projection does).
	AllEvents bool
}

// Subjects returns the subjects the consumer filters on.
func (c ConsumerSpec) Subjects() []string {
	if c.AllEvents {
		return []string{events.SubjectAllEvents}
	}
	out := make([]string, 0, len(c.Types))
	for _, t := range c.Types {
		s, err := events.SubjectOf(t)
		if err != nil {
			panic(fmt.Sprintf("bus topology names an unknown type %q", t)) // a programming error, caught by tests
		}
		out = append(out, s)
	}
	return out
}

// Consumers is the one list of durable consumers.
func Consumers() []ConsumerSpec {
	return []ConsumerSpec{
		{Name: ConsumerDedup, Description: "dedup: claims (namespace, content hash), gates approval, releases claims of cancelled, expired and deleted documents",
			Types: []events.Type{events.TypeDocumentSubmitted, events.TypeJobApproved, events.TypeJobCancelled, events.TypeJobExpired, events.TypeDocumentDeleted}},
		{Name: ConsumerExtractorDocuments, Description: "extractor: chunks accepted documents", Types: []events.Type{events.TypeDocumentAccepted}},
		{Name: ConsumerExtractorChunks, Description: "extractor: extracts entities and relations per chunk", Types: []events.Type{events.TypeChunkCreated}},
		{Name: ConsumerGraphWriter, Description: "graph-writer: merges chunk graphs, subtracts deleted documents", Types: []events.Type{events.TypeChunkExtracted, events.TypeDocumentDeleted}},
		{Name: ConsumerCommunities, Description: "graph-writer: rebuilds communities and reports after jobs complete", Types: []events.Type{events.TypeJobCompleted}},
		{Name: ConsumerVectorIndexer, Description: "vector-indexer: embeds chunks and entities, removes deleted documents' vectors", Types: []events.Type{events.TypeChunkExtracted, events.TypeDocumentDeleted}},
		{Name: ConsumerProjection, Description: "projection: job state from every event", AllEvents: true},
	}
}

// ConsumerByName returns a declared consumer.
func ConsumerByName(name string) (ConsumerSpec, error) {
	for _, c := range Consumers() {
		if c.Name == name {
			return c, nil
		}
	}
	return ConsumerSpec{}, fmt.Errorf("no consumer %q is declared", name)
}

// Settings tune the topology; the defaults suit production.
type Settings struct {
	// Replicas of streams and buckets (1 for a single server, 3 for a cluster).
	Replicas int
	// Storage is file storage unless a test asks for memory.
	Storage jetstream.StorageType
	// MaxAge of events: the event log is also the recovery path (replay to
	// rebuild graph and vectors), so it is kept for a while.
	MaxAge time.Duration
	// DuplicateWindow during which a re-published event id is dropped.
	DuplicateWindow time.Duration
	// AckWait before an unacknowledged delivery is redelivered (a crashed
	// handler's messages come back after this).
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one event: the last failing attempt
	// dead-letters it, and so does a delivery past the bound (every earlier
	// attempt crashed). The consumer adapter enforces it, not the server.
	MaxDeliver int
	// Backoff is the nak delay by attempt (the last entry repeats).
	Backoff []time.Duration
	// MaxAckPending bounds in-flight messages per consumer across replicas.
	MaxAckPending int
}

// DefaultSettings returns the production defaults.
func DefaultSettings() Settings {
	return Settings{
		Replicas:        1,
		Storage:         jetstream.FileStorage,
		MaxAge:          30 * 24 * time.Hour,
		DuplicateWindow: 10 * time.Minute,
		AckWait:         30 * time.Second,
		MaxDeliver:      10,
		Backoff:         []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		MaxAckPending:   1000,
	}
}

// Validate checks the settings.
func (s Settings) Validate() error {
	var errs []error
	if s.Replicas < 1 {
		errs = append(errs, errors.New("replicas must be at least 1"))
	}
	if s.AckWait < time.Second {
		errs = append(errs, errors.New("ack wait must be at least 1s"))
	}
	if s.MaxDeliver < 1 {
		errs = append(errs, errors.New("max deliver must be at least 1"))
	}
	if len(s.Backoff) == 0 {
		errs = append(errs, errors.New("backoff needs at least one delay"))
	}
	if s.DuplicateWindow <= 0 || s.DuplicateWindow > s.MaxAge {
		errs = append(errs, errors.New("duplicate window must be positive and within max age"))
	}
	if s.MaxAckPending < 1 {
		errs = append(errs, errors.New("max ack pending must be at least 1"))
	}
	return errors.Join(errs...)
}

// Delay returns the nak delay after the given delivery attempt (1-based).
func (s Settings) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > len(s.Backoff) {
		return s.Backoff[len(s.Backoff)-1]
	}
	return s.Backoff[attempt-1]
}

// EnsureTopology creates or updates the streams, the KV buckets, the object
// store and every durable consumer. It is idempotent, and every service calls
// it at start so that whichever starts first provisions the rest; consumers
// exist before their service runs, so no event is missed.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("bus settings: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "kgraph events (CloudEvents, binary mode)",
		Subjects:    []string{events.SubjectAllEvents},
		Storage:     s.Storage,
		Replicas:    s.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Duplicates:  s.DuplicateWindow,
		MaxMsgSize:  4 << 20,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamEvents, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamDeadLetter,
		Description: "kgraph dead letters: original headers and payload plus the reason",
		Subjects:    []string{events.SubjectAllDead},
		Storage:     s.Storage,
		Replicas:    s.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Duplicates:  s.DuplicateWindow,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamDeadLetter, err)
	}
	for _, b := range []jetstream.KeyValueConfig{{Bucket: BucketJobs}, {Bucket: BucketDedup}, {Bucket: BucketLLMCache},
		{Bucket: BucketQueryCache, TTL: 24 * time.Hour}} {
		b.History, b.Storage, b.Replicas = 1, s.Storage, s.Replicas
		if _, err := js.CreateOrUpdateKeyValue(ctx, b); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", b.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: BucketDocuments, Storage: s.Storage, Replicas: s.Replicas}); err != nil {
		return fmt.Errorf("ensure object store %s: %w", BucketDocuments, err)
	}
	for _, c := range Consumers() {
		if _, err := js.CreateOrUpdateConsumer(ctx, StreamEvents, consumerConfig(c, s)); err != nil {
			return fmt.Errorf("ensure consumer %s: %w", c.Name, err)
		}
	}
	return nil
}

func consumerConfig(c ConsumerSpec, s Settings) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Name,
		Description:   c.Description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       s.AckWait,
		// Unbounded on the server: the adapter bounds deliveries itself and
		// dead-letters, so no message can stall unseen (see Settings.MaxDeliver).
		MaxDeliver:    -1,
		MaxAckPending: s.MaxAckPending,
	}
	subjects := c.Subjects()
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	return cfg
}
