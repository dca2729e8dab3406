package extractparse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

// sharedCorpus returns the directory of the shared reference corpus, the
// "shared/corpus" next to the checkout holding go.work, or "" when absent.
func sharedCorpus(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			corpus := filepath.Join(dir, "..", "shared", "corpus")
			if _, err := os.Stat(corpus); err != nil {
				return ""
			}
			return corpus
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// TestRecordedGPT4oOutputsParse parses the 84 extraction outputs gpt-4o gave
// nano-graphrag for A Christmas Carol, with all their quirks.
func TestRecordedGPT4oOutputsParse(t *testing.T) {
	corpus := sharedCorpus(t)
	if corpus == "" {
		t.Skip("../shared/corpus not present: the recorded gpt-4o outputs are checked only where the shared corpus is available")
	}
	raw, err := os.ReadFile(filepath.Join(corpus, "christmas_carol_gpt4o_responses.json"))
	require.NoError(t, err)
	var responses map[string]struct {
		Return string `json:"return"`
		Model  string `json:"model"`
	}
	require.NoError(t, json.Unmarshal(raw, &responses))

	keys := make([]string, 0, len(responses))
	for k, r := range responses {
		if strings.Contains(r.Return, DefaultDelimiters().Tuple) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	require.Len(t, keys, 84, "extraction outputs in the recorded corpus")

	var entities, relations, records, complete int
	names := map[string]bool{}
	for _, k := range keys {
		out := responses[k].Return
		res := ParseTuples(out, DefaultDelimiters())
		require.Zero(t, res.Skipped, "output %s:\n%s", k, out)
		require.NotEmpty(t, res.Entities, "output %s:\n%s", k, out)
		require.False(t, res.Truncated)
		// Every record the model wrote is accounted for.
		written := strings.Count(out, `("entity"`) + strings.Count(out, `("relation`) + strings.Count(out, `(“relationship”`)
		require.Equal(t, written, len(res.Entities)+len(res.Relations), "output %s", k)
		for _, e := range res.Entities {
			require.Equal(t, strings.ToUpper(e.Name), e.Name)
			require.NotContains(t, e.Name, `"`)
			require.NotEmpty(t, e.Description)
			names[events.EntityKey(e.Name)] = true
		}
		for _, r := range res.Relations {
			require.Positive(t, r.Weight, "relation %s -> %s in %s", r.Source, r.Target, k)
			require.NotContains(t, r.Source+r.Target, `"`)
		}
		entities += len(res.Entities)
		relations += len(res.Relations)
		records += len(res.Entities) + len(res.Relations)
		if res.Complete {
			complete++
		}
	}
	for _, want := range []string{"SCROOGE", "EBENEZER SCROOGE", "MARLEY'S GHOST", "BOB CRATCHIT", "TINY TIM", "FEZZIWIG"} {
		require.True(t, names[want], "entity %s among the parsed names", want)
	}
	t.Logf("%d outputs (%d with the completion delimiter): %d records, %d entities, %d relations, %d distinct entity keys",
		len(keys), complete, records, entities, relations, len(names))
}
