// Package offline is kgraph's built-in extractor: a deterministic,
// network-free heuristic that finds capitalised names and links the names
// that share a sentence. It lets kgraph build a graph with no LLM configured;
// its results are clearly poorer than an LLM's, so they are reported under
// the extractor name "offline".
package offline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/events"
)

// Name is the extractor name reported with offline results.
const Name = "offline"

// Entity types the heuristics assign.
const (
	TypePerson       = "PERSON"
	TypeOrganization = "ORGANIZATION"
	TypeGeo          = "GEO"
	TypeConcept      = "CONCEPT"
)

// Limits per chunk. maxNameBytes is the schema's limit on entity names;
// longer runs of capitalised words than maxNameWords are headlines or
// all-caps prose rather than names.
const (
	maxEntities         = 200
	maxRelations        = 400
	maxDescriptionBytes = 300
	maxNameBytes        = 512
	maxNameWords        = 8
	// A line at least this long that ends without sentence punctuation is
	// taken as hard-wrapped prose, so its line break does not end the
	// sentence (Project Gutenberg texts wrap at about 70 characters).
	softWrapMinRunes = 50
	// Lower-case words that may join capitalised words inside one name, as
	// in "Bank of England" or "Ludwig van Beethoven"; at most
	// maxConnectorRun in a row ("Bank of the North").
	connectorWords  = "of the de du da di del van von der den"
	maxConnectorRun = 2
)

// Word lists, lower-case. They are constants so the package holds no
// mutable state; New turns them into sets.
const (
	// Function words that are capitalised only because they start a
	// sentence or clause.
	stopWords = `a an the and but or nor so yet for if then than when whenever while where wherever
whereas why how what whatever which who whom whose whoever this that these those there here
thus hence however therefore meanwhile moreover furthermore nevertheless indeed also still even
just only once now again never ever always often perhaps maybe yes no not oh ah alas well why
after before since until till unless although though because as at by from in into on onto
upon out over under about above below between among through throughout during without within
against toward towards to with of off up down like unlike near beside besides despite
is was are were be been being am do does did done has have had having can could will would
shall should may might must let lets each every all any some many much more most few several
both either neither such other another one none nothing everything something anything
everyone someone anyone nobody everybody somebody anybody whether instead otherwise
dear mine yours ours theirs hers said says chapter part`
	pronouns = `i me my myself we us our ourselves you your yourself yourselves he him his himself
she her herself it its itself they them their themselves thou thee thy thine ye`
	calendarWords = `january february march april may june july august september october november
december monday tuesday wednesday thursday friday saturday sunday`
	// Titles that make the name they start a PERSON; a title alone is no
	// entity.
	honorifics = `mr mrs ms mx miss mister master dr doctor sir lady lord dame madam madame mme mlle
captain capt professor prof rev reverend father king queen prince princess duke duchess earl
countess baron baroness colonel col lieutenant lt sergeant sgt president senator judge`
	// Abbreviations whose full stop neither ends a sentence nor the word
	// (besides single letters, which are initials).
	abbreviations = `mr mrs ms mx dr st mt jr sr prof capt col lt sgt gen rev hon fr messrs mme mlle vs`
	// A name of several words with one of these among them is an
	// ORGANIZATION ("Bank of England", "Royal Society of London").
	organizationWords = `bank company corporation corp inc ltd llc plc university college school academy
church society association institute institution ministry department council party museum
hospital club group agency committee foundation bureau office court parliament congress senate
army navy union league federation trust firm`
	// A name ending with one of these is a GEO.
	geoSuffixes = `street st road rd avenue ave lane square place city town village county state
province river lake mountain mountains hill hills valley island islands bay sea ocean park
bridge coast desert forest`
	// A name starting with one of these is a GEO.
	geoPrefixes = `mount mt lake river cape port fort isle`
	// Well-known places that are GEO on their own.
	geoNames = `london paris rome berlin madrid vienna moscow tokyo beijing delhi cairo dublin
edinburgh england scotland ireland wales britain france germany italy spain portugal russia
china japan india egypt canada mexico brazil australia europe asia africa america
antarctica`
	geoMultiWordNames = "new york|united states|united kingdom|great britain|los angeles|hong kong|new zealand|south africa"
)

// Extractor is the offline heuristic extractor. It is safe for concurrent
// use.
type Extractor struct {
	stopWords, pronouns, calendarWords, honorifics, abbreviations     set
	connectors, organizationWords, geoSuffixes, geoPrefixes, geoNames set
}

type set map[string]struct{}

func newSet(words []string) set {
	s := make(set, len(words))
	for _, w := range words {
		s[w] = struct{}{}
	}
	return s
}

func (s set) has(w string) bool {
	_, ok := s[w]
	return ok
}

// New returns an offline extractor.
func New() *Extractor {
	return &Extractor{
		stopWords:         newSet(strings.Fields(stopWords)),
		pronouns:          newSet(strings.Fields(pronouns)),
		calendarWords:     newSet(strings.Fields(calendarWords)),
		honorifics:        newSet(strings.Fields(honorifics)),
		abbreviations:     newSet(strings.Fields(abbreviations)),
		connectors:        newSet(strings.Fields(connectorWords)),
		organizationWords: newSet(strings.Fields(organizationWords)),
		geoSuffixes:       newSet(strings.Fields(geoSuffixes)),
		geoPrefixes:       newSet(strings.Fields(geoPrefixes)),
		geoNames:          newSet(append(strings.Fields(geoNames), strings.Split(geoMultiWordNames, "|")...)),
	}
}

// Name returns "offline".
func (e *Extractor) Name() string { return Name }

// Extract finds the entities and co-occurrence relations of one chunk.
//
// Entities are maximal runs of capitalised words (see names), deduplicated
// by events.EntityKey; each is described by the first sentence that mentions
// it. Every pair of distinct entities that share a sentence is one relation,
// described by the first such sentence and weighted by the number of
// sentences they share. Both lists are in order of first appearance and are
// capped at maxEntities and maxRelations (the first are kept). The result is
// never nil, so it encodes as an empty JSON list.
func (e *Extractor) Extract(ctx context.Context, text string) ([]events.Entity, []events.Relation, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("offline extract: %w", err)
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	entities := []events.Entity{}
	relations := []events.Relation{}
	entityIndex := map[string]int{}   // entity key → index in entities
	relationIndex := map[[2]int]int{} // entity index pair, lower first → index in relations
	for _, sentence := range e.sentences(text) {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("offline extract: %w", err)
		}
		mentions := e.names(sentence)
		if len(mentions) == 0 {
			continue
		}
		description := describe(sentence)
		var inSentence []int // indexes into entities, distinct, in order
		for _, m := range mentions {
			key := events.EntityKey(m.name)
			if key == "" {
				continue
			}
			idx, seen := entityIndex[key]
			if !seen {
				if len(entities) == maxEntities {
					continue
				}
				idx = len(entities)
				entityIndex[key] = idx
				entities = append(entities, events.Entity{Name: m.name, Type: m.typ, Description: description})
			}
			if !slices.Contains(inSentence, idx) {
				inSentence = append(inSentence, idx)
			}
		}
		for i, a := range inSentence {
			for _, b := range inSentence[i+1:] {
				pair := [2]int{min(a, b), max(a, b)}
				if r, ok := relationIndex[pair]; ok {
					relations[r].Weight++
					continue
				}
				if len(relations) == maxRelations {
					continue
				}
				relationIndex[pair] = len(relations)
				relations = append(relations, events.Relation{
					Source:      entities[a].Name,
					Target:      entities[b].Name,
					Description: description,
					Weight:      1,
				})
			}
		}
	}
	return entities, relations, nil
}

// describe turns a sentence into a description: whitespace collapsed and at
// most maxDescriptionBytes long, cut at a character boundary.
func describe(sentence string) string {
	d := strings.Join(strings.Fields(sentence), " ")
	if len(d) <= maxDescriptionBytes {
		return d
	}
	cut := maxDescriptionBytes
	for cut > 0 && !utf8.RuneStart(d[cut]) {
		cut--
	}
	return strings.TrimSpace(d[:cut])
}

// sentences splits text at sentence punctuation (., !, ? and any closing
// quotes or brackets after it, when followed by whitespace or the end), at
// blank lines, and at line breaks. Punctuation does not end a sentence after
// an abbreviation or initial ("Mr.", "St.", "J.") or before a lower-case
// word; a line break does not end one when it ends a long line without
// sentence punctuation, which is hard-wrapped prose.
func (e *Extractor) sentences(text string) []string {
	var out []string
	start, lineStart := 0, 0
	cut := func(end int) {
		if s := strings.TrimSpace(text[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	for i := 0; i < len(text); {
		switch text[i] {
		case '.', '!', '?':
			end := i
			for end < len(text) && strings.IndexByte(".!?", text[end]) >= 0 {
				end++
			}
			for end < len(text) {
				r, size := utf8.DecodeRuneInString(text[end:])
				if !isCloser(r) {
					break
				}
				end += size
			}
			next, _ := utf8.DecodeRuneInString(text[end:])
			switch {
			case end < len(text) && !unicode.IsSpace(next):
				// "3.14", "U.S.A", "Hello.World": not a sentence end.
			case end-i == 1 && text[i] == '.' && e.isAbbreviation(wordBefore(text, i)):
				// "Mr. Scrooge", "J. R. R. Tolkien": the sentence goes on.
			case startsLower(text[end:]):
				// `"Humbug!" said Scrooge`, "etc. and": the sentence goes on.
			default:
				cut(end)
			}
			i = end
		case '\n':
			line := strings.TrimSpace(text[lineStart:i])
			if utf8.RuneCountInString(line) < softWrapMinRunes || blankLineFollows(text, i+1) {
				cut(i)
			}
			i++
			lineStart = i
		default:
			i++
		}
	}
	cut(len(text))
	return out
}

// startsLower reports whether the first non-space character of s is a
// lower-case letter.
func startsLower(s string) bool {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLower(r)
}

// blankLineFollows reports whether the line starting at i holds only
// whitespace (a paragraph break).
func blankLineFollows(text string, i int) bool {
	for ; i < len(text); i++ {
		switch text[i] {
		case '\n':
			return true
		case ' ', '\t', '\r', '\v', '\f':
		default:
			return false
		}
	}
	return true
}

func isCloser(r rune) bool {
	return strings.ContainsRune("\"')]}»”’", r)
}

// wordBefore returns the letters immediately before byte offset i.
func wordBefore(text string, i int) string {
	j := i
	for j > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:j])
		if !unicode.IsLetter(r) {
			break
		}
		j -= size
	}
	return text[j:i]
}

// isAbbreviation reports whether a full stop after word is part of it: a
// known abbreviation or a single letter (an initial, "e.g.", "U.S.").
func (e *Extractor) isAbbreviation(word string) bool {
	return utf8.RuneCountInString(word) == 1 || e.abbreviations.has(strings.ToLower(word))
}

// word is one word of a sentence.
type word struct {
	text string // as written, without a possessive 's
	// joined: only whitespace separates it from the previous word, so both
	// may belong to one name.
	joined bool
	// clauseStart: the first word of the sentence or of a quoted or
	// parenthesised clause, where any word is capitalised.
	clauseStart bool
	capitalised bool
	// possessive: the word ended in 's, which ends a name ("Scrooge's
	// nephew").
	possessive bool
	// contraction: "I'm", "don't" — never part of a name.
	contraction bool
}

// canJoin reports whether w may continue a name: a capitalised word that is
// no contraction, no title (a title starts a new name) and no pronoun other
// than "I" (a Roman numeral in "Henry I", but "He" after an unsplit "St."
// would be wrong).
func (e *Extractor) canJoin(w word) bool {
	return w.capitalised && !w.contraction && !e.isHonorific(w.text) &&
		(w.text == "I" || !e.pronouns.has(strings.ToLower(w.text)))
}

// clauseMarks start a clause when they separate two words.
const clauseMarks = "\"“”‘’'([{«»:;—–-.!?¿¡"

// words splits a sentence into words: letters, digits and combining marks,
// with inner apostrophes and hyphens ("O'Brien", "Jean-Luc"), plus the full
// stop of an abbreviation or initial ("Mr.", "J.", "U.S.A.").
func (e *Extractor) words(sentence string) []word {
	var words []word
	sepStart := 0
	sawLetter := false
	for i := 0; i < len(sentence); {
		r, size := utf8.DecodeRuneInString(sentence[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			i += size
			continue
		}
		start := i
		end := scanWord(sentence, i)
		end = e.extendAbbreviation(sentence, start, end)
		sep := sentence[sepStart:start]
		text := sentence[start:end]
		w := word{
			joined:      len(words) > 0 && sep != "" && strings.TrimSpace(sep) == "",
			clauseStart: !sawLetter || strings.ContainsAny(sep, clauseMarks),
			capitalised: unicode.IsUpper(r) || unicode.IsTitle(r),
		}
		if stem, ok := cutPossessive(text); ok {
			w.possessive = true
			text = stem
		} else {
			norm := strings.ToLower(strings.ReplaceAll(text, "’", "'"))
			w.contraction = hasAnySuffix(norm, "n't", "'m", "'ll", "'d", "'ve", "'re")
		}
		w.text = text
		words = append(words, w)
		sawLetter = sawLetter || unicode.IsLetter(r)
		sepStart, i = end, end
	}
	return words
}

// scanWord returns the end of the word starting at i.
func scanWord(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
			i += size
			continue
		}
		if r == '\'' || r == '’' || r == '-' {
			if next, _ := utf8.DecodeRuneInString(s[i+size:]); unicode.IsLetter(next) || unicode.IsDigit(next) {
				i += size
				continue
			}
		}
		break
	}
	return i
}

// extendAbbreviation takes the full stop after an abbreviation or a capital
// initial into the word, and with it a dotted acronym's further letters
// ("U.S.A.").
func (e *Extractor) extendAbbreviation(s string, start, end int) int {
	if end >= len(s) || s[end] != '.' {
		return end
	}
	w := s[start:end]
	first, _ := utf8.DecodeRuneInString(w)
	initial := utf8.RuneCountInString(w) == 1 && unicode.IsUpper(first)
	if !initial && !e.abbreviations.has(strings.ToLower(w)) {
		return end
	}
	end++
	if !initial {
		return end
	}
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		if !unicode.IsUpper(r) || end+size >= len(s) || s[end+size] != '.' {
			break
		}
		end += size + 1
	}
	return end
}

// cutPossessive removes a possessive 's (any apostrophe, any case).
func cutPossessive(w string) (string, bool) {
	for _, suffix := range []string{"'s", "'S", "’s", "’S"} {
		if stem, ok := strings.CutSuffix(w, suffix); ok && stem != "" {
			return stem, true
		}
	}
	return w, false
}

func hasAnySuffix(s string, suffixes ...string) bool {
	for _, suf := range suffixes {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	return false
}

// mention is one entity name found in a sentence.
type mention struct {
	name string
	typ  string
}

// names finds the entity names of a sentence: maximal runs of capitalised
// words joined by whitespace, which may hold connector words between
// capitalised words ("Bank of England"). A possessive ends a run after the
// word; a title ("Mr.") starts a new one. From a run it drops a clause-
// initial function word ("The Bank of England" → "Bank of England"), and it
// drops a run that is a lone pronoun, month or weekday, title, single
// letter, or clause-initial function word.
func (e *Extractor) names(sentence string) []mention {
	words := e.words(sentence)
	allCaps := !hasLower(sentence)
	var out []mention
	for i := 0; i < len(words); {
		if !words[i].capitalised || words[i].contraction {
			i++
			continue
		}
		last := i
	extend:
		for !words[last].possessive {
			next := last + 1
			for connectors := 0; next < len(words) && connectors < maxConnectorRun &&
				words[next].joined && e.connectors.has(words[next].text); connectors++ {
				next++
			}
			if next >= len(words) || !words[next].joined || !e.canJoin(words[next]) {
				break extend
			}
			last = next
		}
		if m, ok := e.mention(words[i:last+1], allCaps); ok {
			out = append(out, m)
		}
		i = last + 1
	}
	return out
}

// mention turns a run of words into an entity name, if it is one.
func (e *Extractor) mention(run []word, allCapsSentence bool) (mention, bool) {
	if len(run) > 1 && run[0].clauseStart && e.isFunctionWord(run[0].text) {
		run = run[1:]
		for len(run) > 0 && e.connectors.has(run[0].text) {
			run = run[1:]
		}
	}
	if len(run) == 0 || len(run) > maxNameWords {
		return mention{}, false
	}
	if len(run) == 1 {
		w := run[0]
		lower := strings.ToLower(w.text)
		switch {
		case w.clauseStart && e.stopWords.has(lower),
			e.pronouns.has(lower), e.calendarWords.has(lower), e.isHonorific(w.text),
			letterCount(w.text) < 2:
			return mention{}, false
		}
	}
	parts := make([]string, len(run))
	for i, w := range run {
		parts[i] = w.text
	}
	name := strings.Join(parts, " ")
	if len(name) > maxNameBytes {
		return mention{}, false
	}
	return mention{name: name, typ: e.classify(parts, allCapsSentence)}, true
}

// classify picks the entity type of a name from its words.
func (e *Extractor) classify(parts []string, allCapsSentence bool) string {
	first := strings.ToLower(strings.TrimSuffix(parts[0], "."))
	last := strings.ToLower(strings.TrimSuffix(parts[len(parts)-1], "."))
	multi := len(parts) > 1
	switch {
	case multi && e.honorifics.has(first):
		return TypePerson
	case !multi && !allCapsSentence && isAcronym(parts[0]):
		return TypeOrganization
	case multi && slices.ContainsFunc(parts, func(p string) bool { return e.organizationWords.has(strings.ToLower(p)) }):
		return TypeOrganization
	case multi && (e.geoSuffixes.has(last) || e.geoPrefixes.has(first)),
		e.geoNames.has(strings.ToLower(strings.Join(parts, " "))):
		return TypeGeo
	default:
		return TypeConcept
	}
}

func (e *Extractor) isFunctionWord(w string) bool {
	lower := strings.ToLower(w)
	return e.stopWords.has(lower) || e.pronouns.has(lower)
}

func (e *Extractor) isHonorific(w string) bool {
	return e.honorifics.has(strings.ToLower(strings.TrimSuffix(w, ".")))
}

// isAcronym reports an all-capital word of 2 to 6 letters ("NASA", "BBC").
func isAcronym(w string) bool {
	n := 0
	for _, r := range w {
		if !unicode.IsUpper(r) {
			return false
		}
		n++
	}
	return n >= 2 && n <= 6
}

func letterCount(w string) int {
	n := 0
	for _, r := range w {
		if unicode.IsLetter(r) {
			n++
		}
	}
	return n
}

func hasLower(s string) bool {
	for _, r := range s {
		if unicode.IsLower(r) {
			return true
		}
	}
	return false
}
