// Package events is kgraph's event contract: the CloudEvents types, their
// payloads, the NATS subjects they travel on, their JSON Schemas and the NATS
// binary-mode codec. Nothing outside this package defines a type string or a
// subject.
package events

import "fmt"

// Type is a CloudEvents "type" attribute: reverse-DNS, with the payload
// version as the last segment. A breaking payload change gets a new type
// (…v2) published beside the old one; additive changes keep the version.
type Type string

// The event types of the ingestion flow. The order follows the flow.
const (
	TypeDocumentSubmitted Type = "dev.kgraph.document.submitted.v1"
	TypeDocumentDuplicate Type = "dev.kgraph.document.duplicate.v1"
	TypeDocumentAccepted  Type = "dev.kgraph.document.accepted.v1"
	TypeDocumentChunked   Type = "dev.kgraph.document.chunked.v1"
	TypeChunkCreated      Type = "dev.kgraph.chunk.created.v1"
	TypeChunkExtracted    Type = "dev.kgraph.chunk.extracted.v1"
	TypeChunkMerged       Type = "dev.kgraph.chunk.merged.v1"
	TypeChunkIndexed      Type = "dev.kgraph.chunk.indexed.v1"
	TypeJobCompleted      Type = "dev.kgraph.job.completed.v1"
	TypeJobFailed         Type = "dev.kgraph.job.failed.v1"
	// The approval gate, cancellation and expiry.
	TypeJobAwaitingApproval Type = "dev.kgraph.job.awaiting_approval.v1"
	TypeJobApproved         Type = "dev.kgraph.job.approved.v1"
	TypeJobCancelled        Type = "dev.kgraph.job.cancelled.v1"
	TypeJobExpired          Type = "dev.kgraph.job.expired.v1"
	// Deletion of a document, a job of its own.
	TypeDocumentDeleted   Type = "dev.kgraph.document.deleted.v1"
	TypeDocumentUnmerged  Type = "dev.kgraph.document.unmerged.v1"
	TypeDocumentUnindexed Type = "dev.kgraph.document.unindexed.v1"
	// TypeCommunitiesUpdated follows the flow rather than being part of it:
	// the graph writer rebuilds a namespace's communities after jobs
	// complete.
	TypeCommunitiesUpdated Type = "dev.kgraph.communities.updated.v1"
)

// Subject scheme, the one place it is defined:
//
//	kgraph.events.<noun>.<verb>   every event of the flow (stream EVENTS)
//	kgraph.dlq.<consumer>         dead letters, per consumer (stream DEADLETTER)
//	kgraph.svc.query.ask          query request/reply (core NATS, no stream)
//	kgraph.svc.query.stream       streamed answers
//	kgraph.svc.graph.*            graph exploration and stats (events/graphapi.go)
//	kgraph.svc.scheduler.*        the projection's scheduler (events/scheduler.go)
//
// Event subjects carry no version: a consumer filters by subject and the
// codec checks the versioned type, so v1 and v2 of an event can share a
// subject during a migration.
const (
	SubjectPrefix    = "kgraph.events."
	SubjectAllEvents = "kgraph.events.>"
	DeadLetterPrefix = "kgraph.dlq."
	SubjectAllDead   = "kgraph.dlq.>"
	QuerySubject     = "kgraph.svc.query.ask"
)

// Spec describes one catalogue entry.
type Spec struct {
	Type    Type
	Subject string
	// Payload returns a zero value of the payload, for schema generation.
	Payload func() any
	Summary string
}

// Catalog lists every event type, in flow order.
func Catalog() []Spec {
	return []Spec{
		{TypeDocumentSubmitted, SubjectPrefix + "document.submitted", func() any { return DocumentSubmitted{} },
			"A document was submitted for ingestion (by the REST edge or by an outside publisher)."},
		{TypeDocumentDuplicate, SubjectPrefix + "document.duplicate", func() any { return DocumentDuplicate{} },
			"The submitted content was already claimed in its namespace; the job ends as duplicate."},
		{TypeDocumentAccepted, SubjectPrefix + "document.accepted", func() any { return DocumentAccepted{} },
			"The document won its dedup claim and goes on to chunking."},
		{TypeDocumentChunked, SubjectPrefix + "document.chunked", func() any { return DocumentChunked{} },
			"The document was split into chunks; carries the chunk count."},
		{TypeChunkCreated, SubjectPrefix + "chunk.created", func() any { return ChunkCreated{} },
			"One chunk, ready for extraction (shared across extractor replicas)."},
		{TypeChunkExtracted, SubjectPrefix + "chunk.extracted", func() any { return ChunkExtracted{} },
			"Entities and relations extracted from one chunk."},
		{TypeChunkMerged, SubjectPrefix + "chunk.merged", func() any { return ChunkMerged{} },
			"One chunk's entities and relations are merged into the graph."},
		{TypeChunkIndexed, SubjectPrefix + "chunk.indexed", func() any { return ChunkIndexed{} },
			"One chunk's text and entity names are embedded and stored as vectors."},
		{TypeJobCompleted, SubjectPrefix + "job.completed", func() any { return JobCompleted{} },
			"An ingestion job has every chunk merged and indexed, or a deletion job has the document removed from the graph and the vectors."},
		{TypeJobFailed, SubjectPrefix + "job.failed", func() any { return JobFailed{} },
			"The job cannot complete; carries the stage and the reason."},
		{TypeJobAwaitingApproval, SubjectPrefix + "job.awaiting_approval", func() any { return JobAwaitingApproval{} },
			"The job won its dedup claim and waits for approval, with a cost estimate."},
		{TypeJobApproved, SubjectPrefix + "job.approved", func() any { return JobApproved{} },
			"A job awaiting approval was approved; dedup accepts the document."},
		{TypeJobCancelled, SubjectPrefix + "job.cancelled", func() any { return JobCancelled{} },
			"A pending, awaiting or processing job was cancelled; extraction stops between chunks."},
		{TypeJobExpired, SubjectPrefix + "job.expired", func() any { return JobExpired{} },
			"A job waited for approval past the configured period (published by the projection's scheduler)."},
		{TypeDocumentDeleted, SubjectPrefix + "document.deleted", func() any { return DocumentDeleted{} },
			"A document is to be removed; starts a deletion job."},
		{TypeDocumentUnmerged, SubjectPrefix + "document.unmerged", func() any { return DocumentUnmerged{} },
			"A deleted document's chunks and share of the graph are gone."},
		{TypeDocumentUnindexed, SubjectPrefix + "document.unindexed", func() any { return DocumentUnindexed{} },
			"A deleted document's vectors are gone."},
		{TypeCommunitiesUpdated, SubjectPrefix + "communities.updated", func() any { return CommunitiesUpdated{} },
			"A namespace's communities and their reports were rebuilt after a job completed."},
	}
}

// Lookup returns the catalogue entry of a type.
func Lookup(t Type) (Spec, bool) {
	for _, s := range Catalog() {
		if s.Type == t {
			return s, true
		}
	}
	return Spec{}, false
}

// SubjectOf returns the subject an event type is published on.
func SubjectOf(t Type) (string, error) {
	s, ok := Lookup(t)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownType, t)
	}
	return s.Subject, nil
}

// DeadLetterSubject is where a consumer's dead letters go.
func DeadLetterSubject(consumer string) string { return DeadLetterPrefix + consumer }
