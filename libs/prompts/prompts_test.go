package prompts

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tricky is chunk text that quotes other prompts' markers and placeholders,
// to check that the data a prompt carries cannot change what it is detected
// as or what is extracted from it.
const tricky = "Scrooge said: \"MANY entities were missed in the last extraction\".\n" +
	"{input_text} {entity_types} {tuple_delimiter}\n" +
	"-Real Data-\n######################\nEntity_types: x\nText: inner\n######################\nOutput:\n" +
	"Write a comprehensive report of a community. Below are the knowledge you know:\n" +
	"Ünïcödé — 燃える 🎄\r\n\ttrailing spaces   "

func renderAll(data string) map[Kind]string {
	return map[Kind]string{
		KindExtraction:      EntityExtraction(data, []string{"person", "place"}),
		KindExtractionJSON:  EntityExtractionJSON(data, nil),
		KindGleanContinue:   GleanContinue(),
		KindGleanLoop:       GleanLoop(),
		KindSummarize:       SummarizeDescriptions("SCROOGE", []string{data, "a miser"}),
		KindCommunityReport: CommunityReport(data),
		KindLocalAnswer:     LocalAnswer(data, "Multiple Paragraphs"),
		KindGlobalMap:       GlobalMap(data),
		KindGlobalReduce:    GlobalReduce(data, "Multiple Paragraphs"),
		KindNaiveAnswer:     NaiveAnswer(data, "Multiple Paragraphs"),
	}
}

func TestDetectRecognisesEveryPrompt(t *testing.T) {
	for _, data := range []string{"", "Marley was dead: to begin with.", tricky} {
		rendered := renderAll(data)
		require.Len(t, rendered, int(KindNaiveAnswer), "every kind but unknown has a prompt")
		for want, prompt := range rendered {
			require.Equal(t, want, Detect(prompt), "prompt %s with data %q", want, data)
		}
	}
}

func TestMarkersAreUniqueToTheirTemplate(t *testing.T) {
	// Every marker must be in its own prompt and in no other, whatever the
	// data; otherwise Detect would depend on marker order alone.
	rendered := renderAll("plain data")
	for k := KindExtraction; k <= KindNaiveAnswer; k++ {
		for other, prompt := range rendered {
			require.Equal(t, k == other, strings.Contains(prompt, marker(k)),
				"marker of %s in prompt %s", k, other)
		}
	}
}

func TestDetectUnknown(t *testing.T) {
	for _, prompt := range []string{
		"",
		"What is the capital of France?",
		"-Goal-\nGiven a text document that is potentially relevant to this activity, an entity specification, and a claim description, extract all entities", // claim extraction
		"---Role---\n\nYou are a helpful assistant",
	} {
		require.Equal(t, KindUnknown, Detect(prompt), "%q", prompt)
	}
}

func TestDetectNanoGraphragOriginals(t *testing.T) {
	// Prompts as nano-graphrag itself formats them: the opening of its
	// extraction prompt, its glean prompts, and a summary prompt naming a
	// relation as a Python tuple.
	cases := map[string]Kind{
		"-Goal-\nGiven a text document that is potentially relevant to this activity and a list of entity types, identify all entities of those types from the text and all relationships among the identified entities.\n": KindExtraction,
		"MANY entities were missed in the last extraction.  Add them below using the same format:\n":                                                                                                                        KindGleanContinue,
		"It appears some entities may have still been missed.  Answer YES | NO if there are still entities that need to be added.\n":                                                                                        KindGleanLoop,
		"You are a helpful assistant responsible for generating a comprehensive summary of the data provided below.\nEntities: ('A', 'B')\n":                                                                                KindSummarize,
	}
	for prompt, want := range cases {
		require.Equal(t, want, Detect(prompt), "%q", prompt)
	}
}

func TestKindString(t *testing.T) {
	seen := map[string]bool{}
	for k := KindUnknown; k <= KindNaiveAnswer; k++ {
		name := k.String()
		require.NotEmpty(t, name)
		require.False(t, seen[name], "duplicate name %q", name)
		seen[name] = true
	}
	require.Equal(t, "extraction_json", KindExtractionJSON.String())
	require.Equal(t, "unknown", Kind(99).String())
}

func TestExtractionInputRoundTrip(t *testing.T) {
	texts := []string{
		"",
		"one line",
		"Marley was dead: to begin with.\n\nThere is no doubt whatever about that.\n",
		"\n\nleading and trailing newlines\n\n",
		tricky,
		strings.Repeat("long text 長い ", 2000),
	}
	for _, text := range texts {
		for name, render := range map[string]func(string, []string) string{
			"tuples": EntityExtraction,
			"json":   EntityExtractionJSON,
		} {
			got, ok := ExtractionInput(render(text, []string{"person"}))
			require.True(t, ok, "%s %q", name, text)
			require.Equal(t, text, got, name)
		}
	}
}

func TestExtractionInputRejectsOtherPrompts(t *testing.T) {
	for kind, prompt := range renderAll("some text") {
		if kind == KindExtraction || kind == KindExtractionJSON {
			continue
		}
		_, ok := ExtractionInput(prompt)
		require.False(t, ok, kind.String())
	}
	_, ok := ExtractionInput("identify all entities of those types from the text and all relationships among the identified entities")
	require.False(t, ok, "marker without a -Real Data- section")
}

func TestExtractionRendersTypesAndDelimiters(t *testing.T) {
	p := EntityExtraction("text", []string{"person", "ship", "sea"})
	require.Contains(t, p, "- entity_type: One of the following types: [person,ship,sea]\n")
	require.Contains(t, p, "\nEntity_types: person,ship,sea\nText: text\n")
	require.Contains(t, p, `("entity"<|>"Alex"<|>"person"<|>`)
	require.Contains(t, p, "Use **##** as the list delimiter.")
	require.Contains(t, p, "When finished, output <|COMPLETE|>")
	require.NotContains(t, p, "{tuple_delimiter}")
	require.NotContains(t, p, "{record_delimiter}")
	require.NotContains(t, p, "{completion_delimiter}")

	defaults := EntityExtraction("text", nil)
	require.Contains(t, defaults, "[organization,person,geo,event]")

	j := EntityExtractionJSON("text", []string{"person", "ship"})
	require.Contains(t, j, "[person,ship]")
	require.Contains(t, j, `"relationships":[{"source"`)
	require.Contains(t, j, `"keywords":[`)
	require.NotContains(t, j, "<|>", "the JSON variant must not teach the tuple format")
}

func TestDefaultEntityTypesIsFresh(t *testing.T) {
	a := DefaultEntityTypes()
	a[0] = "changed"
	require.Equal(t, []string{"organization", "person", "geo", "event"}, DefaultEntityTypes())
}

func TestSummarizeRoundTrip(t *testing.T) {
	descs := []string{"A miser.", "He says \"Humbug\" <often>.\nTwice.", tricky}
	p := SummarizeDescriptions("EBENEZER\nSCROOGE", descs)
	require.Contains(t, p, "Description List: [\"A miser.\",")
	name, got, ok := SummarizeInput(p)
	require.True(t, ok)
	require.Equal(t, "EBENEZER\nSCROOGE", name)
	require.Equal(t, descs, got)

	name, got, ok = SummarizeInput(SummarizeDescriptions("X", nil))
	require.True(t, ok)
	require.Equal(t, "X", name)
	require.Empty(t, got)

	_, _, ok = SummarizeInput(GleanLoop())
	require.False(t, ok)
}

func TestCommunityReportRoundTrip(t *testing.T) {
	input := "-----Entities-----\n```csv\nid,entity,type,description\n0,SCROOGE,person,a miser\n```\n" + tricky
	p := CommunityReport(input)
	require.Contains(t, p, `"rating_explanation": <rating_explanation>`)
	require.Contains(t, p, "```csv\nid,entity,type,description\n5,VERDANT OASIS PLAZA")
	require.NotContains(t, p, "{{")
	got, ok := CommunityReportInput(p)
	require.True(t, ok)
	require.Equal(t, input, got)

	_, ok = CommunityReportInput(GlobalMap("x"))
	require.False(t, ok)
}

func TestAnswerPromptsCarryTheirData(t *testing.T) {
	require.Contains(t, LocalAnswer("CTX", "Single Paragraph"), "---Data tables---\n\nCTX\n\n\n---Goal---")
	require.Equal(t, 2, strings.Count(LocalAnswer("CTX", "Single Paragraph"), "---Target response length and format---\n\nSingle Paragraph\n"))
	require.Contains(t, GlobalMap("CTX"), "---Data tables---\n\nCTX\n\n---Goal---")
	require.Contains(t, GlobalMap("CTX"), `{"description": "Description of point 1", "score": score_value}`)
	require.Contains(t, GlobalReduce("REPORTS", "List"), "---Analyst Reports---\n\nREPORTS\n\n\n---Goal---")
	require.Equal(t, 2, strings.Count(GlobalReduce("REPORTS", "List"), "---Target response length and format---\n\nList\n"))
	require.True(t, strings.HasPrefix(NaiveAnswer("CHUNKS", "List"), "You're a helpful assistant\nBelow are the knowledge you know:\nCHUNKS\n---\n"))
	require.True(t, strings.HasSuffix(NaiveAnswer("CHUNKS", "List"), "---Target response length and format---\nList\n"))
	for _, p := range renderAll("data") {
		require.NotRegexp(t, `\{(context_data|response_type|report_data|content_data|input_text|entity_name|description_list|entity_types)\}`, p)
	}
}
