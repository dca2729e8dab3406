package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kgraph-dev/kgraph/events"
)

// Headers of a replayed event, beside its original headers. A replayed
// event that fails again is dead-lettered with them, so its new dead letter
// names the one it was replayed from.
const (
	HeaderReplayOf       = "Kg-Replay-Of"
	HeaderReplayConsumer = "Kg-Replay-Consumer"
)

// DeadLetterPreviewBytes bounds the payload text of a listed dead letter;
// Get returns the whole payload.
const DeadLetterPreviewBytes = 4 << 10

// Bounds of one List call: the entries returned, and the dead letters read
// to find them (a namespace filter may skip many), after which the page
// ends early with a cursor to go on from.
const (
	DeadLetterMaxLimit     = 500
	deadLetterDefaultLimit = 50
	deadLetterScanLimit    = 2000
)

// Dead-letter store errors.
var (
	ErrDeadLetterNotFound = errors.New("dead letter not found")
	// ErrAlreadyReplayed: another replay of the dead letter removed it while
	// this one ran; the event was republished once.
	ErrAlreadyReplayed = errors.New("dead letter already replayed")
	// ErrNotReplayable: the dead letter does not name an event subject to
	// republish on.
	ErrNotReplayable = errors.New("dead letter cannot be replayed")
)

// DeadLetter is one entry of the dead-letter stream.
type DeadLetter struct {
	// Seq is the entry's sequence in the DEADLETTER stream: its id.
	Seq uint64
	// Time the event was dead-lettered.
	Time     time.Time
	Consumer string
	// Subject the event was published on (in EVENTS).
	Subject string
	// StreamSeq is the event's sequence in EVENTS.
	StreamSeq uint64
	// Type and EventID come from the CloudEvents headers; empty when the
	// message was not an event.
	Type    string
	EventID string
	// JobID and Namespace come from the payload; empty when it names none
	// (or is not a JSON object).
	JobID     string
	Namespace string
	Reason    string
	// Deliveries of the event to the consumer before it gave up.
	Deliveries uint64
	// ReplayOf is the dead letter this event had been replayed from (0 for
	// none).
	ReplayOf uint64
	// Payload is the payload as text, invalid UTF-8 replaced by U+FFFD; in
	// listings it is cut to DeadLetterPreviewBytes (PayloadTruncated).
	Payload          string
	PayloadBytes     int
	PayloadTruncated bool
	// Headers are the event's original headers (Get only; nil in listings).
	Headers map[string][]string
}

// DeadLetterFilter selects the dead letters List returns.
type DeadLetterFilter struct {
	// Consumer keeps the dead letters of one consumer; empty keeps all.
	Consumer string
	// Namespaces, when not nil, keeps only entries of these namespaces;
	// entries that name no namespace are then left out too. Nil keeps every
	// entry.
	Namespaces []string
	// AfterSeq lists entries after this DEADLETTER sequence (a page's Next).
	AfterSeq uint64
}

// DeadLetterPage is one page of dead letters, oldest first.
type DeadLetterPage struct {
	Entries []DeadLetter
	// Next is the AfterSeq of the next page; 0 on the last page. A page may
	// hold fewer entries than asked for (even none) and still have a Next:
	// List reads a bounded number of dead letters per call.
	Next uint64
}

// Replayed reports a replay.
type Replayed struct {
	// Seq is the dead letter replayed (now removed from DEADLETTER).
	Seq     uint64
	Subject string
	EventID string
	// MsgID is the Nats-Msg-Id the event was republished with.
	MsgID string
	// StreamSeq is the republished event's sequence in EVENTS.
	StreamSeq uint64
	// Duplicate: the event had already been republished by an earlier
	// attempt whose removal of the dead letter failed, and was not
	// published again.
	Duplicate bool
}

// DeadLetterStore lists, shows and replays the DEADLETTER stream.
//
// A replay republishes the original message (subject, headers, payload) to
// EVENTS and then deletes the dead letter: the stream is the list of what
// still needs attention, and a replayed event that fails again comes back as
// a new dead letter naming the old one (HeaderReplayOf). The replayed event
// carries a Nats-Msg-Id of its own, derived from the dead letter: the
// original id (the event id) may still be inside the EVENTS duplicate
// window, where JetStream would silently drop the replay; a replay-specific
// id both gets through and makes concurrent or retried replays of one dead
// letter publish once. A second replay after a completed one finds no dead
// letter (ErrDeadLetterNotFound); one that raced with it gets
// ErrAlreadyReplayed.
//
// The republished event reaches every consumer that filters its subject,
// not only the one that dead-lettered it: consumers are idempotent under
// redelivery, and HeaderReplayConsumer says which consumer it was for.
type DeadLetterStore struct {
	js jetstream.JetStream
}

// NewDeadLetterStore returns the store of the DEADLETTER stream on js (see
// EnsureTopology).
func NewDeadLetterStore(js jetstream.JetStream) *DeadLetterStore { return &DeadLetterStore{js: js} }

// consumerToken matches a name that is a single subject token.
var consumerToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// List returns up to limit dead letters matching f, oldest first (limit 0
// means 50; it is capped at DeadLetterMaxLimit).
func (s *DeadLetterStore) List(ctx context.Context, f DeadLetterFilter, limit int) (DeadLetterPage, error) {
	if limit <= 0 {
		limit = deadLetterDefaultLimit
	}
	limit = min(limit, DeadLetterMaxLimit)
	subject := events.SubjectAllDead
	if f.Consumer != "" {
		if !consumerToken.MatchString(f.Consumer) {
			return DeadLetterPage{}, fmt.Errorf("list dead letters: consumer %q is not a consumer name", f.Consumer)
		}
		subject = events.DeadLetterSubject(f.Consumer)
	}
	page := DeadLetterPage{Entries: []DeadLetter{}}
	if f.AfterSeq == math.MaxUint64 {
		return page, nil
	}
	st, err := s.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return DeadLetterPage{}, fmt.Errorf("list dead letters: %w", err)
	}
	seq := f.AfterSeq + 1
	for range deadLetterScanLimit {
		// The next message on the subject at or after seq: one round trip
		// per dead letter, and no consumer to create and clean up.
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return page, nil
		}
		if err != nil {
			return DeadLetterPage{}, fmt.Errorf("list dead letters from %d: %w", seq, err)
		}
		e := deadLetterOf(m, DeadLetterPreviewBytes, false)
		if f.keeps(e) {
			if len(page.Entries) == limit {
				page.Next = page.Entries[limit-1].Seq
				return page, nil
			}
			page.Entries = append(page.Entries, e)
		}
		if m.Sequence == math.MaxUint64 {
			return page, nil
		}
		seq = m.Sequence + 1
	}
	page.Next = seq - 1
	return page, nil
}

func (f DeadLetterFilter) keeps(e DeadLetter) bool {
	if f.Namespaces == nil {
		return true
	}
	if e.Namespace == "" {
		return false
	}
	for _, ns := range f.Namespaces {
		if ns == e.Namespace {
			return true
		}
	}
	return false
}

// Get returns one dead letter with its whole payload and original headers.
func (s *DeadLetterStore) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	st, err := s.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	m, err := deadLetterMsg(ctx, st, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	return deadLetterOf(m, -1, true), nil
}

func deadLetterMsg(ctx context.Context, st jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, error) {
	if seq == 0 {
		return nil, fmt.Errorf("dead letter 0: %w", ErrDeadLetterNotFound)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dead letter %d: %w", seq, ErrDeadLetterNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return m, nil
}

// ReplayMsgID is the Nats-Msg-Id a replay of dead letter seq publishes with.
// The original stream sequence is part of it, so that a DEADLETTER stream
// recreated (its sequences starting again) within the duplicate window does
// not make a new dead letter's replay look like an old one's.
func ReplayMsgID(seq uint64, consumer string, streamSeq uint64) string {
	return "dlq-replay-" + strconv.FormatUint(seq, 10) + "-" + consumer + "-" + strconv.FormatUint(streamSeq, 10)
}

// Replay republishes dead letter seq to EVENTS and removes it (see
// DeadLetterStore).
func (s *DeadLetterStore) Replay(ctx context.Context, seq uint64) (Replayed, error) {
	st, err := s.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return Replayed{}, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	m, err := deadLetterMsg(ctx, st, seq)
	if err != nil {
		return Replayed{}, err
	}
	dl := deadLetterOf(m, 0, false)
	if !strings.HasPrefix(dl.Subject, events.SubjectPrefix) || strings.ContainsAny(dl.Subject, "*> \t\r\n") {
		return Replayed{}, fmt.Errorf("dead letter %d: subject %q is not an event subject: %w", seq, dl.Subject, ErrNotReplayable)
	}
	msg := nats.NewMsg(dl.Subject)
	for k, vs := range m.Header {
		// The dead-letter annotations go, and so do JetStream's publish
		// controls (the dead letter's own Nats-Msg-Id among them).
		if hasPrefixFold(k, "Kg-Dlq-") || hasPrefixFold(k, "Nats-") || strings.EqualFold(k, HeaderReplayOf) || strings.EqualFold(k, HeaderReplayConsumer) {
			continue
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	msg.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	msg.Header.Set(HeaderReplayConsumer, dl.Consumer)
	msg.Data = m.Data
	id := ReplayMsgID(seq, dl.Consumer, dl.StreamSeq)
	// No WithExpectStream: its header would be stored with the event, and
	// copied into the dead letter should the event fail again, whose
	// publish to DEADLETTER it would then refuse.
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		return Replayed{}, fmt.Errorf("replay dead letter %d to %s: %w", seq, dl.Subject, err)
	}
	if ack.Stream != StreamEvents {
		return Replayed{}, fmt.Errorf("replay dead letter %d: subject %s is stored by stream %s, not %s", seq, dl.Subject, ack.Stream, StreamEvents)
	}
	out := Replayed{Seq: seq, Subject: dl.Subject, EventID: dl.EventID, MsgID: id, StreamSeq: ack.Sequence, Duplicate: ack.Duplicate}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		// The delete API reports a missing message only in its text: look.
		if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return out, fmt.Errorf("dead letter %d: %w", seq, ErrAlreadyReplayed)
		}
		return out, fmt.Errorf("remove replayed dead letter %d (replaying it again publishes nothing new within the duplicate window): %w", seq, err)
	}
	return out, nil
}

// deadLetterOf reads a dead letter; preview < 0 keeps the whole payload.
func deadLetterOf(m *jetstream.RawStreamMsg, preview int, withHeaders bool) DeadLetter {
	h := m.Header
	e := DeadLetter{
		Seq:          m.Sequence,
		Time:         m.Time,
		Consumer:     h.Get(HeaderDLQConsumer),
		Subject:      h.Get(HeaderDLQSubject),
		Reason:       h.Get(HeaderDLQReason),
		Type:         ceHeader(h, events.HeaderType),
		EventID:      ceHeader(h, events.HeaderID),
		PayloadBytes: len(m.Data),
	}
	if e.Consumer == "" {
		e.Consumer = strings.TrimPrefix(m.Subject, events.DeadLetterPrefix)
	}
	e.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQStreamSeq), 10, 64)
	e.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDLQDeliveries), 10, 64)
	e.ReplayOf, _ = strconv.ParseUint(h.Get(HeaderReplayOf), 10, 64)
	if e.Time.IsZero() {
		e.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime))
	}
	e.JobID, e.Namespace = jobOfPayload(m.Data)
	data := m.Data
	if preview >= 0 && len(data) > preview {
		cut := preview
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		data, e.PayloadTruncated = data[:cut], true
	}
	e.Payload = strings.ToValidUTF8(string(data), "\uFFFD")
	if withHeaders {
		e.Headers = map[string][]string{}
		for k, vs := range h {
			if !hasPrefixFold(k, "Kg-Dlq-") && !hasPrefixFold(k, "Nats-") {
				e.Headers[k] = append([]string(nil), vs...)
			}
		}
	}
	return e
}

// ceHeader reads a CloudEvents header as the codec does: the name in any
// case, the value percent-decoded (kept as sent when it does not decode).
func ceHeader(h nats.Header, name string) string {
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			if v, err := events.PercentDecode(vs[0]); err == nil {
				return v
			}
			return strings.ToValidUTF8(vs[0], "\uFFFD")
		}
	}
	return ""
}

// jobOfPayload reads job_id and namespace of a payload. Visibility is
// decided on the namespace, so a payload that could be read as naming
// another one (encoding/json matches member names in any case) names none.
func jobOfPayload(data []byte) (jobID, namespace string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return "", ""
	}
	str := func(name string, maxLen int) string {
		var v string
		for k, raw := range obj {
			if strings.EqualFold(k, name) && k != name {
				return ""
			}
			if k == name && json.Unmarshal(raw, &v) != nil {
				return ""
			}
		}
		if len(v) > maxLen || !refPattern.MatchString(v) {
			return ""
		}
		return v
	}
	return str("job_id", events.MaxIDLength), str("namespace", maxNamespaceLength)
}

// maxNamespaceLength is the longest namespace the event schemas accept.
const maxNamespaceLength = 64

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
