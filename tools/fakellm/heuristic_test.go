package fakellm

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/extractparse"
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// sample names people (one with an honorific), a place and an organisation;
// "Jacob Marley" and "Ebenezer Scrooge" share two sentences.
const sample = `Ebenezer Scrooge kept his counting-house in London. Jacob Marley had been the partner of Ebenezer Scrooge for many years.
Bob Cratchit worked for Ebenezer Scrooge in a cold little cell. Darkness is cheap, and Scrooge liked it.

Mr. Fezziwig once employed Scrooge as an apprentice, near the Bank of England. Jacob Marley and Ebenezer Scrooge signed the register of the Royal Exchange Company together.`

func entityNames(es []events.Entity) []string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name
	}
	slices.Sort(names)
	return names
}

func findEntity(t *testing.T, es []events.Entity, name string) events.Entity {
	t.Helper()
	for _, e := range es {
		if e.Name == name {
			return e
		}
	}
	require.Failf(t, "entity not found", "%s not in %v", name, entityNames(es))
	return events.Entity{}
}

func findRelation(t *testing.T, rs []events.Relation, a, b string) events.Relation {
	t.Helper()
	for _, r := range rs {
		if (r.Source == a && r.Target == b) || (r.Source == b && r.Target == a) {
			return r
		}
	}
	require.Failf(t, "relation not found", "%s–%s not in %v", a, b, rs)
	return events.Relation{}
}

var sampleEntities = []string{
	"BANK OF ENGLAND", "BOB CRATCHIT", "EBENEZER SCROOGE", "JACOB MARLEY", "LONDON",
	"MR. FEZZIWIG", "ROYAL EXCHANGE COMPANY", "SCROOGE",
}

func TestHeuristicExtractionParsesAndFindsTheNamedEntities(t *testing.T) {
	_, base := startServer(t, Config{})
	prompt := prompts.EntityExtraction(sample, []string{"organization", "person", "geo", "event"})

	out := content(t, base, user(prompt))
	require.True(t, strings.HasSuffix(out, completionDelimiter), out)
	res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
	require.Zero(t, res.Skipped, out)
	require.True(t, res.Complete)
	require.Equal(t, sampleEntities, entityNames(res.Entities), "capitalised sentence starters (Darkness) are not entities")

	require.Equal(t, "PERSON", findEntity(t, res.Entities, "MR. FEZZIWIG").Type, "honorific → person")
	require.Equal(t, "ORGANIZATION", findEntity(t, res.Entities, "ROYAL EXCHANGE COMPANY").Type)
	require.Equal(t, "ORGANIZATION", findEntity(t, res.Entities, "LONDON").Type, "no cue → first allowed type")
	require.Contains(t, findEntity(t, res.Entities, "BOB CRATCHIT").Description, "Bob Cratchit worked for Ebenezer Scrooge")

	require.InDelta(t, 2, findRelation(t, res.Relations, "EBENEZER SCROOGE", "JACOB MARLEY").Weight, 0, "strength = co-occurring sentences")
	require.InDelta(t, 1, findRelation(t, res.Relations, "EBENEZER SCROOGE", "LONDON").Weight, 0)
	for _, r := range res.Relations {
		if r.Source == "LONDON" || r.Target == "LONDON" {
			require.ElementsMatch(t, []string{"LONDON", "EBENEZER SCROOGE"}, []string{r.Source, r.Target}, "LONDON shares a sentence with no one else")
		}
	}

	require.Equal(t, out, content(t, base, user(prompt)), "deterministic across calls")
}

func TestHeuristicEntityTypesFollowThePrompt(t *testing.T) {
	_, base := startServer(t, Config{})
	out := content(t, base, user(prompts.EntityExtraction(sample, []string{"character", "place"})))
	res := extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
	require.Zero(t, res.Skipped)
	for _, e := range res.Entities {
		require.Contains(t, []string{"CHARACTER", "PLACE"}, e.Type, "only the prompt's types: %v", e)
	}
	require.Equal(t, "CHARACTER", findEntity(t, res.Entities, "MR. FEZZIWIG").Type)
}

func TestHeuristicJSONExtractionMatchesTheTupleOne(t *testing.T) {
	_, base := startServer(t, Config{})
	tuples := extractparse.ParseTuples(content(t, base, user(prompts.EntityExtraction(sample, nil))), extractparse.DefaultDelimiters())

	out := content(t, base, user(prompts.EntityExtractionJSON(sample, nil)))
	require.True(t, json.Valid([]byte(out)), out)
	res, err := extractparse.ParseJSON(out)
	require.NoError(t, err)
	require.Zero(t, res.Skipped)
	require.True(t, res.Complete)
	require.Equal(t, tuples.Entities, res.Entities)
	require.Len(t, res.Relations, len(tuples.Relations))
}

func TestGleaningAddsTheEntitiesLeftOutThenNothing(t *testing.T) {
	_, base := startServer(t, Config{MaxEntities: 3, GleanYes: 1})
	for _, asJSON := range []bool{false, true} {
		parse := func(out string) extractparse.Result {
			if asJSON {
				res, err := extractparse.ParseJSON(out)
				require.NoError(t, err, out)
				return res
			}
			return extractparse.ParseTuples(out, extractparse.DefaultDelimiters())
		}
		prompt := prompts.EntityExtraction(sample, nil)
		if asJSON {
			prompt = prompts.EntityExtractionJSON(sample, nil)
		}

		history := []message{user(prompt)}
		first := content(t, base, history...)
		got := entityNames(parse(first).Entities)
		require.Len(t, got, 3, "first pass: the three most mentioned")
		require.Subset(t, got, []string{"EBENEZER SCROOGE", "JACOB MARLEY", "SCROOGE"})
		history = append(history, assistant(first))

		// nano-graphrag's loop: continue, then ask whether to go on.
		var loops []string
		for round := 1; round <= 5; round++ {
			history = append(history, user(prompts.GleanContinue()))
			out := content(t, base, history...)
			res := parse(out)
			require.Zero(t, res.Skipped, out)
			for _, n := range entityNames(res.Entities) {
				require.NotContains(t, got, n, "round %d repeats %s", round, n)
			}
			got = append(got, entityNames(res.Entities)...)
			history = append(history, assistant(out))
			if len(res.Entities) == 0 {
				break
			}
			loops = append(loops, content(t, base, append(slices.Clone(history), user(prompts.GleanLoop()))...))
		}
		slices.Sort(got)
		require.Equal(t, sampleEntities, got, "gleaning completes the extraction (json=%v)", asJSON)
		require.Equal(t, []string{"YES", "NO"}, loops, "GleanYes=1: YES after the first round only")
	}
}

func TestHeuristicSummaryJoinsFirstSentences(t *testing.T) {
	_, base := startServer(t, Config{})
	out := content(t, base, user(prompts.SummarizeDescriptions("SCROOGE", []string{
		"Scrooge is a miser. He hates Christmas.",
		"Scrooge is a miser. He has a nephew.",
		"Scrooge is visited by three spirits",
	})))
	require.Equal(t, "Scrooge is a miser. Scrooge is visited by three spirits", out)

	// nano-graphrag joins the descriptions with <SEP> instead of JSON.
	nano := strings.Replace(prompts.SummarizeDescriptions("SCROOGE", nil), "Description List: []", "Description List: Scrooge is old. Very old.<SEP>Scrooge is rich.", 1)
	require.Equal(t, "Scrooge is old. Scrooge is rich.", content(t, base, user(nano)))
}

const sampleCommunity = "-----Reports-----\n```csv\nid,\tcontent\n```\n" +
	"-----Entities-----\n```csv\n" +
	"id,\tentity,\ttype,\tdescription,\trank\n" +
	"0,\tSCROOGE,\tPERSON,\tScrooge is a miser, later a generous man.,\t5\n" +
	"1,\tBOB CRATCHIT,\tPERSON,\tBob Cratchit is Scrooge's clerk.,\t3\n" +
	"2,\tTINY TIM,\tPERSON,\tTiny Tim is Bob Cratchit's son.,\t2\n" +
	"```\n-----Relationships-----\n```csv\n" +
	"id,\tsource,\ttarget,\tdescription,\tweight,\trank\n" +
	"0,\tSCROOGE,\tBOB CRATCHIT,\tScrooge employs Bob.,\t8,\t8\n" +
	"1,\tBOB CRATCHIT,\tTINY TIM,\tBob is Tim's father.,\t9,\t5\n" +
	"```"

func TestHeuristicCommunityReportIsReportJSON(t *testing.T) {
	_, base := startServer(t, Config{})
	out := content(t, base, user(prompts.CommunityReport(sampleCommunity)))
	var report communityReport
	require.NoError(t, json.Unmarshal([]byte(out), &report), out)
	require.Equal(t, "SCROOGE and BOB CRATCHIT", report.Title)
	require.Contains(t, report.Summary, "3 entities and 2 relationships")
	require.Len(t, report.Findings, 3)
	require.Equal(t, "The role of SCROOGE", report.Findings[0].Summary)
	require.Contains(t, report.Findings[0].Explanation, "Scrooge is a miser, later a generous man.")
	require.Contains(t, report.Findings[1].Explanation, "2 relationships")
	require.Contains(t, report.Findings[2].Explanation, "[Data: Entities (2)]")
	require.Greater(t, report.Rating, 0.0)
	require.LessOrEqual(t, report.Rating, 10.0)
}

func TestHeuristicAnswersQuoteTheirContext(t *testing.T) {
	_, base := startServer(t, Config{})
	const question = "Who is Tiny Tim's father?"
	for name, prompt := range map[string]string{
		"local":  prompts.LocalAnswer(sampleCommunity, "Multiple Paragraphs"),
		"reduce": prompts.GlobalReduce("----Analyst 0----\nImportance Score: 80\nBob Cratchit is Tiny Tim's father.", "Multiple Paragraphs"),
		"naive":  prompts.NaiveAnswer("--New Chunk--\nBob Cratchit carried Tiny Tim upon his shoulder.", "Multiple Paragraphs"),
	} {
		out := content(t, base, system(prompt), user(question))
		require.Contains(t, out, "Question: "+question, name)
		switch name {
		case "local":
			require.Contains(t, out, `"-----Reports----- `+"```csv id,", name)
		case "reduce":
			require.Contains(t, out, `"----Analyst 0---- Importance Score: 80 Bob Cratchit`, name)
		case "naive":
			require.Contains(t, out, `"--New Chunk-- Bob Cratchit carried Tiny Tim`, name)
		}
	}
	require.Equal(t, prompts.FailResponse, content(t, base, system(prompts.LocalAnswer("", "x")), user(question)))
}

func TestHeuristicGlobalMapScoresRowsByTheQuestion(t *testing.T) {
	_, base := startServer(t, Config{})
	ctx := "-----Reports-----\n```csv\nid,\tcontent,\trating,\timportance\n" +
		"0,\tThe Cratchit family is poor but happy.,\t5,\t1\n" +
		"1,\tTiny Tim is the son of Bob Cratchit and is ill.,\t7,\t1\n```"
	out := content(t, base, system(prompts.GlobalMap(ctx)), user("Which illness does Tiny Tim have?"))
	var got struct {
		Points []mapPoint `json:"points"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got.Points, 2, "one point per table row, header skipped")
	require.Contains(t, got.Points[1].Description, "Tiny Tim is the son of Bob Cratchit")
	require.Greater(t, got.Points[1].Score, got.Points[0].Score, "the row sharing the question's words scores higher")

	out = content(t, base, system(prompts.GlobalMap("")), user("anything?"))
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, []mapPoint{{Description: "I don't know: the data tables hold no information.", Score: 0}}, got.Points)
}

func TestUnknownPromptGetsARecognisableReply(t *testing.T) {
	_, base := startServer(t, Config{})
	require.Equal(t, `fakellm heuristic reply to: "ping"`, content(t, base, user("ping")))
}
