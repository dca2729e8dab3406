package events_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func jobFailed() events.JobFailed {
	return events.JobFailed{
		JobRef: events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "default"},
		Stage:  "extractor",
		Reason: "model endpoint returned 503",
	}
}

// encodedFixture is a fixture event encoded in binary mode.
func encodedFixture(t *testing.T) *nats.Msg {
	t.Helper()
	e := events.New("evt-1", "urn:kgraph:test", jobFailed(), fixtureTime())
	e.TraceParent = testTraceParent
	msg, err := events.Encode(e)
	require.NoError(t, err)
	return msg
}

func TestEncodeDecodeAttributes(t *testing.T) {
	v := newValidator(t)
	berlin := time.FixedZone("CEST", 2*60*60)
	tests := []struct {
		name    string
		id      string
		source  string
		subject string
		time    time.Time
		trace   string
	}{
		{"plain", "0c6f3f0a9b1e4f3c8f1d2a3b4c5d6e7f", "urn:kgraph:extractor", "job-1", fixtureTime(), testTraceParent},
		{"euro and emoji", "evt-€", "https://example.com/€uro 😀", "Jöb ü", fixtureTime(), testTraceParent},
		{"space quote percent", `id with "quotes" and 100%`, `/src "quoted" 50% off`, `a "b" %c`, fixtureTime(), testTraceParent},
		{"newline and tab", "id\nline2", "src\r\nline2\tend", "sub\nject", fixtureTime(), testTraceParent},
		{"leading and trailing space", " padded id ", " src ", " sub ", fixtureTime(), testTraceParent},
		{"looks encoded", "%41%42", "%25", "%", fixtureTime(), testTraceParent},
		{"surrounded by quotes", `"quoted id"`, `"src"`, `"`, fixtureTime(), testTraceParent},
		{"non-UTC time", "evt-2", "urn:kgraph:test", "job-1", time.Date(2025, 6, 1, 11, 30, 0, 5, berlin), ""},
		{"no time, no subject, no trace", "evt-3", "urn:kgraph:test", "", time.Time{}, ""},
		{"trace with odd characters", "evt-4", "urn:kgraph:test", "job-1", fixtureTime(), "not a trace € \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := events.New(tt.id, tt.source, jobFailed(), tt.time)
			e.Subject = tt.subject
			e.TraceParent = tt.trace

			msg, err := events.Encode(e)
			require.NoError(t, err)
			require.Equal(t, "kgraph.events.job.failed", msg.Subject)
			for name, vs := range msg.Header {
				require.Len(t, vs, 1, "header %s", name)
				require.Equal(t, strings.TrimSpace(vs[0]), vs[0], "nats.go trims header values, so %s must not need it", name)
				require.True(t, isHeaderSafe(vs[0]), "header %s=%q is not printable ASCII", name, vs[0])
			}
			require.Equal(t, msg.Header.Get(events.HeaderID), msg.Header.Get(events.HeaderMsgID), "Nats-Msg-Id must equal ce-id")

			env, err := events.DecodeEnvelope(msg.Header, msg.Data)
			require.NoError(t, err)
			require.Equal(t, tt.id, env.ID)
			require.Equal(t, tt.source, env.Source)
			require.Equal(t, events.TypeJobFailed, env.Type)
			require.Equal(t, tt.subject, env.Subject)
			require.Equal(t, tt.trace, env.TraceParent)
			require.Equal(t, "application/json", env.DataContentType)
			require.Empty(t, env.Extensions)
			require.True(t, tt.time.Equal(env.Time), "time %v, want %v", env.Time, tt.time)

			got, err := events.Decode[events.JobFailed](env, v)
			require.NoError(t, err)
			require.Equal(t, e.ID, got.ID)
			require.Equal(t, e.Source, got.Source)
			require.Equal(t, e.Subject, got.Subject)
			require.Equal(t, e.TraceParent, got.TraceParent)
			require.True(t, e.Time.Equal(got.Time))
			require.Equal(t, e.Data, got.Data)
		})
	}
}

// isHeaderSafe reports whether a header value survives nats.go unchanged.
func isHeaderSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

func TestEncodeHeaders(t *testing.T) {
	e := events.New("evt 1", "urn:kgraph:€", jobFailed(), time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC))
	e.Subject = `job "1" 100%`
	e.TraceParent = testTraceParent
	msg, err := events.Encode(e)
	require.NoError(t, err)
	require.Equal(t, nats.Header{
		"ce-specversion":     {"1.0"},
		"ce-id":              {"evt%201"},
		"ce-source":          {"urn:kgraph:%E2%82%AC"},
		"ce-type":            {"dev.kgraph.job.failed.v1"},
		"ce-datacontenttype": {"application/json"},
		"ce-subject":         {"job%20%221%22%20100%25"},
		"ce-time":            {"2025-06-01T09:30:00Z"},
		"ce-traceparent":     {testTraceParent},
		"traceparent":        {testTraceParent},
		"Nats-Msg-Id":        {"evt%201"},
	}, msg.Header)
	require.JSONEq(t, `{"job_id":"job-1","doc_id":"doc-1","namespace":"default","stage":"extractor","reason":"model endpoint returned 503"}`, string(msg.Data))
}

func TestEncodeMsgIDIsTheID(t *testing.T) {
	for _, id := range []string{"0c6f3f0a9b1e4f3c8f1d2a3b4c5d6e7f", "4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b", "job-1:submitted"} {
		msg, err := events.Encode(events.New(id, "urn:kgraph:test", jobFailed(), fixtureTime()))
		require.NoError(t, err)
		require.Equal(t, id, msg.Header.Get(events.HeaderMsgID))
		require.Equal(t, id, msg.Header.Get(events.HeaderID))
	}
}

func TestEncodeMalformedTraceOnlyInCEHeader(t *testing.T) {
	e := events.New("evt-1", "urn:kgraph:test", jobFailed(), fixtureTime())
	e.TraceParent = "bad trace\n"
	msg, err := events.Encode(e)
	require.NoError(t, err)
	require.Equal(t, "bad%20trace%0A", msg.Header.Get(events.HeaderTrace))
	require.NotContains(t, msg.Header, events.HeaderTraceW3C)
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		event   events.Event[events.JobFailed]
		wantErr error
	}{
		{"missing id", events.New("", "urn:kgraph:test", jobFailed(), fixtureTime()), events.ErrInvalidEvent},
		{"missing source", events.New("evt-1", "", jobFailed(), fixtureTime()), events.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.Encode(tt.event)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestDecodeEnvelopeMixedCaseHeaders(t *testing.T) {
	h := nats.Header{
		"CE-SPECVERSION":     {"1.0"},
		"CE-ID":              {"evt%201"},
		"Ce-Source":          {"urn:kgraph:%E2%82%AC"},
		"Ce-Type":            {"dev.kgraph.job.failed.v1"},
		"cE-sUbJeCt":         {"job-1"},
		"Ce-Time":            {"2025-06-01T09:30:00Z"},
		"CE-DataContentType": {"Application/JSON; charset=utf-8"},
		"CE-TraceParent":     {testTraceParent},
		"Ce-Tenant":          {"acme%20corp"},
		// Not CloudEvents attribute names, so not extensions.
		"Ce-Retry-Count": {"3"},
		"ce-":            {"x"},
		"X-Other":        {"y"},
	}
	env, err := events.DecodeEnvelope(h, readFixture(t, events.TypeJobFailed))
	require.NoError(t, err)
	require.Equal(t, "evt 1", env.ID)
	require.Equal(t, "urn:kgraph:€", env.Source)
	require.Equal(t, events.TypeJobFailed, env.Type)
	require.Equal(t, "job-1", env.Subject)
	require.Equal(t, time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC), env.Time)
	require.Equal(t, testTraceParent, env.TraceParent)
	require.Equal(t, map[string]string{"tenant": "acme corp"}, env.Extensions, "extension names are lower-cased; invalid names dropped")

	_, err = events.Decode[events.JobFailed](env, newValidator(t))
	require.NoError(t, err)
}

func TestDecodeEnvelopeQuotedValues(t *testing.T) {
	h := binaryHeader(events.TypeJobFailed)
	h["ce-id"] = []string{`"evt%201"`}
	h["ce-source"] = []string{`"urn:kgraph:test"`}
	h["ce-subject"] = []string{`""`}
	h["ce-specversion"] = []string{`"1.0"`}
	env, err := events.DecodeEnvelope(h, readFixture(t, events.TypeJobFailed))
	require.NoError(t, err)
	require.Equal(t, "evt 1", env.ID)
	require.Equal(t, "urn:kgraph:test", env.Source)
	require.Equal(t, "", env.Subject)
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	payload := readFixture(t, events.TypeJobFailed)
	tests := []struct {
		name   string
		change func(h nats.Header)
	}{
		{"bad escape digit", func(h nats.Header) { h["ce-id"] = []string{"evt%G1"} }},
		{"truncated escape", func(h nats.Header) { h["ce-id"] = []string{"evt%4"} }},
		{"lone percent", func(h nats.Header) { h["ce-source"] = []string{"100%"} }},
		{"escape in quotes truncated", func(h nats.Header) { h["ce-subject"] = []string{`"a%2"`} }},
		{"invalid UTF-8 byte", func(h nats.Header) { h["ce-source"] = []string{"urn:%FF"} }},
		{"truncated UTF-8 sequence", func(h nats.Header) { h["ce-subject"] = []string{"%E2%82"} }},
		{"overlong encoding", func(h nats.Header) { h["ce-id"] = []string{"%C0%AF"} }},
		{"encoded surrogate", func(h nats.Header) { h["ce-id"] = []string{"%ED%A0%80"} }},
		{"raw invalid UTF-8", func(h nats.Header) { h["ce-source"] = []string{"urn:\xff"} }},
		{"invalid extension value", func(h nats.Header) { h["ce-tenant"] = []string{"%zz"} }},
		{"missing id", func(h nats.Header) { delete(h, "ce-id") }},
		{"empty id", func(h nats.Header) { h["ce-id"] = []string{""} }},
		{"missing source", func(h nats.Header) { delete(h, "ce-source") }},
		{"missing type", func(h nats.Header) { delete(h, "ce-type") }},
		{"missing specversion", func(h nats.Header) { delete(h, "ce-specversion") }},
		{"specversion 0.3", func(h nats.Header) { h["ce-specversion"] = []string{"0.3"} }},
		{"specversion 1.1", func(h nats.Header) { h["ce-specversion"] = []string{"1.1"} }},
		{"specversion 1", func(h nats.Header) { h["ce-specversion"] = []string{"1"} }},
		{"time is a word", func(h nats.Header) { h["ce-time"] = []string{"yesterday"} }},
		{"time without zone", func(h nats.Header) { h["ce-time"] = []string{"2025-06-01T09:30:00"} }},
		{"time with space", func(h nats.Header) { h["ce-time"] = []string{"2025-06-01%2009:30:00Z"} }},
		{"time month 13", func(h nats.Header) { h["ce-time"] = []string{"2025-13-01T09:30:00Z"} }},
		{"datacontenttype text", func(h nats.Header) { h["ce-datacontenttype"] = []string{"text/plain"} }},
		{"datacontenttype json-like", func(h nats.Header) { h["ce-datacontenttype"] = []string{"application/jsonl"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := binaryHeader(events.TypeJobFailed)
			h["ce-subject"] = []string{"job-1"}
			h["ce-time"] = []string{"2025-06-01T09:30:00Z"}
			_, err := events.DecodeEnvelope(h, payload)
			require.NoError(t, err, "the unchanged message must decode")

			tt.change(h)
			_, err = events.DecodeEnvelope(h, payload)
			require.ErrorIs(t, err, events.ErrInvalidEvent)
		})
	}
}

func TestDecodeEnvelopeRejectsInvalidUTF8Payload(t *testing.T) {
	for _, payload := range []string{
		"{\"job_id\":\"\xff\"}",
		"{\"reason\":\"caf\xc3\"}",
		"\xef\xbb\xbf\xfe{}",
	} {
		_, err := events.DecodeEnvelope(binaryHeader(events.TypeJobFailed), []byte(payload))
		require.ErrorIs(t, err, events.ErrInvalidEvent, "payload %q", payload)
	}
}

func TestTraceParent(t *testing.T) {
	tests := []struct {
		name      string
		ceTrace   []string
		w3cHeader string
		w3cTrace  []string
		want      string
	}{
		{"both headers", []string{testTraceParent}, "traceparent", []string{testTraceParent}, testTraceParent},
		{"only plain header", nil, "traceparent", []string{testTraceParent}, testTraceParent},
		{"only plain header, other case", nil, "Traceparent", []string{testTraceParent}, testTraceParent},
		{"only ce header", []string{testTraceParent}, "", nil, testTraceParent},
		{"ce header wins", []string{testTraceParent}, "traceparent", []string{"00-11111111111111111111111111111111-2222222222222222-01"}, testTraceParent},
		{"malformed plain header ignored", nil, "traceparent", []string{"caf\xc3 trace"}, ""},
		{"neither", nil, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := binaryHeader(events.TypeJobFailed)
			if tt.ceTrace != nil {
				h["ce-traceparent"] = tt.ceTrace
			}
			if tt.w3cHeader != "" {
				h[tt.w3cHeader] = tt.w3cTrace
			}
			env, err := events.DecodeEnvelope(h, readFixture(t, events.TypeJobFailed))
			require.NoError(t, err)
			require.Equal(t, tt.want, env.TraceParent)
			require.NotContains(t, env.Extensions, "traceparent")
		})
	}
}

func TestEncodeCarriesTraceInBothHeaders(t *testing.T) {
	msg := encodedFixture(t)
	require.Equal(t, testTraceParent, msg.Header.Get(events.HeaderTrace))
	require.Equal(t, testTraceParent, msg.Header.Get(events.HeaderTraceW3C))

	// Middleware that only understands W3C may strip the ce- copy.
	delete(msg.Header, events.HeaderTrace)
	env, err := events.DecodeEnvelope(msg.Header, msg.Data)
	require.NoError(t, err)
	require.Equal(t, testTraceParent, env.TraceParent)
}

func TestDecodeEnvelopeStructured(t *testing.T) {
	v := newValidator(t)
	fixture := readFixture(t, events.TypeJobFailed)
	structured := func(t *testing.T, attrs map[string]any) []byte {
		t.Helper()
		ev := map[string]any{
			"specversion":     "1.0",
			"id":              "evt 1",
			"source":          "urn:kgraph:€",
			"type":            string(events.TypeJobFailed),
			"subject":         "job-20250601-7f3a9c",
			"time":            "2025-06-01T09:30:00.5Z",
			"datacontenttype": "application/json",
			"traceparent":     testTraceParent,
			"tenant":          "acme",
			"Region":          "eu",
			"retry-count":     "3",
			"data":            json.RawMessage(fixture),
		}
		maps.Copy(ev, attrs)
		for k, v := range ev {
			if v == nil {
				delete(ev, k)
			}
		}
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		return b
	}

	for _, contentType := range []string{
		"application/cloudevents+json",
		"application/cloudevents+json; charset=utf-8",
		"Application/CloudEvents+JSON",
	} {
		t.Run(contentType, func(t *testing.T) {
			// Stray binary-mode headers, even malformed ones, do not count in
			// structured mode.
			h := nats.Header{"Content-Type": {contentType}, "ce-id": {"%zz"}, "ce-specversion": {"0.3"}}
			env, err := events.DecodeEnvelope(h, structured(t, nil))
			require.NoError(t, err)
			require.Equal(t, "evt 1", env.ID)
			require.Equal(t, "urn:kgraph:€", env.Source)
			require.Equal(t, events.TypeJobFailed, env.Type)
			require.Equal(t, "job-20250601-7f3a9c", env.Subject)
			require.Equal(t, time.Date(2025, 6, 1, 9, 30, 0, 5e8, time.UTC), env.Time)
			require.Equal(t, testTraceParent, env.TraceParent)
			require.Equal(t, map[string]string{"tenant": "acme"}, env.Extensions)

			got, err := events.Decode[events.JobFailed](env, v)
			require.NoError(t, err)
			require.Equal(t, "extractor", got.Data.Stage)
			require.Equal(t, "job-20250601-7f3a9c", got.Data.JobID)
		})
	}

	header := nats.Header{"content-type": {"application/cloudevents+json"}}
	rejects := []struct {
		name string
		body []byte
	}{
		{"not JSON", []byte("specversion=1.0")},
		{"JSON array", []byte(`[1,2]`)},
		{"wrong specversion", structured(t, map[string]any{"specversion": "0.3"})},
		{"missing specversion", structured(t, map[string]any{"specversion": nil})},
		{"missing id", structured(t, map[string]any{"id": nil})},
		{"id not a string", structured(t, map[string]any{"id": 42})},
		{"missing source", structured(t, map[string]any{"source": nil})},
		{"missing type", structured(t, map[string]any{"type": nil})},
		{"bad time", structured(t, map[string]any{"time": "June 1st"})},
		{"non-JSON data", structured(t, map[string]any{"datacontenttype": "text/plain"})},
		{"invalid UTF-8 in an attribute", bytes.Replace(structured(t, nil), []byte(`"evt 1"`), []byte("\"evt\xff\""), 1)},
		{"invalid UTF-8 in data", bytes.Replace(structured(t, nil), []byte(`"extractor"`), []byte("\"extr\xc3\""), 1)},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.DecodeEnvelope(header, tt.body)
			require.ErrorIs(t, err, events.ErrInvalidEvent)
		})
	}
}

func TestDecodeType(t *testing.T) {
	v := newValidator(t)
	msg := encodedFixture(t)
	env, err := events.DecodeEnvelope(msg.Header, msg.Data)
	require.NoError(t, err)

	_, err = events.Decode[events.JobFailed](env, v)
	require.NoError(t, err)

	_, err = events.Decode[events.JobCompleted](env, v)
	require.ErrorIs(t, err, events.ErrInvalidEvent, "another known type")
	require.NotErrorIs(t, err, events.ErrUnknownType)

	env.Type = "dev.kgraph.job.archived.v1"
	_, err = events.Decode[events.JobFailed](env, v)
	require.ErrorIs(t, err, events.ErrUnknownType)
	require.NotErrorIs(t, err, events.ErrInvalidEvent)

	env.Type = "dev.kgraph.job.failed.v2"
	_, err = events.Decode[events.JobFailed](env, v)
	require.ErrorIs(t, err, events.ErrUnknownType, "a newer version this build does not know")
}

func TestDecodeRejectsTrailingData(t *testing.T) {
	v := newValidator(t)
	payload := append(readFixture(t, events.TypeJobFailed), []byte(`{"stage":"x"}`)...)
	env, err := events.DecodeEnvelope(binaryHeader(events.TypeJobFailed), payload)
	require.NoError(t, err)
	_, err = events.Decode[events.JobFailed](env, v)
	require.ErrorIs(t, err, events.ErrInvalidEvent)
}

func TestNewAndCaused(t *testing.T) {
	berlin := time.FixedZone("CEST", 2*60*60)
	submitted := events.New("evt-root", "urn:kgraph:ingest-api", events.DocumentSubmitted{
		JobRef:  events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "default"},
		Content: "text",
	}, time.Date(2025, 6, 1, 11, 30, 0, 0, berlin))
	require.Equal(t, "job-1", submitted.Subject, "the CloudEvents subject is the job id")
	require.Equal(t, time.UTC, submitted.Time.Location())
	require.Equal(t, events.TypeDocumentSubmitted, submitted.Type())
	submitted.TraceParent = testTraceParent

	accepted := events.DocumentAccepted{JobRef: submitted.Data.JobRef, Content: "text", ContentSHA256: events.ContentSHA256("text")}
	derived := events.Caused(submitted, "urn:kgraph:dedup", accepted, fixtureTime(), "k1")
	require.Equal(t, events.DerivedID("evt-root", string(events.TypeDocumentAccepted), "k1"), derived.ID)
	require.Equal(t, testTraceParent, derived.TraceParent)
	require.Equal(t, "urn:kgraph:dedup", derived.Source)
	require.Equal(t, "job-1", derived.Subject)

	again := events.Caused(submitted, "urn:kgraph:dedup", accepted, fixtureTime().Add(time.Hour), "k1")
	require.Equal(t, derived.ID, again.ID, "a redelivered handler republishes the same id")
	other := events.Caused(submitted, "urn:kgraph:dedup", accepted, fixtureTime(), "k2")
	require.NotEqual(t, derived.ID, other.ID)
	duplicate := events.Caused(submitted, "urn:kgraph:dedup", events.DocumentDuplicate{JobRef: submitted.Data.JobRef}, fixtureTime(), "k1")
	require.NotEqual(t, derived.ID, duplicate.ID, "the derived type is part of the id")
}

// TestOutsidePublisherExample decodes the message of the nats CLI example in
// docs/events.md, header for header as the CLI sends it.
func TestOutsidePublisherExample(t *testing.T) {
	h := nats.Header{
		"ce-specversion":     {"1.0"},
		"ce-id":              {"4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b"},
		"ce-source":          {"urn:acme:wiki-sync"},
		"ce-type":            {"dev.kgraph.document.submitted.v1"},
		"ce-datacontenttype": {"application/json"},
		"ce-subject":         {"job-20250601-7f3a9c"},
		"ce-time":            {"2025-06-01T09:30:00Z"},
		"Nats-Msg-Id":        {"4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b"},
	}
	body := `{"job_id":"job-20250601-7f3a9c","doc_id":"acme:handbook.rockets-r7","namespace":"acme-support","content":"Acme Rockets ships the R-7 engine from its Tucson plant.\nThe R-7 powers the Roadrunner Chaser, a sled designed by Wile E. Coyote.\n","metadata":{"title":"R-7 engine overview"},"client_id":"acme-wiki-sync","submitted_at":"2025-06-01T09:30:00Z"}`

	env, err := events.DecodeEnvelope(h, []byte(body))
	require.NoError(t, err)
	got, err := events.Decode[events.DocumentSubmitted](env, newValidator(t))
	require.NoError(t, err)
	require.Equal(t, h.Get("ce-id"), h.Get(events.HeaderMsgID))
	require.Equal(t, "4f1c2b8e-6a0d-4c3e-9b7a-2d5e8f1a3c6b", got.ID)
	require.Equal(t, "job-20250601-7f3a9c", got.Subject)
	require.Equal(t, got.Data.JobID, got.Subject)

	var fixture events.DocumentSubmitted
	require.NoError(t, json.Unmarshal(readFixture(t, events.TypeDocumentSubmitted), &fixture))
	require.Equal(t, fixture.Content, got.Data.Content, "the CLI example sends the fixture's text")
	require.Equal(t, fixture.ContentSHA256, events.ContentSHA256(got.Data.Content))
}

// TestDocsBinaryExample decodes the chunk.created message shown in
// docs/events.md.
func TestDocsBinaryExample(t *testing.T) {
	h := nats.Header{
		"ce-specversion":     {"1.0"},
		"ce-id":              {"e7357edec1bf5047ea7a061642f891d6"},
		"ce-source":          {"urn:kgraph:extractor"},
		"ce-type":            {"dev.kgraph.chunk.created.v1"},
		"ce-datacontenttype": {"application/json"},
		"ce-subject":         {"job-20250601-7f3a9c"},
		"ce-time":            {"2025-06-01T09:30:01.042Z"},
		"ce-traceparent":     {testTraceParent},
		"traceparent":        {testTraceParent},
		"Nats-Msg-Id":        {"e7357edec1bf5047ea7a061642f891d6"},
	}
	body := `{"job_id":"job-20250601-7f3a9c","doc_id":"acme:handbook.rockets-r7","namespace":"acme-support","chunk_id":"3f9a1c07d2e84b6a9c51e0f7a2b4d6c8","index":0,"chunks_total":2,"text":"Acme Rockets ships the R-7 engine from its Tucson plant.","tokens":13}`
	env, err := events.DecodeEnvelope(h, []byte(body))
	require.NoError(t, err)
	got, err := events.Decode[events.ChunkCreated](env, newValidator(t))
	require.NoError(t, err)
	require.JSONEq(t, string(readFixture(t, events.TypeChunkCreated)), body)

	require.Equal(t, "e7357edec1bf5047ea7a061642f891d6", got.ID)

	// Encoding the decoded event gives back exactly the documented headers.
	msg, err := events.Encode(got)
	require.NoError(t, err)
	require.Equal(t, h, msg.Header)
}
