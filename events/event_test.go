package events_test

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

func TestDerivedIDDeterministic(t *testing.T) {
	id := events.DerivedID("evt-root", "dev.kgraph.chunk.created.v1", "3")
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{32}$`), id)
	require.Equal(t, id, events.DerivedID("evt-root", "dev.kgraph.chunk.created.v1", "3"))

	// Pinned so that a change of the derivation, which would break
	// de-duplication across a rolling upgrade, cannot go unnoticed.
	sum := sha256.Sum256([]byte("evt-root\x00dev.kgraph.chunk.created.v1\x003"))
	require.Equal(t, hex.EncodeToString(sum[:16]), id)
}

func TestDerivedIDSensitivity(t *testing.T) {
	tests := []struct {
		name string
		a, b []string // cause id first, then keys
	}{
		{"different cause", []string{"evt-1", "k"}, []string{"evt-2", "k"}},
		{"different key", []string{"evt-1", "k1"}, []string{"evt-1", "k2"}},
		{"key order", []string{"evt-1", "a", "b"}, []string{"evt-1", "b", "a"}},
		{"key boundary", []string{"evt-1", "ab", "c"}, []string{"evt-1", "a", "bc"}},
		{"cause and key boundary", []string{"evt-1a", "b"}, []string{"evt-1", "ab"}},
		{"no key vs empty key", []string{"evt-1"}, []string{"evt-1", ""}},
		{"one empty key vs two", []string{"evt-1", ""}, []string{"evt-1", "", ""}},
		{"extra key", []string{"evt-1", "a"}, []string{"evt-1", "a", "b"}},
		{"case", []string{"evt-1", "Key"}, []string{"evt-1", "key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t, events.DerivedID(tt.a[0], tt.a[1:]...), events.DerivedID(tt.b[0], tt.b[1:]...))
		})
	}
}

func TestNormalizeContent(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unchanged", "line one\nline two", "line one\nline two"},
		{"CRLF", "line one\r\nline two\r\n", "line one\nline two"},
		{"lone CR", "line one\rline two", "line one\nline two"},
		{"trailing spaces and tabs", "line one  \t\nline two \u00a0", "line one\nline two"},
		{"leading and trailing blank lines", "\n\n  \nline one\nline two\n\n \n", "line one\nline two"},
		{"inner blank lines kept", "para one\n\n\npara two", "para one\n\n\npara two"},
		{"leading indentation kept", "  indented\n\tcode", "  indented\n\tcode"},
		{"only whitespace", " \r\n\t\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, events.NormalizeContent(tt.in))
		})
	}
}

func TestContentSHA256(t *testing.T) {
	const base = "Acme Rockets ships the R-7 engine.\nThe R-7 powers the Roadrunner Chaser."
	sum := sha256.Sum256([]byte(base))
	require.Equal(t, hex.EncodeToString(sum[:]), events.ContentSHA256(base))

	same := map[string]string{
		"CRLF":               "Acme Rockets ships the R-7 engine.\r\nThe R-7 powers the Roadrunner Chaser.\r\n",
		"trailing spaces":    "Acme Rockets ships the R-7 engine.   \nThe R-7 powers the Roadrunner Chaser.\t",
		"blank lines around": "\n\n   \nAcme Rockets ships the R-7 engine.\nThe R-7 powers the Roadrunner Chaser.\n\n\n",
		"all of it":          "\r\n \r\nAcme Rockets ships the R-7 engine. \r\nThe R-7 powers the Roadrunner Chaser.\u00a0\r\n\r\n",
	}
	for name, text := range same {
		t.Run("same/"+name, func(t *testing.T) {
			require.Equal(t, events.ContentSHA256(base), events.ContentSHA256(text))
		})
	}

	different := map[string]string{
		"inner word":         "Acme Rockets ships the R-8 engine.\nThe R-7 powers the Roadrunner Chaser.",
		"inner blank line":   "Acme Rockets ships the R-7 engine.\n\nThe R-7 powers the Roadrunner Chaser.",
		"joined lines":       "Acme Rockets ships the R-7 engine. The R-7 powers the Roadrunner Chaser.",
		"leading indent":     "  Acme Rockets ships the R-7 engine.\nThe R-7 powers the Roadrunner Chaser.",
		"inner double space": "Acme Rockets ships  the R-7 engine.\nThe R-7 powers the Roadrunner Chaser.",
		"case":               "acme Rockets ships the R-7 engine.\nThe R-7 powers the Roadrunner Chaser.",
	}
	for name, text := range different {
		t.Run("different/"+name, func(t *testing.T) {
			require.NotEqual(t, events.ContentSHA256(base), events.ContentSHA256(text))
		})
	}
}

func TestEntityKey(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Scrooge", "SCROOGE"},
		{` "scrooge" `, "SCROOGE"},
		{"SCROOGE", "SCROOGE"},
		{"“Scrooge”", "SCROOGE"},
		{"«Scrooge»", "SCROOGE"},
		{"'Scrooge'.", "SCROOGE"},
		{"(Scrooge)", "SCROOGE"},
		{"Ebenezer   Scrooge", "EBENEZER SCROOGE"},
		{"Ebenezer\n\tScrooge", "EBENEZER SCROOGE"},
		{"Scrooge & Marley", "SCROOGE & MARLEY"},
		{"R-7", "R-7"},
		{"U.S.A.", "U.S.A"},
		{"O'Brien", "O'BRIEN"},
		{"Müller", "MÜLLER"},
		// Simple case mapping, one rune to one rune: ß has no single-rune
		// upper case and stays (Python's str.upper would give "STRASSE").
		{"straße", "STRAßE"},
		{"", ""},
		{` "" `, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, events.EntityKey(tt.in))
		})
	}
}
