package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Errors returned by the codec. Both mean the message can never be handled,
// however often it is redelivered: the bus adapter dead-letters it.
var (
	ErrInvalidEvent = errors.New("invalid event")
	ErrUnknownType  = errors.New("unknown event type")
)

// SpecVersion is the CloudEvents version kgraph speaks.
const SpecVersion = "1.0"

// Payload is implemented by every payload struct of the catalogue.
type Payload interface {
	Ref() JobRef
	EventType() Type
}

// EventType implementations tie each payload to its one type.
func (DocumentSubmitted) EventType() Type   { return TypeDocumentSubmitted }
func (DocumentDuplicate) EventType() Type   { return TypeDocumentDuplicate }
func (DocumentAccepted) EventType() Type    { return TypeDocumentAccepted }
func (DocumentChunked) EventType() Type     { return TypeDocumentChunked }
func (ChunkCreated) EventType() Type        { return TypeChunkCreated }
func (ChunkExtracted) EventType() Type      { return TypeChunkExtracted }
func (ChunkMerged) EventType() Type         { return TypeChunkMerged }
func (ChunkIndexed) EventType() Type        { return TypeChunkIndexed }
func (JobCompleted) EventType() Type        { return TypeJobCompleted }
func (JobFailed) EventType() Type           { return TypeJobFailed }
func (CommunitiesUpdated) EventType() Type  { return TypeCommunitiesUpdated }
func (JobAwaitingApproval) EventType() Type { return TypeJobAwaitingApproval }
func (JobApproved) EventType() Type         { return TypeJobApproved }
func (JobCancelled) EventType() Type        { return TypeJobCancelled }
func (JobExpired) EventType() Type          { return TypeJobExpired }
func (DocumentDeleted) EventType() Type     { return TypeDocumentDeleted }
func (DocumentUnmerged) EventType() Type    { return TypeDocumentUnmerged }
func (DocumentUnindexed) EventType() Type   { return TypeDocumentUnindexed }

// Event is a CloudEvent with a typed payload.
type Event[T Payload] struct {
	ID     string
	Source string
	// Subject is the CloudEvents subject attribute; kgraph sets it to the job id.
	Subject     string
	Time        time.Time
	TraceParent string
	Data        T
}

// Type returns the event's CloudEvents type, which the payload decides.
func (e Event[T]) Type() Type { return e.Data.EventType() }

// New builds an event. The id must be deterministic for derived events (see
// DerivedID) so that a redelivered handler republishes the same ids and the
// stream's duplicate window drops the copies.
func New[T Payload](id, source string, data T, now time.Time) Event[T] {
	return Event[T]{ID: id, Source: source, Subject: data.Ref().JobID, Time: now.UTC(), Data: data}
}

// Caused builds an event derived from cause: its id is DerivedID(cause.ID,
// the new type, keys...), and it carries the cause's trace context.
func Caused[T Payload, C Payload](cause Event[C], source string, data T, now time.Time, keys ...string) Event[T] {
	e := New(DerivedID(cause.ID, append([]string{string(data.EventType())}, keys...)...), source, data, now)
	e.TraceParent = cause.TraceParent
	return e
}

// DerivedID returns a stable id for an event derived from causeID: the same
// cause and keys always give the same id.
func DerivedID(causeID string, keys ...string) string {
	h := sha256.New()
	h.Write([]byte(causeID))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// NormalizeContent is the normalisation under the dedup hash: line endings
// become \n, trailing spaces on each line and blank lines at both ends go.
// Two texts that differ only in those ways are the same document.
func NormalizeContent(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// ContentSHA256 is the dedup key of a text: hex SHA-256 of its normalised form.
func ContentSHA256(s string) string {
	sum := sha256.Sum256([]byte(NormalizeContent(s)))
	return hex.EncodeToString(sum[:])
}
