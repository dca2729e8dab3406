package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

// FuzzDecodeEnvelope starts from the headers of a valid binary-mode message,
// sets (or, with an empty value, removes) one header and replaces the body.
// Setting Content-Type to application/cloudevents… makes the body a
// structured event. Seeds: testdata/fuzz/FuzzDecodeEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	v, err := events.NewValidator()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, key, value string, payload []byte) {
		e := events.New("evt-1", "urn:kgraph:fuzz", jobFailed(), fixtureTime())
		e.TraceParent = testTraceParent
		msg, err := events.Encode(e)
		require.NoError(t, err)
		h := msg.Header
		if value == "" {
			for k := range h {
				if strings.EqualFold(k, key) {
					delete(h, k)
				}
			}
		} else {
			h[key] = []string{value}
		}

		env, err := events.DecodeEnvelope(h, payload)
		if err != nil {
			require.ErrorIs(t, err, events.ErrInvalidEvent)
			return
		}
		require.NotEmpty(t, env.ID)
		require.NotEmpty(t, env.Source)
		require.NotEmpty(t, env.Type)
		require.True(t, utf8.Valid(env.Data), "payload %q", env.Data)
		for name, s := range map[string]string{
			"id": env.ID, "source": env.Source, "type": string(env.Type), "subject": env.Subject,
			"traceparent": env.TraceParent, "datacontenttype": env.DataContentType,
		} {
			require.True(t, utf8.ValidString(s), "%s %q", name, s)
		}
		for k, s := range env.Extensions {
			require.True(t, utf8.ValidString(k) && utf8.ValidString(s), "extension %q=%q", k, s)
			require.Equal(t, strings.ToLower(k), k, "extension names are lower-case")
		}

		got, err := events.Decode[events.JobFailed](env, v)
		if err != nil {
			require.True(t, isCodecError(err), "unexpected error %v", err)
			return
		}
		// Whatever Decode returns satisfies the schema, however the JSON
		// was spelled.
		b, err := json.Marshal(got.Data)
		require.NoError(t, err)
		require.NoError(t, v.Validate(events.TypeJobFailed, b), "decoded %s", b)
		require.Equal(t, env.ID, got.ID)
	})
}

func isCodecError(err error) bool {
	return errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrUnknownType)
}

// FuzzPercentRoundTrip checks that header encoding is lossless for valid
// UTF-8 and always yields a value nats.go passes through unchanged. Seeds:
// testdata/fuzz/FuzzPercentRoundTrip.
func FuzzPercentRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		enc := events.PercentEncode(s)
		for i := 0; i < len(enc); i++ {
			c := enc[i]
			require.True(t, c >= 0x21 && c <= 0x7E && c != '"', "byte %q at %d of %q", c, i, enc)
		}

		dec, err := events.PercentDecode(enc)
		if !utf8.ValidString(s) {
			require.Error(t, err, "invalid UTF-8 %q must not decode", s)
			return
		}
		require.NoError(t, err)
		require.Equal(t, s, dec)

		quoted, err := events.PercentDecode(`"` + enc + `"`)
		require.NoError(t, err)
		require.Equal(t, s, quoted)

		// Decoding is the inverse on encoded forms only: anything that decodes
		// encodes back to a string that decodes to the same value.
		if d, err := events.PercentDecode(s); err == nil {
			again, err := events.PercentDecode(events.PercentEncode(d))
			require.NoError(t, err)
			require.Equal(t, d, again)
		}
	})
}
