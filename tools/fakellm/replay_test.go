package fakellm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/extractparse"
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

const (
	corpusBook      = "christmas_carol.txt"
	corpusResponses = "christmas_carol_gpt4o_responses.json"
)

// corpusDir returns ../shared/corpus next to the repository root (the
// directory holding go.work), skipping the test when it is absent, as in a
// fresh clone.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.work above the test directory, so no ../shared/corpus to replay from")
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpus")
	for _, f := range []string{corpusBook, corpusResponses} {
		if _, err := os.Stat(filepath.Join(corpus, f)); err != nil {
			t.Skipf("replay corpus file %s absent (%v); the replay tests need ../shared/corpus next to the repository", f, err)
		}
	}
	return corpus
}

// recordedOutputs returns every recorded response of the corpus.
func recordedOutputs(t *testing.T, corpus string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpus, corpusResponses))
	require.NoError(t, err)
	var recorded map[string]struct {
		Return string `json:"return"`
	}
	require.NoError(t, json.Unmarshal(data, &recorded))
	out := map[string]bool{}
	for _, r := range recorded {
		out[r.Return] = true
	}
	return out
}

// paragraphsMentioning returns the paragraphs of the book naming every one
// of names.
func paragraphsMentioning(t *testing.T, corpus string, names ...string) []string {
	t.Helper()
	book, err := os.ReadFile(filepath.Join(corpus, corpusBook))
	require.NoError(t, err)
	var out []string
	for p := range strings.SplitSeq(strings.ReplaceAll(string(book), "\r\n", "\n"), "\n\n") {
		all := true
		for _, n := range names {
			all = all && strings.Contains(p, n)
		}
		if all {
			out = append(out, p)
		}
	}
	require.NotEmpty(t, out, "the book has no paragraph naming %v", names)
	return out
}

func namesContaining(names []string, part string) []string {
	var out []string
	for _, n := range names {
		if strings.Contains(n, part) {
			out = append(out, n)
		}
	}
	return out
}

func TestReplayServesRecordedExtractions(t *testing.T) {
	corpus := corpusDir(t)
	s, base := startServer(t, Config{Mode: ModeReplay, ReplayPath: filepath.Join(corpus, corpusResponses)})
	recorded := recordedOutputs(t, corpus)

	paragraphs := paragraphsMentioning(t, corpus, "Scrooge", "Marley")
	for _, p := range paragraphs {
		out := content(t, base, user(prompts.EntityExtraction(p, nil)))
		require.True(t, recorded[out], "a recorded output, verbatim: %q", out)
		res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
		require.NotEmpty(t, namesContaining(entityNames(res.Entities), "SCROOGE"), "paragraph %q got %v", p, entityNames(res.Entities))
	}

	chunk := paragraphs[1] // "Marley was dead, to begin with. …"
	require.Contains(t, chunk, "Marley was dead, to begin with.")
	out := content(t, base, user(prompts.EntityExtraction(chunk, nil)))
	res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
	require.Contains(t, entityNames(res.Entities), "SCROOGE")
	require.Equal(t, out, content(t, base, user(prompts.EntityExtraction(chunk, nil))), "deterministic")

	// The strict JSON prompt gets the same recording, converted.
	jsonOut := content(t, base, user(prompts.EntityExtractionJSON(chunk, nil)))
	jsonRes, err := extractparse.ParseJSON(jsonOut)
	require.NoError(t, err)
	require.Equal(t, entityNames(res.Entities), entityNames(jsonRes.Entities))

	// A chunk about something else entirely falls back to the heuristic.
	other := content(t, base, user(prompts.EntityExtraction("Ada Lovelace wrote notes on the Analytical Engine for Charles Babbage.", nil)))
	require.False(t, recorded[other])
	require.Contains(t, other, "ADA LOVELACE")

	st := s.Stats()
	require.EqualValues(t, len(paragraphs)+3, st.ReplayHits)
	require.EqualValues(t, 1, st.ReplayMisses)
}

func TestReplayServesRecordedCommunityReports(t *testing.T) {
	corpus := corpusDir(t)
	_, base := startServer(t, Config{Mode: ModeReplay, ReplayPath: filepath.Join(corpus, corpusResponses)})
	recorded := recordedOutputs(t, corpus)

	out := content(t, base, user(prompts.CommunityReport(sampleCommunity)))
	require.True(t, recorded[out], "a recorded report, verbatim")
	var report communityReport
	require.NoError(t, json.Unmarshal([]byte(out), &report))
	require.NotEmpty(t, report.Title)
	require.NotEmpty(t, report.Findings)
	lower := strings.ToLower(out)
	for _, name := range []string{"scrooge", "bob cratchit", "tiny tim"} {
		require.Contains(t, lower, name, "the best-overlapping report names the community's entities")
	}

	// Prompts replay has no recording for are answered heuristically.
	require.Equal(t, "NO", content(t, base, user(prompts.GleanLoop())))
}
