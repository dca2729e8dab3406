package chunk

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSplit checks Split's invariants (valid UTF-8 chunks cut from the input,
// full coverage, ordered offsets, overlap only as configured, no panic) on
// arbitrary input, including invalid UTF-8, with small windows so that
// boundaries often fall inside multi-byte characters. The seed corpus is
// testdata/fuzz/FuzzSplit; `go test` runs only the seeds.
func FuzzSplit(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string, maxTokens, overlapTokens uint8) {
		cfg := Config{MaxTokens: 1 + int(maxTokens)%64}
		cfg.OverlapTokens = int(overlapTokens) % cfg.MaxTokens
		c, err := New(cfg)
		require.NoError(t, err)

		chunks := c.Split(text)

		requireInvariants(t, text, cfg, chunks)
		requireCoverage(t, text, chunks)
		require.Equal(t, chunks, c.Split(text), "split is deterministic")
	})
}

// FuzzSegmentedTokens checks that tokenizing cut at segmentStarts gives the
// tokens of the whole text.
func FuzzSegmentedTokens(f *testing.F) {
	f.Add("Marley was dead:\nto begin with.\n\nThere is no doubt", uint8(3))
	f.Add("a\r\nb \nc.\nd\t\ne 12\nf", uint8(9))
	c, err := New(DefaultConfig())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, text string, n uint8) {
		_, want, err := c.codec.Encode(text)
		require.NoError(t, err)
		got, _ := segmentedTokens(t, c, text, 1+int(n)%16)
		require.Equal(t, want, got)
	})
}
