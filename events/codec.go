package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Header names of the CloudEvents NATS binding (binary content mode) and the
// JetStream de-duplication header.
const (
	headerPrefix    = "ce-"
	HeaderID        = "ce-id"
	HeaderSource    = "ce-source"
	HeaderType      = "ce-type"
	HeaderSpec      = "ce-specversion"
	HeaderSubject   = "ce-subject"
	HeaderTime      = "ce-time"
	HeaderDataType  = "ce-datacontenttype"
	HeaderTrace     = "ce-traceparent"
	HeaderMsgID     = "Nats-Msg-Id"
	HeaderTraceW3C  = "traceparent"
	contentTypeJSON = "application/json"
)

// Encode turns an event into a NATS message in binary content mode: every
// attribute in a percent-encoded ce- header, the payload as JSON in the body,
// Nats-Msg-Id set to the event id so JetStream drops a re-published copy.
func Encode[T Payload](e Event[T]) (*nats.Msg, error) {
	subject, err := SubjectOf(e.Type())
	if err != nil {
		return nil, err
	}
	if e.ID == "" || e.Source == "" {
		return nil, fmt.Errorf("%w: id and source are required", ErrInvalidEvent)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", e.Type(), err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	set := func(k, v string) { m.Header[k] = []string{PercentEncode(v)} }
	set(HeaderSpec, SpecVersion)
	set(HeaderID, e.ID)
	set(HeaderSource, e.Source)
	set(HeaderType, string(e.Type()))
	set(HeaderDataType, contentTypeJSON)
	if e.Subject != "" {
		set(HeaderSubject, e.Subject)
	}
	if !e.Time.IsZero() {
		set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	if e.TraceParent != "" {
		set(HeaderTrace, e.TraceParent)
		// The plain W3C header is for tracing middleware that knows nothing of
		// CloudEvents; a well-formed traceparent never needs escaping, and a
		// malformed one is still carried by ce-traceparent.
		if PercentEncode(e.TraceParent) == e.TraceParent {
			m.Header[HeaderTraceW3C] = []string{e.TraceParent}
		}
	}
	// nats.go trims header values and turns CR/LF into spaces, so a raw id
	// could reach JetStream altered and collide with another id; the encoded
	// id is exactly the ce-id header value and is the id itself for every id
	// made of printable ASCII without space, '"' or '%'.
	m.Header[HeaderMsgID] = []string{PercentEncode(e.ID)}
	return m, nil
}

// Envelope is a decoded CloudEvent whose payload is not yet decoded.
type Envelope struct {
	ID              string
	Source          string
	Type            Type
	Subject         string
	Time            time.Time
	TraceParent     string
	DataContentType string
	Extensions      map[string]string
	Data            json.RawMessage
}

// DecodeEnvelope reads a NATS message in either content mode: structured
// when Content-Type starts with application/cloudevents, binary otherwise.
// Header names are matched case-insensitively, values percent-decoded.
func DecodeEnvelope(h nats.Header, data []byte) (Envelope, error) {
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, "content-type") &&
			strings.HasPrefix(strings.ToLower(vs[0]), "application/cloudevents") {
			// A structured event carries its attributes in the body; ce-
			// headers beside it are not part of the event.
			return decodeStructured(data)
		}
	}
	attrs := make(map[string]string, len(h))
	var plainTrace string
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		if lk == HeaderTraceW3C {
			plainTrace = vs[0]
			continue
		}
		name, ok := strings.CutPrefix(lk, headerPrefix)
		if !ok {
			continue
		}
		v, err := PercentDecode(vs[0])
		if err != nil {
			return Envelope{}, fmt.Errorf("%w: header %s: %v", ErrInvalidEvent, k, err)
		}
		attrs[name] = v
	}
	if sv := attrs["specversion"]; sv != SpecVersion {
		return Envelope{}, fmt.Errorf("%w: ce-specversion %q, want %q", ErrInvalidEvent, sv, SpecVersion)
	}
	env := Envelope{Extensions: map[string]string{}, Data: data}
	for k, v := range attrs {
		switch k {
		case "id":
			env.ID = v
		case "source":
			env.Source = v
		case "type":
			env.Type = Type(v)
		case "subject":
			env.Subject = v
		case "datacontenttype":
			env.DataContentType = v
		case "traceparent":
			env.TraceParent = v
		case "specversion":
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Envelope{}, fmt.Errorf("%w: ce-time %q is not RFC 3339", ErrInvalidEvent, v)
			}
			env.Time = t
		default:
			if isAttributeName(k) {
				env.Extensions[k] = v
			}
		}
	}
	// Tracing is best effort: a plain traceparent that is not printable
	// ASCII is ignored rather than failing the event.
	if env.TraceParent == "" && plainTrace != "" && PercentEncode(plainTrace) == plainTrace {
		env.TraceParent = plainTrace
	}
	return env, env.check()
}

// isStructuredAttr reports whether decodeStructured maps a member of a
// structured event to an Envelope field; every other string member is an
// extension.
func isStructuredAttr(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "traceparent", "datacontenttype", "data", "data_base64":
		return true
	}
	return false
}

// isAttributeName reports whether name is a valid CloudEvents attribute name
// (lower-case ASCII letters and digits). Other headers or members that look
// like attributes are not part of the event and are ignored.
func isAttributeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func decodeStructured(data []byte) (Envelope, error) {
	if !utf8.Valid(data) {
		return Envelope{}, fmt.Errorf("%w: structured event is not valid UTF-8", ErrInvalidEvent)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Envelope{}, fmt.Errorf("%w: structured event is not a JSON object: %v", ErrInvalidEvent, err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(raw[k], &s)
		return s
	}
	if sv := str("specversion"); sv != SpecVersion {
		return Envelope{}, fmt.Errorf("%w: specversion %q, want %q", ErrInvalidEvent, sv, SpecVersion)
	}
	env := Envelope{ID: str("id"), Source: str("source"), Type: Type(str("type")), Subject: str("subject"),
		TraceParent: str("traceparent"), DataContentType: str("datacontenttype"), Data: raw["data"], Extensions: map[string]string{}}
	if ts := str("time"); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Envelope{}, fmt.Errorf("%w: time %q is not RFC 3339", ErrInvalidEvent, ts)
		}
		env.Time = t
	}
	for k := range raw {
		if v := str(k); !isStructuredAttr(k) && isAttributeName(k) && v != "" {
			env.Extensions[k] = v
		}
	}
	return env, env.check()
}

func (e Envelope) check() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: missing id", ErrInvalidEvent)
	case e.Source == "":
		return fmt.Errorf("%w: missing source", ErrInvalidEvent)
	case e.Type == "":
		return fmt.Errorf("%w: missing type", ErrInvalidEvent)
	case e.DataContentType != "" && !isJSONMediaType(e.DataContentType):
		return fmt.Errorf("%w: datacontenttype %q, want %s", ErrInvalidEvent, e.DataContentType, contentTypeJSON)
	case !utf8.Valid(e.Data):
		return fmt.Errorf("%w: payload is not valid UTF-8", ErrInvalidEvent)
	}
	return nil
}

// isJSONMediaType accepts application/json with any parameters, in any case,
// as media types are case-insensitive.
func isJSONMediaType(mt string) bool {
	base, _, _ := strings.Cut(mt, ";")
	return strings.EqualFold(strings.TrimSpace(base), contentTypeJSON)
}

// Decode turns an envelope into a typed event: the type must be T's, the
// payload must satisfy T's JSON Schema both as sent and as unmarshalled.
func Decode[T Payload](env Envelope, v *Validator) (Event[T], error) {
	var zero T
	if env.Type != zero.EventType() {
		if _, known := Lookup(env.Type); !known {
			return Event[T]{}, fmt.Errorf("%w: %q", ErrUnknownType, env.Type)
		}
		return Event[T]{}, fmt.Errorf("%w: type %q, want %q", ErrInvalidEvent, env.Type, zero.EventType())
	}
	var data T
	digest := digestOf(env.Type, env.Data)
	if v.checked(digest) {
		// The same bytes passed every check below before and unmarshal
		// to the same value.
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return Event[T]{}, fmt.Errorf("%w: %s payload: %v", ErrInvalidEvent, env.Type, err)
		}
		return Event[T]{ID: env.ID, Source: env.Source, Subject: env.Subject, Time: env.Time, TraceParent: env.TraceParent, Data: data}, nil
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		if verr := v.Validate(env.Type, env.Data); verr != nil {
			return Event[T]{}, verr // the schema's message is the clearer one
		}
		return Event[T]{}, fmt.Errorf("%w: %s payload: %v", ErrInvalidEvent, env.Type, err)
	}
	// encoding/json matches member names case-insensitively and keeps the
	// last match, so {"namespace":"ok","NAMESPACE":"../x"} passes the schema
	// yet decodes to "../x". Validating what was decoded closes that gap.
	decoded, err := json.Marshal(data)
	if err != nil {
		return Event[T]{}, fmt.Errorf("%w: re-encode %s payload: %v", ErrInvalidEvent, env.Type, err)
	}
	// Events written by kgraph's own services re-encode to the very bytes
	// that were sent; only when they differ does the payload as sent need
	// a validation pass of its own (schema validation is the costliest step
	// of handling an event).
	if !bytes.Equal(decoded, env.Data) {
		if err := v.Validate(env.Type, env.Data); err != nil {
			return Event[T]{}, err
		}
	}
	if err := v.Validate(env.Type, decoded); err != nil {
		return Event[T]{}, fmt.Errorf("decoded payload: %w", err)
	}
	v.rememberChecked(digest)
	return Event[T]{ID: env.ID, Source: env.Source, Subject: env.Subject, Time: env.Time, TraceParent: env.TraceParent, Data: data}, nil
}

// PercentEncode escapes a header value as the NATS binding requires: space,
// double quote, percent and every byte outside printable ASCII (U+0021–U+007E).
func PercentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7F || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0F])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// PercentDecode reverses PercentEncode, first removing surrounding double
// quotes, and rejects byte sequences that are not valid UTF-8.
func PercentDecode(s string) (string, error) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape at %d", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad escape %q at %d", s[i:i+3], i)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("not valid UTF-8 after decoding")
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
