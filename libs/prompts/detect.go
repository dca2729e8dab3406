package prompts

import "strings"

// Kind names a prompt of the engine.
type Kind int

// The prompts Detect recognises.
const (
	KindUnknown Kind = iota
	KindExtraction
	KindExtractionJSON
	KindGleanContinue
	KindGleanLoop
	KindSummarize
	KindCommunityReport
	KindLocalAnswer
	KindGlobalMap
	KindGlobalReduce
	KindNaiveAnswer
)

// String returns the snake_case name of the kind.
func (k Kind) String() string {
	switch k {
	case KindExtraction:
		return "extraction"
	case KindExtractionJSON:
		return "extraction_json"
	case KindGleanContinue:
		return "glean_continue"
	case KindGleanLoop:
		return "glean_loop"
	case KindSummarize:
		return "summarize"
	case KindCommunityReport:
		return "community_report"
	case KindLocalAnswer:
		return "local_answer"
	case KindGlobalMap:
		return "global_map"
	case KindGlobalReduce:
		return "global_reduce"
	case KindNaiveAnswer:
		return "naive_answer"
	default:
		return "unknown"
	}
}

// marker returns the text that identifies a kind's prompt. Each marker
// occurs in its template before any placeholder, and in no other template.
// They are taken from nano-graphrag's texts, so its own prompts are
// recognised too.
func marker(k Kind) string {
	switch k {
	case KindExtraction:
		return "identify all entities of those types from the text and all relationships among the identified entities"
	case KindExtractionJSON:
		return "extract every entity of those types and every relationship among the extracted entities, and return them as one strict JSON object"
	case KindGleanContinue:
		return "MANY entities were missed in the last extraction"
	case KindGleanLoop:
		return "It appears some entities may have still been missed"
	case KindSummarize:
		return "You are a helpful assistant responsible for generating a comprehensive summary of the data provided below."
	case KindCommunityReport:
		return "Write a comprehensive report of a community"
	case KindLocalAnswer:
		// The naive prompt shares the "Generate a response of the target
		// length…" sentence but not the ---Goal--- heading before it.
		return "---Goal---\n\nGenerate a response of the target length and format that responds to the user's question, summarizing all information in the input data tables"
	case KindGlobalMap:
		return "Generate a response consisting of a list of key points that responds to the user's question"
	case KindGlobalReduce:
		return "responding to questions about a dataset by synthesizing perspectives from multiple analysts"
	case KindNaiveAnswer:
		return "Below are the knowledge you know:"
	default:
		return ""
	}
}

// Detect tells which of the engine's prompts a message is, or KindUnknown.
//
// Pass one message: the user message for extraction, gleaning, summaries and
// community reports, the system message for answers. The data a prompt
// carries (chunk text, entity descriptions) may quote another prompt's
// marker, but it always comes after the template's own marker, so the
// earliest marker wins.
func Detect(prompt string) Kind {
	found, foundAt := KindUnknown, len(prompt)
	for k := KindExtraction; k <= KindNaiveAnswer; k++ {
		if at := strings.Index(prompt, marker(k)); at >= 0 && at < foundAt {
			found, foundAt = k, at
		}
	}
	return found
}
