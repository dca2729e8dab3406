package extractparse

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

func entity(name, typ, desc string) events.Entity {
	return events.Entity{Name: name, Type: typ, Description: desc}
}

func relation(src, tgt, desc string, weight float64, keywords ...string) events.Relation {
	return events.Relation{Source: src, Target: tgt, Description: desc, Weight: weight, Keywords: keywords}
}

const canonical = `("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas.")##
("entity"<|>"Marley's Ghost"<|>"person"<|>"The ghost of Scrooge's late partner.")##
("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9)<|COMPLETE|>`

var (
	scrooge      = entity("SCROOGE", "PERSON", "Scrooge is a miser who hates Christmas.")
	marley       = entity("MARLEY'S GHOST", "PERSON", "The ghost of Scrooge's late partner.")
	warns        = relation("SCROOGE", "MARLEY'S GHOST", "Marley's Ghost warns Scrooge.", 9)
	canonicalRes = Result{Entities: []events.Entity{scrooge, marley}, Relations: []events.Relation{warns}, Complete: true}
)

func TestParseTuples(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   Result
	}{
		{name: "canonical", output: canonical, want: canonicalRes},
		{
			name: "stray ## lines as gpt-4o writes them",
			output: "## \n(\"entity\"<|>\"Scrooge\"<|>\"person\"<|>\"Scrooge is a miser who hates Christmas.\")##\n## \n" +
				"(\"entity\"<|>\"Marley's Ghost\"<|>\"person\"<|>\"The ghost of Scrooge's late partner.\")##\n##\n" +
				"(\"relationship\"<|>\"Scrooge\"<|>\"Marley's Ghost\"<|>\"Marley's Ghost warns Scrooge.\"<|>9)##\n\n<|COMPLETE|>",
			want: canonicalRes,
		},
		{
			name: "## around records on one line",
			output: `## ("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas.") ##` + "\n" +
				`## ("entity"<|>"Marley's Ghost"<|>"person"<|>"The ghost of Scrooge's late partner.") ##` + "\n" +
				`## ("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9)<|COMPLETE|>`,
			want: canonicalRes,
		},
		{
			name: "records split across lines",
			output: "(\"entity\"<|>\"Scrooge\"<|>\"person\"<|>\"Scrooge is a miser\nwho hates Christmas.\")##\n" +
				"(\"entity\"<|>\n  \"Marley's Ghost\"<|>\"person\"<|>\n  \"The ghost of Scrooge's late partner.\"\n)##\n" +
				"(\"relationship\"<|>\"Scrooge\"<|>\"Marley's Ghost\"<|>\"Marley's Ghost warns Scrooge.\"\n<|>9)<|COMPLETE|>",
			want: canonicalRes,
		},
		{
			name: "no record delimiters, one record a line",
			output: `("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas.")` + "\n" +
				`("entity"<|>"Marley's Ghost"<|>"person"<|>"The ghost of Scrooge's late partner.")` + "\n" +
				`("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9)` + "\n<|COMPLETE|>",
			want: canonicalRes,
		},
		{
			name: "several records on one line",
			output: `("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas."), ("entity"<|>"Marley's Ghost"<|>"person"<|>"The ghost of Scrooge's late partner.")` +
				`("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9)<|COMPLETE|>`,
			want: canonicalRes,
		},
		{
			name: "unquoted mixed case names and types",
			output: `(entity<|>scrooge<|>Person<|>Scrooge is a miser who hates Christmas.)##` +
				`(Entity<|>Marley's ghost<|>PERSON<|>The ghost of Scrooge's late partner.)##` +
				`(RELATIONSHIP<|>Scrooge<|>marley's Ghost<|>Marley's Ghost warns Scrooge.<|>9)<|COMPLETE|>`,
			want: canonicalRes,
		},
		{
			name:   "missing completion delimiter",
			output: strings.TrimSuffix(canonical, "<|COMPLETE|>"),
			want:   Result{Entities: canonicalRes.Entities, Relations: canonicalRes.Relations},
		},
		{
			name:   "prose and markdown fence around the records",
			output: "Sure! Here are the entities and relationships I found:\n\n```\n" + canonical + "\n```\n\nLet me know if you need anything else (e.g. more detail).",
			want:   canonicalRes,
		},
		{
			name: "bold headings, bold records and bold delimiters",
			output: "**Entities:**\n\n**(\"entity\"<|>\"**Scrooge**\"<|>\"person\"<|>\"Scrooge is a miser who hates Christmas.\")**\n**##**\n" +
				"(\"entity\"<|>\"Marley's Ghost\"<|>\"person\"<|>\"The ghost of Scrooge's late partner.\")##\n\n**Relationships:**\n\n" +
				"(\"relationship\"<|>\"Scrooge\"<|>\"Marley's Ghost\"<|>\"Marley's Ghost warns Scrooge.\"<|>9)\n<|COMPLETE|>",
			want: canonicalRes,
		},
		{
			name: "numbered and bulleted lists",
			output: "1. (\"entity\"<|>\"Scrooge\"<|>\"person\"<|>\"Scrooge is a miser who hates Christmas.\")##\n" +
				"2) (\"entity\"<|>\"Marley's Ghost\"<|>\"person\"<|>\"The ghost of Scrooge's late partner.\")##\n" +
				"- (\"relationship\"<|>\"Scrooge\"<|>\"Marley's Ghost\"<|>\"Marley's Ghost warns Scrooge.\"<|>9)<|COMPLETE|>",
			want: canonicalRes,
		},
		{
			name: "spaces around the delimiters",
			output: `( "entity" <|> "Scrooge" <|> "person" <|> "Scrooge is a miser who hates Christmas." ) ## ` +
				`("entity"<|> "Marley's Ghost"<|> "person"<|> "The ghost of Scrooge's late partner.")##` +
				`("relationship" <|>  "Scrooge" <|> "Marley's Ghost" <|> "Marley's Ghost warns Scrooge." <|> 9 ) <|COMPLETE|>`,
			want: canonicalRes,
		},
		{
			name: "curly quotes",
			output: `(“entity”<|>“Scrooge”<|>“person”<|>“Scrooge is a miser who hates Christmas.”)##` +
				`(“entity”<|>“Marley's Ghost”<|>“person”<|>“The ghost of Scrooge's late partner.”)##` +
				`(“relationship”<|>“Scrooge”<|>“Marley's Ghost”<|>“Marley's Ghost warns Scrooge.”<|>9)<|COMPLETE|>`,
			want: canonicalRes,
		},
		{
			name:   `"relation" as record type`,
			output: `("relation"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9)`,
			want:   Result{Relations: []events.Relation{warns}},
		},
		{
			name: "garbled last delimiter before the strength, as gpt-4o writes it",
			output: `("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."|>9)##` +
				`("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."</|>9)`,
			want: Result{Relations: []events.Relation{warns, warns}},
		},
		{
			name:   "HTML entities and control characters",
			output: "(\"entity\"<|>\"Fezziwig &amp; Co\"<|>\"organization\"<|>\"A &quot;jolly&quot;\x00 business\x07.\")",
			want:   Result{Entities: []events.Entity{entity("FEZZIWIG & CO", "ORGANIZATION", `A "jolly" business.`)}},
		},
		{
			name:   "description ending in a quotation keeps its closing quote",
			output: `("entity"<|>"Scrooge"<|>"person"<|>"Scrooge says "Humbug!""<|>)` + "##" + `("entity"<|>Tim<|>person<|>Tim says "God bless us")`,
			want: Result{Entities: []events.Entity{
				entity("SCROOGE", "PERSON", `Scrooge says "Humbug!"`),
				entity("TIM", "PERSON", `Tim says "God bless us"`),
			}},
		},
		{
			name: "strengths: decimal, quoted, out of ten, words, negative",
			output: `("relationship"<|>A<|>B<|>d<|>8.5)##("relationship"<|>A<|>C<|>d<|>"7")##("relationship"<|>A<|>D<|>d<|>6/10)##` +
				`("relationship"<|>A<|>E<|>d<|>high)##("relationship"<|>A<|>F<|>d<|>-3)##("relationship"<|>A<|>G<|>d<|>)`,
			want: Result{Relations: []events.Relation{
				relation("A", "B", "d", 8.5), relation("A", "C", "d", 7), relation("A", "D", "d", 6),
				relation("A", "E", "d", 1), relation("A", "F", "d", 1), relation("A", "G", "d", 1),
			}},
		},
		{
			name: "LightRAG relationships with keywords",
			output: `("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>"warning, redemption, warning"<|>9)##` +
				`("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>9<|>"warning; redemption")##` +
				`("relationship"<|>"Scrooge"<|>"Marley's Ghost"<|>"Marley's Ghost warns Scrooge."<|>"warning"<|>"strong")##` +
				`("content_keywords"<|>"redemption, Christmas, ghosts")`,
			want: Result{Relations: []events.Relation{
				relation("SCROOGE", "MARLEY'S GHOST", "Marley's Ghost warns Scrooge.", 9, "warning", "redemption"),
				relation("SCROOGE", "MARLEY'S GHOST", "Marley's Ghost warns Scrooge.", 9, "warning", "redemption"),
				relation("SCROOGE", "MARLEY'S GHOST", "Marley's Ghost warns Scrooge.", 1, "warning"),
			}},
		},
		{
			name:   "extra entity fields are ignored",
			output: `("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas."<|>10)`,
			want:   Result{Entities: []events.Entity{scrooge}},
		},
		{
			name: "parentheses inside fields",
			output: `("entity"<|>"Scrooge (Ebenezer)"<|>"person"<|>"A miser (the worst)")##` +
				`("relationship"<|>"Scrooge"<|>"Fred"<|>"Fred (his nephew) visits (and is rebuffed"<|>5)`,
			want: Result{
				Entities:  []events.Entity{entity("SCROOGE (EBENEZER)", "PERSON", "A miser (the worst)")},
				Relations: []events.Relation{relation("SCROOGE", "FRED", "Fred (his nephew) visits (and is rebuffed", 5)},
			},
		},
		{
			name:   "unclosed last record followed by prose",
			output: "(\"entity\"<|>\"Scrooge\"<|>\"person\"<|>\"Scrooge is a miser who hates Christmas.\"\n\nI hope this helps.",
			want:   Result{Entities: []events.Entity{scrooge}},
		},
		{
			name:   "unicode names",
			output: `("entity"<|>"Ébénézer Scrooge"<|>"person"<|>"Un avare.")##("entity"<|>"東京"<|>"geo"<|>"首都")##("relationship"<|>"ébénézer scrooge"<|>"東京"<|>"visits"<|>3)`,
			want: Result{
				Entities:  []events.Entity{entity("ÉBÉNÉZER SCROOGE", "PERSON", "Un avare."), entity("東京", "GEO", "首都")},
				Relations: []events.Relation{relation("ÉBÉNÉZER SCROOGE", "東京", "visits", 3)},
			},
		},
		{
			name: "bad records are skipped and counted",
			output: `("entity"<|>"Scrooge"<|>"person")##` + // too few fields
				`("relationship"<|>"Scrooge"<|>"Fred"<|>"no strength")##` + // too few fields
				`("entity"<|>""<|>"person"<|>"no name")##` + // empty name
				`("entity"<|>"..."<|>"person"<|>"punctuation only")##` + // no name after EntityKey
				`("relationship"<|>"Scrooge"<|>"scrooge"<|>"self"<|>5)##` + // self-relation
				`("relationship"<|>""<|>"Fred"<|>"no source"<|>5)##` + // empty source
				`("claim"<|>"Scrooge"<|>"miser"<|>"x")##` + // unknown type
				`"entity"<|>"Tim"<|>"person"<|>"no opening parenthesis")##` +
				`("entity"<|>"` + strings.Repeat("N", 513) + `"<|>"person"<|>"name too long")##` +
				`("entity"<|>"Bob"<|>"` + strings.Repeat("t", 65) + `"<|>"type too long")##` +
				`("entity"<|>"Scrooge"<|>"person"<|>"Scrooge is a miser who hates Christmas.")`,
			want: Result{Entities: []events.Entity{scrooge}, Skipped: 10},
		},
		{name: "empty", output: "", want: Result{}},
		{name: "prose only", output: "I could not find any entities in this text (sorry).", want: Result{}},
		{name: "completion delimiter only", output: "<|COMPLETE|>", want: Result{Complete: true}},
		{name: "tuple delimiter only", output: "<|>", want: Result{Skipped: 1}},
		{name: "tuple delimiters only", output: "<|><|><|>", want: Result{Skipped: 1}},
		{name: "half a record", output: `("entity"<|>"Scro`, want: Result{Skipped: 1}},
		{name: "half a relationship", output: `("relationship"<|>"Scrooge"<|>"Mar`, want: Result{Skipped: 1}},
		{name: "unbalanced parentheses", output: `((("entity"<|>"Scrooge"<|>"person"<|>"a miser")))))`, want: Result{Entities: []events.Entity{entity("SCROOGE", "PERSON", "a miser")}}},
		{name: "closing parentheses only", output: strings.Repeat(")", 1000) + "<|>" + strings.Repeat(")", 1000), want: Result{Skipped: 1}},
		{name: "JSON when tuples were asked for", output: `{"entities":[{"name":"Scrooge","type":"person","description":"a miser"}],"relationships":[]}`, want: Result{}},
		{name: "GLEAN loop answer", output: "YES", want: Result{}},
		{name: "invalid UTF-8", output: "(\"entity\"<|>\"Scr\xffooge\"<|>\"person\"<|>\"a \xfe miser\")", want: Result{Entities: []events.Entity{entity("SCR\uFFFDOOGE", "PERSON", "a \uFFFD miser")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseTuples(tt.output, DefaultDelimiters())
			require.Equal(t, tt.want, got)
			checkInvariants(t, tt.output, got)
		})
	}
}

func TestParseTuplesCustomDelimiters(t *testing.T) {
	d := Delimiters{Tuple: " | ", Record: ";;", Completion: "DONE"}
	out := `("entity" | "Scrooge" | "person" | "Scrooge is a miser who hates Christmas.");;("relationship" | Scrooge | Marley's Ghost | "Marley's Ghost warns Scrooge." | 9)DONE`
	got := ParseTuples(out, d)
	require.Equal(t, Result{Entities: []events.Entity{scrooge}, Relations: []events.Relation{warns}, Complete: true}, got)

	// Empty delimiters mean the defaults.
	require.Equal(t, canonicalRes, ParseTuples(canonical, Delimiters{}))
}

func TestParseTuplesBounded(t *testing.T) {
	tests := []struct {
		name   string
		output string
	}{
		{"1MB of (((", strings.Repeat("(", 1<<20)},
		{"1MB of ((( then a delimiter", strings.Repeat("(", 1<<20) + "<|>"},
		{"1MB of (<|>", strings.Repeat("(<|>", 1<<18)},
		{"1MB of ##", strings.Repeat("##", 1<<19)},
		{"1MB of empty records", strings.Repeat("(<|>)##", 150_000)},
		{"1MB of <|>", strings.Repeat("<|>", 350_000)},
		{"1MB of near-miss relationships", strings.Repeat(`("relationship"<|>A<|>B<|>`+strings.Repeat("x|", 20), 1<<14)},
		{"many records", strings.Repeat(`("entity"<|>"Scrooge"<|>"person"<|>"a miser")##`, 20_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			began := time.Now()
			got := ParseTuples(tt.output, DefaultDelimiters())
			// Generous bound for -race on a busy 2-core machine; a
			// quadratic parser takes minutes on these.
			require.Less(t, time.Since(began), 10*time.Second)
			require.LessOrEqual(t, got.records(), MaxRecords)
			checkInvariants(t, tt.output, got)
		})
	}
	got := ParseTuples(strings.Repeat(`("entity"<|>"Scrooge"<|>"person"<|>"a miser")##`, MaxRecords+10), DefaultDelimiters())
	require.Len(t, got.Entities, MaxRecords)
	require.True(t, got.Truncated)
	got = ParseTuples(strings.Repeat(`("entity"<|>"Scrooge"<|>"person"<|>"a miser")##`, MaxRecords), DefaultDelimiters())
	require.Len(t, got.Entities, MaxRecords)
	require.False(t, got.Truncated)
}

// checkInvariants holds for any output: what ParseTuples returns is usable
// as events without further checks.
func checkInvariants(t *testing.T, output string, res Result) {
	t.Helper()
	// Every record, used or skipped, consumed at least one tuple delimiter.
	require.LessOrEqual(t, res.records(), strings.Count(output, DefaultDelimiters().Tuple))
	require.LessOrEqual(t, res.records(), MaxRecords)
	require.GreaterOrEqual(t, res.Skipped, 0)
	require.Equal(t, strings.Contains(output, DefaultDelimiters().Completion), res.Complete)
	for _, e := range res.Entities {
		require.NotEmpty(t, events.EntityKey(e.Name), "entity %q", e.Name)
		require.Equal(t, strings.ToUpper(e.Name), e.Name)
		require.Equal(t, strings.TrimSpace(e.Name), e.Name)
		require.LessOrEqual(t, len([]rune(e.Name)), maxNameRunes)
		require.LessOrEqual(t, len([]rune(e.Type)), maxTypeRunes)
		requireClean(t, e.Name+e.Type+e.Description)
	}
	for _, r := range res.Relations {
		require.NotEmpty(t, events.EntityKey(r.Source))
		require.NotEmpty(t, events.EntityKey(r.Target))
		require.NotEqual(t, events.EntityKey(r.Source), events.EntityKey(r.Target))
		require.GreaterOrEqual(t, r.Weight, 0.0)
		require.False(t, r.Weight != r.Weight, "NaN weight")
		requireClean(t, r.Source+r.Target+r.Description+strings.Join(r.Keywords, ""))
		for _, kw := range r.Keywords {
			require.NotEmpty(t, kw)
		}
	}
}

func requireClean(t *testing.T, s string) {
	t.Helper()
	require.NotContains(t, s, "\n")
	require.NotContains(t, s, "\x00")
	require.NotContains(t, s, "\r")
}
