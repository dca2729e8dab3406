package community

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

func relation(a, b, description string, weight float64) graph.Relation {
	if b < a {
		a, b = b, a
	}
	return graph.Relation{Source: a, Target: b, Description: description, Weight: weight}
}

// cliques is a snapshot of cliques of size entities named <prefix><i>,
// joined by a weak bridge from the first to the second, plus one entity
// without relations.
func cliques(size int, prefixes ...string) graph.Snapshot {
	var snap graph.Snapshot
	for _, p := range prefixes {
		for i := 1; i <= size; i++ {
			key := fmt.Sprintf("%s%d", p, i)
			snap.Entities = append(snap.Entities, graph.Entity{Key: key, Name: strings.ToLower(key), Type: "T", Description: "about " + key})
			for j := i + 1; j <= size; j++ {
				snap.Relations = append(snap.Relations, relation(key, fmt.Sprintf("%s%d", p, j), key+" knows", 5))
			}
		}
	}
	snap.Relations = append(snap.Relations, relation(prefixes[0]+"1", prefixes[1]+"1", "bridge", 1))
	snap.Entities = append(snap.Entities, graph.Entity{Key: "LONER", Name: "loner", Type: "T", Description: "alone"})
	slices.SortFunc(snap.Entities, func(a, b graph.Entity) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(snap.Relations, func(a, b graph.Relation) int {
		return strings.Compare(a.Source+"\x00"+a.Target, b.Source+"\x00"+b.Target)
	})
	return snap
}

func detect(t *testing.T, snap graph.Snapshot, maxSize int) []Community {
	t.Helper()
	cs, err := Detect(snap, Options{MaxClusterSize: maxSize, Seed: 7})
	require.NoError(t, err)
	return cs
}

func TestDetectSeparatesCliques(t *testing.T) {
	snap := cliques(4, "A", "B")
	cs := detect(t, snap, 10)
	require.Len(t, cs, 2, "the entity without relations belongs to no community")
	for i, prefix := range []string{"A", "B"} {
		c := cs[i]
		keys := []string{prefix + "1", prefix + "2", prefix + "3", prefix + "4"}
		require.Equal(t, keys, c.Keys)
		require.Equal(t, ID(0, keys), c.ID)
		require.Regexp(t, `^c0-[0-9a-f]{12}$`, c.ID)
		require.Zero(t, c.Level)
		require.Empty(t, c.Parent)
		require.Empty(t, c.Children)
		require.Len(t, c.Entities, 4)
		require.Equal(t, strings.ToLower(prefix)+"1", c.Entities[0].Name)
		require.Len(t, c.Relations, 6, "the bridge is between communities")
		for _, r := range c.Relations {
			require.NotEqual(t, "bridge", r.Description)
		}
		require.Empty(t, c.Hash, "the hash is the caller's")
		require.Regexp(t, `^[0-9a-f]{64}$`, c.ContentHash)
	}
	require.NotEqual(t, cs[0].ContentHash, cs[1].ContentHash)

	// The same graph in another order clusters the same.
	reversed := snap
	reversed.Relations = slices.Clone(snap.Relations)
	slices.Reverse(reversed.Relations)
	require.Equal(t, cs, detect(t, reversed, 10))
	require.Empty(t, detect(t, graph.Snapshot{Entities: snap.Entities}, 10), "no relations, no communities")
}

func TestDetectKeepsRelationsOfWeightZeroTogether(t *testing.T) {
	snap := graph.Snapshot{Relations: []graph.Relation{relation("A", "B", "", 0), relation("B", "C", "", 0)}}
	cs := detect(t, snap, 10)
	require.Len(t, cs, 1)
	require.Equal(t, []string{"A", "B", "C"}, cs[0].Keys)
	require.Len(t, cs[0].Relations, 2)
}

func TestContentHashCoversWhatReportsAreWrittenFrom(t *testing.T) {
	base := detect(t, cliques(4, "A", "B"), 10)
	tests := []struct {
		name        string
		change      func(s *graph.Snapshot)
		alphaChange bool
	}{
		{"member description", func(s *graph.Snapshot) { s.Entities[0].Description = "new" }, true},
		{"member name", func(s *graph.Snapshot) { s.Entities[0].Name = "A-one" }, true},
		{"member type", func(s *graph.Snapshot) { s.Entities[0].Type = "U" }, true},
		{"relation description", func(s *graph.Snapshot) { s.Relations[0].Description = "new" }, true},
		{"relation weight", func(s *graph.Snapshot) { s.Relations[0].Weight = 6 }, true},
		{"bridge description", func(s *graph.Snapshot) { s.Relations[bridgeAt(s)].Description = "new" }, false},
		{"bridge weight", func(s *graph.Snapshot) { s.Relations[bridgeAt(s)].Weight = 2 }, false},
		{"entity outside", func(s *graph.Snapshot) { s.Entities[len(s.Entities)-1].Description = "new" }, false},
		{"relation keywords and mentions", func(s *graph.Snapshot) {
			s.Relations[0].Keywords, s.Relations[0].Mentions, s.Entities[0].Mentions = []string{"k"}, 9, 9
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := cliques(4, "A", "B")
			tc.change(&snap)
			got := detect(t, snap, 10)
			require.Len(t, got, 2)
			require.Equal(t, base[0].ID, got[0].ID)
			require.Equal(t, tc.alphaChange, base[0].ContentHash != got[0].ContentHash)
			require.Equal(t, base[1].ContentHash, got[1].ContentHash)
		})
	}
}

func bridgeAt(s *graph.Snapshot) int {
	return slices.IndexFunc(s.Relations, func(r graph.Relation) bool { return r.Description == "bridge" })
}

func TestDetectHierarchy(t *testing.T) {
	// Four cliques in two pairs, each pair bound tightly: two communities
	// of eight, which a size limit of four splits again.
	var snap graph.Snapshot
	for _, p := range []string{"A", "B", "C", "D"} {
		for i := 1; i <= 4; i++ {
			snap.Entities = append(snap.Entities, graph.Entity{Key: fmt.Sprintf("%s%d", p, i)})
			for j := i + 1; j <= 4; j++ {
				snap.Relations = append(snap.Relations, relation(fmt.Sprintf("%s%d", p, i), fmt.Sprintf("%s%d", p, j), "", 10))
			}
		}
	}
	for i := 1; i <= 4; i++ {
		snap.Relations = append(snap.Relations,
			relation(fmt.Sprintf("A%d", i), fmt.Sprintf("B%d", i), "", 20),
			relation(fmt.Sprintf("C%d", i), fmt.Sprintf("D%d", i), "", 20))
	}
	snap.Relations = append(snap.Relations, relation("A1", "C1", "", 1))

	cs := detect(t, snap, 4)
	levels := map[int]int{}
	for i, c := range cs {
		levels[c.Level]++
		for _, child := range c.Children {
			require.Equal(t, c.ID, cs[child].Parent)
			require.Equal(t, c.Level+1, cs[child].Level)
			for _, k := range cs[child].Keys {
				require.Contains(t, c.Keys, k)
			}
		}
		if c.Level == 0 {
			require.Len(t, c.Keys, 8, "community %d", i)
			require.NotEmpty(t, c.Children)
		} else {
			require.NotEmpty(t, c.Parent)
			require.Regexp(t, fmt.Sprintf(`^c%d-`, c.Level), c.ID)
		}
	}
	require.Equal(t, 2, levels[0])
	require.Positive(t, levels[1])
	require.Equal(t, cs, detect(t, snap, 4), "deterministic for a seed")
}

func TestPackWritesNanoGraphRAGTables(t *testing.T) {
	c := Community{
		Entities: []graph.Entity{
			{Key: "A", Name: "Ada", Type: "PERSON", Description: "Mathematician.\nWrote \"notes\"."},
			{Key: "B", Name: "Babbage", Type: "PERSON", Description: "Inventor."},
			{Key: "E", Name: "Engine", Type: "MACHINE", Description: ""},
		},
		Relations: []graph.Relation{
			{Source: "A", Target: "B", Description: "Collaborators.", Weight: 2},
			{Source: "A", Target: "E", Description: "Programmed it.", Weight: 3},
		},
	}
	want := "-----Entities-----\n```csv\n" +
		"id,\tentity,\ttype,\tdescription,\tdegree\n" +
		"0,\t\"Ada\",\t\"PERSON\",\t\"Mathematician. Wrote \"\"notes\"\".\",\t2\n" +
		"1,\t\"Babbage\",\t\"PERSON\",\t\"Inventor.\",\t1\n" +
		"2,\t\"Engine\",\t\"MACHINE\",\t\"\",\t1\n" +
		"```\n-----Relationships-----\n```csv\n" +
		"id,\tsource,\ttarget,\tdescription,\trank\n" +
		"0,\t\"Ada\",\t\"Engine\",\t\"Programmed it.\",\t3\n" +
		"1,\t\"Ada\",\t\"Babbage\",\t\"Collaborators.\",\t3\n" +
		"```"
	require.Equal(t, want, Pack(c, nil, 0))
	require.Equal(t, want, Pack(c, nil, 12000))
	require.Equal(t, want, Pack(c, []SubReport{{Keys: []string{"A"}, Report: Report{Title: "unused"}}}, 12000),
		"sub-reports only stand in when the tables overflow")
}

// star is a community of a hub related to n spokes with long descriptions.
func star(n int) Community {
	c := Community{Entities: []graph.Entity{{Key: "HUB", Name: "Hub", Type: "T", Description: "The hub."}}}
	for i := range n {
		key := fmt.Sprintf("S%03d", i)
		c.Entities = append(c.Entities, graph.Entity{Key: key, Name: key, Type: "T", Description: strings.Repeat("spoke words ", 20)})
		c.Relations = append(c.Relations, graph.Relation{Source: "HUB", Target: key, Description: "linked", Weight: 1})
	}
	return c
}

func TestPackTruncatesToBudget(t *testing.T) {
	c := star(100)
	const budget = 1000
	packed := Pack(c, nil, budget)
	require.LessOrEqual(t, EstimateTokens(packed), budget)
	require.Contains(t, packed, "0,\t\"Hub\"", "the highest degree comes first")
	require.Contains(t, packed, "-----Relationships-----")
	require.Less(t, strings.Count(packed, "\"S0"), 2*100, "rows were dropped")
	require.Greater(t, strings.Count(packed, "\"linked\""), 0, "relations keep a share of the budget")
}

func TestPackUsesSubReportsWhenTablesOverflow(t *testing.T) {
	c := star(100)
	var subKeys []string
	for _, e := range c.Entities[1:51] {
		subKeys = append(subKeys, e.Key)
	}
	sub := SubReport{Keys: subKeys, Report: Report{Title: "First half", Summary: "Fifty spokes.", Rating: 4}}
	packed := Pack(c, []SubReport{sub}, 1500)
	require.LessOrEqual(t, EstimateTokens(packed), 1500)
	require.True(t, strings.HasPrefix(packed, "-----Reports-----\n```csv\nid,\treport,\trating,\timportance\n0,\t\"# First half Fifty spokes.\",\t4,\t50\n```\n"), packed)
	require.NotContains(t, packed, "\"S000\",\t\"T\"", "members of the sub-report are left out of the entities")
	require.Contains(t, packed, "\"S050\",\t\"T\"", "other members are not")
	require.Contains(t, packed, `"Hub"`)
}

func TestParseReport(t *testing.T) {
	full := `{"title": "T", "summary": "S", "rating": 7.5, "rating_explanation": "E",
		"findings": [{"summary": "f1", "explanation": "e1"}, {"summary": "f2", "explanation": "e2"}]}`
	tests := []struct {
		name    string
		answer  string
		want    Report
		wantErr bool
	}{
		{"plain", full, Report{Title: "T", Summary: "S", Rating: 7.5, RatingExplanation: "E",
			Findings: []graph.Finding{{Summary: "f1", Explanation: "e1"}, {Summary: "f2", Explanation: "e2"}}}, false},
		{"fenced with prose", "Here it is:\n```json\n" + full + "\n```\nHope it helps.", Report{Title: "T", Summary: "S", Rating: 7.5,
			RatingExplanation: "E", Findings: []graph.Finding{{Summary: "f1", Explanation: "e1"}, {Summary: "f2", Explanation: "e2"}}}, false},
		{"keys in other case, rating as text", `{"Title": " T ", "SUMMARY": "S", "Rating": "8/10", "findings": ["plain finding", {"Summary": "f", "EXPLANATION": "e"}, {}]}`,
			Report{Title: "T", Summary: "S", Rating: 8, Findings: []graph.Finding{{Summary: "plain finding"}, {Summary: "f", Explanation: "e"}}}, false},
		{"rating clamped", `{"title": "T", "rating": 42}`, Report{Title: "T", Rating: 10}, false},
		{"negative rating", `{"title": "T", "rating": -3}`, Report{Title: "T"}, false},
		{"rating not a number", `{"title": "T", "rating": "high"}`, Report{Title: "T"}, false},
		{"title from the summary", `{"summary": "First sentence. Second one."}`, Report{Title: "First sentence.", Summary: "First sentence. Second one."}, false},
		{"no title or summary", `{"rating": 5, "findings": []}`, Report{}, true},
		{"not JSON", "I cannot do that.", Report{}, true},
		{"broken JSON", `{"title": "T",`, Report{}, true},
		{"empty", "", Report{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReport(tc.answer)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrNoReport)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReportRoundTrip(t *testing.T) {
	r := Report{Title: "T", Summary: "S", Rating: 3, RatingExplanation: "E", Findings: []graph.Finding{{Summary: "f", Explanation: "e"}}}
	var c graph.Community
	r.ApplyTo(&c)
	require.Equal(t, r, ReportOf(c))
	require.Equal(t, "# T\n\nS\n\n## f\n\ne", r.String())
}

func TestExtractive(t *testing.T) {
	c := star(4)
	c.Entities[0].Description = "The hub. It connects everything."
	c.Relations[2].Weight, c.Relations[2].Description = 9, "strongest link"
	r := Extractive(c)
	require.Equal(t, r, Extractive(c), "deterministic")
	require.Equal(t, "Hub, S000 and S001", r.Title, "highest degree first, then by key")
	require.True(t, strings.HasPrefix(r.Summary, "A community of 5 entities and 4 relations among them, centred on Hub, S000 and S001. Hub: The hub."), r.Summary)
	require.Equal(t, graph.Finding{Summary: "Hub and S002", Explanation: "strongest link (weight 9)"}, r.Findings[0])
	require.Len(t, r.Findings, 4)
	require.Greater(t, r.Rating, 0.0)
	require.LessOrEqual(t, r.Rating, float64(MaxRating))
	require.Contains(t, r.RatingExplanation, "5 entities, 4 relations, at most 4 relations per entity")

	pair := Community{
		Entities:  []graph.Entity{{Key: "A", Name: "A"}, {Key: "B", Name: "B"}},
		Relations: []graph.Relation{{Source: "A", Target: "B", Weight: 1}},
	}
	r = Extractive(pair)
	require.Equal(t, "A and B", r.Title)
	require.Equal(t, 4.0, r.Rating)
	require.Equal(t, []graph.Finding{{Summary: "A and B", Explanation: "A and B are related. (weight 1)"}}, r.Findings)
	require.Equal(t, float64(MaxRating), Extractive(star(20)).Rating)
}
