package fakellm

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// foundEntity is a capitalised phrase of a text, as the heuristic extractor
// reports it.
type foundEntity struct {
	name     string // as written, e.g. "Mr. Fezziwig"
	key      string // upper-cased name, the identity used in the output
	mentions int
	first    int  // index of the first sentence mentioning it
	person   bool // introduced by an honorific
}

// findings is the result of scanning a text: its entities, most mentioned
// first, and which entities each sentence mentions.
type findings struct {
	entities  []foundEntity
	sentences [][]int  // sentence → indexes into entities, in order of appearance
	texts     []string // sentence → its words joined by spaces
}

// word is one token of the scanner: a run of letters, digits, apostrophes
// and hyphens, with what separates it from the next token.
type word struct {
	text string
	// joinsNext reports that only spaces (or a single line break) separate
	// this word from the next one, so they may belong to the same name.
	joinsNext bool
	// endsSentence reports that a sentence ends after this word.
	endsSentence bool
	// start and sepEnd are the byte offsets of the word and of the end of
	// the separator after it, to quote sentences as written.
	start, sepEnd int
}

// findEntities is a deliberately simple named-entity finder: runs of
// capitalised words (allowing "of" / "of the" inside, so "Ghost of Christmas
// Past" stays whole), with common sentence starters dropped and honorifics
// kept as part of the name. A one-word name at the start of a sentence
// counts only if the word is also capitalised somewhere mid-sentence, which
// filters "Darkness is cheap" but keeps "Marley was dead".
func findEntities(text string) findings {
	text = normalizeQuotes(text)
	sentences := splitSentences(tokenize(text))

	midSentence := map[string]bool{}
	for _, s := range sentences {
		for i, w := range s {
			if i > 0 && isCapitalised(w.text) {
				midSentence[w.text] = true
			}
		}
	}

	var f findings
	index := map[string]int{}
	for si, s := range sentences {
		var here []int
		for _, phrase := range capitalisedRuns(s) {
			if len(phrase.words) == 1 && phrase.start == 0 && !phrase.honorific && !midSentence[phrase.words[0]] {
				continue
			}
			name := strings.Join(phrase.words, " ")
			key := strings.ToUpper(name)
			i, seen := index[key]
			if !seen {
				i = len(f.entities)
				index[key] = i
				f.entities = append(f.entities, foundEntity{name: name, key: key, first: si, person: phrase.honorific})
			}
			f.entities[i].mentions++
			if !slices.Contains(here, i) {
				here = append(here, i)
			}
		}
		f.sentences = append(f.sentences, here)
		// The separator after the last word may hold the next sentence's
		// opening quote or bracket.
		f.texts = append(f.texts, strings.TrimRight(collapseSpace(text[s[0].start:s[len(s)-1].sepEnd]), " \"'(["))
	}

	// Most mentioned first, then first seen; remap the sentence indexes.
	order := make([]int, len(f.entities))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ea, eb := f.entities[a], f.entities[b]
		if ea.mentions != eb.mentions {
			return eb.mentions - ea.mentions
		}
		return ea.first - eb.first
	})
	newIndex := make([]int, len(order))
	sorted := make([]foundEntity, len(order))
	for to, from := range order {
		newIndex[from] = to
		sorted[to] = f.entities[from]
	}
	f.entities = sorted
	for _, s := range f.sentences {
		for j := range s {
			s[j] = newIndex[s[j]]
		}
	}
	return f
}

type run struct {
	words     []string
	start     int // index of the first word in the sentence
	honorific bool
}

// capitalisedRuns returns the candidate names of one sentence.
func capitalisedRuns(s []word) []run {
	var runs []run
	for i := 0; i < len(s); {
		if !isCapitalised(s[i].text) {
			i++
			continue
		}
		start := i
		words := []string{s[i].text}
		for s[i].joinsNext && i+1 < len(s) {
			next := i + 1
			if isCapitalised(s[next].text) {
				words = append(words, s[next].text)
				i = next
				continue
			}
			// "of" and "of the" may join two capitalised words.
			if s[next].text == "of" && s[next].joinsNext && next+1 < len(s) {
				if isCapitalised(s[next+1].text) {
					words = append(words, "of", s[next+1].text)
					i = next + 1
					continue
				}
				if s[next+1].text == "the" && s[next+1].joinsNext && next+2 < len(s) && isCapitalised(s[next+2].text) {
					words = append(words, "of", "the", s[next+2].text)
					i = next + 2
					continue
				}
			}
			break
		}
		i++
		r := trimRun(words, start)
		if len(r.words) > 0 {
			runs = append(runs, r)
		}
	}
	return runs
}

// trimRun drops sentence starters and pronouns from the front of a run and
// strips possessives; a run that is only an honorific is dropped.
func trimRun(words []string, start int) run {
	for len(words) > 0 && isStopword(words[0]) {
		words = words[1:]
		start++
	}
	for i, w := range words {
		words[i] = stripPossessive(w)
	}
	r := run{words: words, start: start}
	if len(words) > 0 && isHonorific(words[0]) {
		if len(words) == 1 {
			return run{}
		}
		r.honorific = true
		if !strings.HasSuffix(words[0], ".") && isAbbreviation(words[0]) {
			words[0] += "."
		}
	}
	return r
}

func tokenize(text string) []word {
	var words []word
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		start := i
		for i < len(text) {
			r, size = utf8.DecodeRuneInString(text[i:])
			if !isWordRune(r) {
				break
			}
			i += size
		}
		w := strings.Trim(text[start:i], "'-")
		if w == "" {
			continue
		}
		// Look at the separator up to the next word.
		sepEnd := i
		for sepEnd < len(text) {
			r, size = utf8.DecodeRuneInString(text[sepEnd:])
			if isWordRune(r) {
				break
			}
			sepEnd += size
		}
		cw := classifySeparator(w, text[i:sepEnd], sepEnd == len(text))
		cw.start, cw.sepEnd = start, sepEnd
		words = append(words, cw)
	}
	return words
}

func classifySeparator(w, sep string, atEnd bool) word {
	out := word{text: w}
	trimmed := strings.TrimSpace(sep)
	lineBreaks := strings.Count(sep, "\n")
	switch {
	case atEnd || lineBreaks >= 2:
		out.endsSentence = true
	case trimmed == "":
		out.joinsNext = sep != ""
	case trimmed == "." && (isAbbreviation(w) || isInitial(w)):
		// "Mr. Fezziwig", "J. B. Lippincott": the dot is not a sentence end.
		out.text = w + "."
		out.joinsNext = lineBreaks < 2
	case strings.ContainsAny(trimmed, ".!?"):
		out.endsSentence = true
	}
	return out
}

func splitSentences(words []word) [][]word {
	var sentences [][]word
	var current []word
	for _, w := range words {
		current = append(current, w)
		if w.endsSentence {
			sentences = append(sentences, current)
			current = nil
		}
	}
	if len(current) > 0 {
		sentences = append(sentences, current)
	}
	return sentences
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-'
}

func isCapitalised(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r)
}

func isInitial(w string) bool {
	return utf8.RuneCountInString(w) == 1 && isCapitalised(w)
}

func normalizeQuotes(s string) string {
	return strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u201c", "\"", "\u201d", "\"").Replace(s)
}

func stripPossessive(w string) string {
	for _, suffix := range []string{"'s", "'S"} {
		if s, ok := strings.CutSuffix(w, suffix); ok && s != "" {
			return s
		}
	}
	return w
}

// isAbbreviation reports honorifics that are written with a dot.
func isAbbreviation(w string) bool {
	switch strings.TrimSuffix(w, ".") {
	case "Mr", "Mrs", "Ms", "Dr", "Prof", "Capt", "Rev", "St", "Jr", "Sr":
		return true
	}
	return false
}

func isHonorific(w string) bool {
	switch strings.TrimSuffix(w, ".") {
	case "Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Professor", "Capt", "Captain", "Rev",
		"Sir", "Lady", "Lord", "Madam", "Madame", "Master", "Mistress", "Uncle", "Aunt",
		"King", "Queen", "Prince", "Princess", "President", "General", "Colonel":
		return true
	}
	return false
}

// isStopword reports the capitalised words that start sentences without
// naming anything.
func isStopword(w string) bool {
	lower := strings.ToLower(w)
	if strings.HasPrefix(lower, "i'") { // I'll, I'm, I've, I'd
		return true
	}
	switch lower {
	case "a", "an", "the", "and", "but", "or", "nor", "so", "yet", "for", "if", "then",
		"when", "while", "where", "what", "who", "whom", "whose", "which", "why", "how",
		"i", "he", "she", "it", "we", "you", "they", "me", "him", "her", "us", "them",
		"my", "his", "its", "our", "your", "their", "this", "that", "these", "those",
		"there", "here", "in", "on", "at", "by", "with", "from", "to", "of", "as", "after",
		"before", "all", "some", "no", "not", "yes", "oh", "ah", "now", "once", "upon",
		"said", "is", "was", "be", "do", "did", "has", "had", "have", "let", "even", "such",
		"every", "each", "any", "one", "up", "out", "into", "over", "again", "very", "well":
		return true
	}
	return false
}
