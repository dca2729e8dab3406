package events_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

func TestPercentEncode(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// Examples of the CloudEvents bindings.
		{"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"€", "%E2%82%AC"},
		{"", ""},
		{"urn:kgraph:extractor", "urn:kgraph:extractor"},
		{"2025-06-01T09:30:00.123456789Z", "2025-06-01T09:30:00.123456789Z"},
		{" ", "%20"},
		{`"`, "%22"},
		{"%", "%25"},
		{"100%", "100%25"},
		{"%20", "%2520"},
		{"a\tb\nc\rd", "a%09b%0Ac%0Dd"},
		{"\x00\x1f", "%00%1F"},
		{"\x7f", "%7F"},
		// The printable ASCII range is kept, including characters that URL
		// encoding would escape.
		{"!#$&'()*+,/:;<=>?@[\\]^_`{|}~", "!#$&'()*+,/:;<=>?@[\\]^_`{|}~"},
		{"ü", "%C3%BC"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, events.PercentEncode(tt.in))
			got, err := events.PercentDecode(tt.want)
			require.NoError(t, err)
			require.Equal(t, tt.in, got)
		})
	}
}

func TestPercentDecode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"spec example", "Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"},
		{"lower-case hex", "%e2%82%ac", "€"},
		{"mixed-case hex", "%E2%82%aC", "€"},
		{"surrounding quotes stripped", `"Euro%20%E2%82%AC"`, "Euro €"},
		{"empty quoted", `""`, ""},
		{"lone quote kept", `"`, `"`},
		{"only leading quote kept", `"abc`, `"abc`},
		{"only one pair of quotes stripped", `""a""`, `"a"`},
		{"quotes decoded after stripping", `"%22a%22"`, `"a"`},
		{"unescaped UTF-8 accepted", "Euro €", "Euro €"},
		{"nothing to decode", "dev.kgraph.job.failed.v1", "dev.kgraph.job.failed.v1"},
		{"escaped percent", "100%25", "100%"},
		{"escape at end", "a%41", "aA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.PercentDecode(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPercentDecodeRejects(t *testing.T) {
	for _, in := range []string{
		"%",
		"%4",
		"abc%",
		"abc%2",
		`"abc%2"`,
		"%G0",
		"%0G",
		"% 20",
		"%-1",
		"%FF",
		"%C3",
		"%C3%28",
		"%E2%82",
		"%F0%9F%98",
		"%C0%80",
		"%ED%A0%80",
		"%F4%90%80%80",
		"\xff",
		"caf\xc3",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := events.PercentDecode(in)
			require.Error(t, err)
		})
	}
}
