// Package extractparse turns an LLM's entity/relationship extraction output
// into events.Entity and events.Relation values.
//
// Two formats are understood: GraphRAG's tuple format (ParseTuples), as
// asked for by prompts.EntityExtraction, and the strict-JSON format
// (ParseJSON) of prompts.EntityExtractionJSON. Both are lenient, because
// real models — and small local ones especially — bend the format; both
// are bounded, because a pathological output must cost no more than a
// normal one. Records that cannot be used are dropped and counted in
// Result.Skipped, never reported as errors.
//
// Names and types are cleaned the way nano-graphrag's clean_str does (HTML
// entities unescaped, control characters removed) and additionally stripped
// of surrounding quotes and markdown emphasis, then upper-cased as GraphRAG
// does. The graph stores still key entities with events.EntityKey.
package extractparse

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/events"
)

// MaxRecords bounds how many records one output may yield (parsed or
// skipped); the rest is ignored and Result.Truncated set. Real outputs hold
// a few dozen.
const MaxRecords = 5000

// Limits of the event schema (events.Entity, events.Relation): a record
// beyond them is junk (usually misaligned fields), not an entity.
const (
	maxNameRunes = 512
	maxTypeRunes = 64
)

// DefaultWeight is a relation's weight when the output gives no usable
// strength, as in nano-graphrag.
const DefaultWeight = 1.0

// Result is what one extraction output yields.
type Result struct {
	Entities  []events.Entity
	Relations []events.Relation
	// Skipped counts records that looked like records but could not be used:
	// too few fields, unknown record type, empty or oversized names,
	// self-relations, undecodable JSON items.
	Skipped int
	// Complete reports that the output was finished: the completion
	// delimiter was seen (tuples) or the JSON object was closed (JSON).
	Complete bool
	// Truncated reports that more than MaxRecords records were present and
	// the rest were ignored.
	Truncated bool
}

// records counts what the result has consumed towards MaxRecords.
func (r *Result) records() int { return len(r.Entities) + len(r.Relations) + r.Skipped }

func (r *Result) addEntity(name, typ, description string) {
	name = strings.ToUpper(cleanName(name))
	typ = strings.ToUpper(cleanName(typ))
	if !validName(name) || utf8.RuneCountInString(typ) > maxTypeRunes {
		r.Skipped++
		return
	}
	r.Entities = append(r.Entities, events.Entity{Name: name, Type: typ, Description: description})
}

func (r *Result) addRelation(source, target, description string, keywords []string, weight float64) {
	source = strings.ToUpper(cleanName(source))
	target = strings.ToUpper(cleanName(target))
	if !validName(source) || !validName(target) || events.EntityKey(source) == events.EntityKey(target) {
		r.Skipped++
		return
	}
	r.Relations = append(r.Relations, events.Relation{
		Source:      source,
		Target:      target,
		Description: description,
		Keywords:    keywords,
		Weight:      weight,
	})
}

func validName(name string) bool {
	return events.EntityKey(name) != "" && utf8.RuneCountInString(name) <= maxNameRunes
}

// cleanText is nano-graphrag's clean_str, except that whitespace runs
// (newlines of a record split across lines included) become one space
// instead of vanishing, so words are not glued together.
func cleanText(s string) string {
	s = html.UnescapeString(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// nameTrim is what may surround a name or a record type: quotes of any
// style and markdown emphasis. Single quotes are handled apart, as names
// end with apostrophes ("THE CRATCHITS'").
const nameTrim = "\"“”„«»`*_ "

func cleanName(s string) string {
	s = strings.Trim(cleanText(s), nameTrim)
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		s = strings.Trim(s[1:len(s)-1], nameTrim)
	}
	return s
}

// cleanDescription strips the quotes a tuple field is wrapped in, but only
// those: a description that ends with a quotation keeps its closing quote.
func cleanDescription(s string) string {
	s = cleanText(s)
	opens := strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "“")
	closes := strings.HasSuffix(s, `"`) || strings.HasSuffix(s, "”")
	quotes := strings.Count(s, `"`) + strings.Count(s, "“") + strings.Count(s, "”")
	if opens && (closes || quotes == 1) {
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	if closes && (opens || quotes == 1) {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

// splitKeywords splits a keywords field ("a, b; c") into distinct keywords.
func splitKeywords(s string) []string {
	var out []string
	seen := map[string]bool{}
	for kw := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ';' || r == '，' || r == '、' }) {
		kw = cleanName(kw)
		if kw == "" || seen[kw] {
			continue
		}
		seen[kw] = true
		out = append(out, kw)
	}
	return out
}

// parseStrength reads a relationship strength such as "8", "8.5", `"7"` or
// "8/10". Negative, non-finite and wordy values are not strengths.
func parseStrength(s string) (float64, bool) {
	s = cleanName(s)
	end := 0
	digits := 0
	dot := false
	for end < len(s) {
		c := s[end]
		if c >= '0' && c <= '9' {
			digits++
		} else if c == '.' && !dot {
			dot = true
		} else {
			break
		}
		end++
	}
	if digits == 0 || digits > 12 {
		return 0, false
	}
	if rest := s[end:]; rest != "" && !strings.ContainsRune("/ %)", rune(rest[0])) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
