package query

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// extractiveFacts is how many entities an extractive local answer lists.
const extractiveFacts = 5

// extractiveAnswer picks the sentences of the context that share the most
// words with the question.
func extractiveAnswer(question, namespace string, texts, facts []string) string {
	if len(texts) == 0 && len(facts) == 0 {
		return fmt.Sprintf("Nothing indexed in namespace %q matches the question.", namespace)
	}
	terms := map[string]bool{}
	for _, w := range words(question) {
		if len(w) > 2 {
			terms[w] = true
		}
	}
	type scored struct {
		s     string
		score int
	}
	var cands []scored
	seen := map[string]bool{}
	for _, t := range texts {
		for _, sent := range sentences(t) {
			if seen[sent] {
				continue
			}
			seen[sent] = true
			n := 0
			for _, w := range words(sent) {
				if terms[w] {
					n++
				}
			}
			cands = append(cands, scored{sent, n})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	var b strings.Builder
	b.WriteString("Extractive answer (no LLM configured).")
	if len(facts) > 0 {
		b.WriteString("\nRelevant entities:")
		for _, f := range facts {
			b.WriteString("\n- " + f)
		}
	}
	if len(cands) > 0 {
		b.WriteString("\nMost relevant passages:")
		for i := 0; i < len(cands) && i < 3; i++ {
			b.WriteString("\n- " + cands[i].s)
		}
	}
	return b.String()
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func sentences(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == '.' || r == '!' || r == '?' || r == '\n' {
			if s := strings.TrimSpace(text[start : i+1]); len(s) > 1 {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
