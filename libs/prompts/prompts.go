// Package prompts renders the LLM prompts of kgraph's GraphRAG engine and
// recognises them again.
//
// The texts follow nano-graphrag / Microsoft GraphRAG (see templates.go for
// credits) so that kgraph's extraction output, community reports and answers
// match theirs. Detect and the *Input functions exist for the fake
// OpenAI-compatible server used in tests, which must tell which prompt it
// was sent and what data the prompt carries.
package prompts

import (
	"encoding/json"
	"strings"
)

// Delimiters of GraphRAG's tuple extraction format.
const (
	DefaultTupleDelimiter      = "<|>"
	DefaultRecordDelimiter     = "##"
	DefaultCompletionDelimiter = "<|COMPLETE|>"
)

// FailResponse is the answer given when retrieval finds no context.
const FailResponse = "Sorry, I'm not able to provide an answer to that question."

// DefaultEntityTypes returns GraphRAG's default entity types, as a fresh
// slice the caller may modify.
func DefaultEntityTypes() []string {
	return []string{"organization", "person", "geo", "event"}
}

// EntityExtraction renders GraphRAG's tuple-format entity and relationship
// extraction prompt for one chunk of text. No entity types means the
// defaults.
func EntityExtraction(text string, entityTypes []string) string {
	return renderExtraction(entityExtractionTemplate, text, entityTypes)
}

// EntityExtractionJSON renders the strict-JSON variant of the extraction
// prompt. The answer it asks for is
// {"entities":[{"name","type","description"}],"relationships":[{"source","target","description","keywords":[...],"strength":1-10}]}.
func EntityExtractionJSON(text string, entityTypes []string) string {
	return renderExtraction(entityExtractionJSONTemplate, text, entityTypes)
}

func renderExtraction(template, text string, entityTypes []string) string {
	if len(entityTypes) == 0 {
		entityTypes = DefaultEntityTypes()
	}
	// Replacer substitutes in a single pass, so placeholders that happen to
	// appear in the chunk text are left alone.
	return strings.NewReplacer(
		"{tuple_delimiter}", DefaultTupleDelimiter,
		"{record_delimiter}", DefaultRecordDelimiter,
		"{completion_delimiter}", DefaultCompletionDelimiter,
		"{entity_types}", strings.Join(entityTypes, ","),
		"{input_text}", text,
	).Replace(template)
}

// GleanContinue is the follow-up message of a gleaning round, sent after the
// model's previous extraction output.
func GleanContinue() string { return gleanContinueText }

// GleanLoop asks the model whether another gleaning round is needed; the
// expected answer is YES or NO.
func GleanLoop() string { return gleanLoopText }

// SummarizeDescriptions renders the prompt that merges the descriptions an
// entity (or relation) collected from several chunks into one. The
// descriptions are rendered as a JSON array of strings.
func SummarizeDescriptions(entityName string, descriptions []string) string {
	return strings.NewReplacer(
		"{entity_name}", entityName,
		"{description_list}", jsonStrings(descriptions),
	).Replace(summarizeDescriptionsTemplate)
}

func jsonStrings(items []string) string {
	if items == nil {
		items = []string{}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Encoding a []string cannot fail.
	_ = enc.Encode(items)
	return strings.TrimSuffix(b.String(), "\n")
}

// CommunityReport renders GraphRAG's community report prompt. inputText is
// the community's entity and relationship tables; the model answers with a
// JSON object holding title, summary, rating, rating_explanation and
// findings.
func CommunityReport(inputText string) string {
	return strings.Replace(communityReportTemplate, "{input_text}", inputText, 1)
}

// LocalAnswer renders the system prompt of a local query.
func LocalAnswer(contextData, responseType string) string {
	return strings.NewReplacer(
		"{context_data}", contextData,
		"{response_type}", responseType,
	).Replace(localAnswerTemplate)
}

// GlobalMap renders the system prompt of a global query's map step, which
// asks for scored key points as JSON ({"points":[{"description","score"}]}).
func GlobalMap(contextData string) string {
	return strings.Replace(globalMapTemplate, "{context_data}", contextData, 1)
}

// GlobalReduce renders the system prompt of a global query's reduce step
// over the analysts' reports gathered by the map step.
func GlobalReduce(reportData, responseType string) string {
	return strings.NewReplacer(
		"{report_data}", reportData,
		"{response_type}", responseType,
	).Replace(globalReduceTemplate)
}

// NaiveAnswer renders the system prompt of a naive (chunks only) query.
func NaiveAnswer(contentData, responseType string) string {
	return strings.NewReplacer(
		"{content_data}", contentData,
		"{response_type}", responseType,
	).Replace(naiveAnswerTemplate)
}

// ExtractionInput returns the chunk text of an extraction prompt (tuple or
// JSON variant), the part after "Text: " in its -Real Data- section.
func ExtractionInput(prompt string) (text string, ok bool) {
	if k := Detect(prompt); k != KindExtraction && k != KindExtractionJSON {
		return "", false
	}
	// The template's own -Real Data- header comes before any input, so the
	// first occurrence is the right one even when the chunk quotes it; the
	// footer ends the prompt, so the last occurrence is the right one.
	start := strings.Index(prompt, realDataHeader)
	if start < 0 {
		return "", false
	}
	rest := prompt[start+len(realDataHeader):]
	textAt := strings.Index(rest, realDataText)
	if textAt < 0 {
		return "", false
	}
	rest = rest[textAt+len(realDataText):]
	end := strings.LastIndex(rest, realDataFooter)
	if end < 0 {
		return "", false
	}
	return rest[:end], true
}

// SummarizeInput returns the entity name and descriptions of a prompt made
// by SummarizeDescriptions. Prompts from nano-graphrag, which renders the
// list as a Python list, yield the name and ok but no descriptions.
func SummarizeInput(prompt string) (entityName string, descriptions []string, ok bool) {
	if Detect(prompt) != KindSummarize {
		return "", nil, false
	}
	nameAt := strings.Index(prompt, summarizeEntitiesLine)
	end := strings.LastIndex(prompt, summarizeFooter)
	if nameAt < 0 || end < nameAt {
		return "", nil, false
	}
	data := prompt[nameAt+len(summarizeEntitiesLine) : end]
	// The description list is JSON and so holds no raw newline: its line is
	// the last one.
	listAt := strings.LastIndex(data, summarizeDescriptionsLine)
	if listAt < 0 {
		return "", nil, false
	}
	entityName = data[:listAt]
	if err := json.Unmarshal([]byte(data[listAt+len(summarizeDescriptionsLine):]), &descriptions); err != nil {
		descriptions = nil
	}
	return entityName, descriptions, true
}

// CommunityReportInput returns the community tables of a prompt made by
// CommunityReport.
func CommunityReportInput(prompt string) (inputText string, ok bool) {
	if Detect(prompt) != KindCommunityReport {
		return "", false
	}
	start := strings.Index(prompt, communityReportInputHeader)
	if start < 0 {
		return "", false
	}
	rest := prompt[start+len(communityReportInputHeader):]
	end := strings.LastIndex(rest, communityReportInputFooter)
	if end < 0 {
		return "", false
	}
	return rest[:end], true
}
