package fakellm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/libs/prompts"
)

const (
	tupleDelimiter      = prompts.DefaultTupleDelimiter
	recordDelimiter     = prompts.DefaultRecordDelimiter
	completionDelimiter = prompts.DefaultCompletionDelimiter

	// descriptionQuoteBytes bounds the sentence quoted in a heuristic
	// description.
	descriptionQuoteBytes = 200
	// summaryBytes bounds a heuristic description summary.
	summaryBytes = 800
	// answerQuoteBytes bounds the context quoted in a heuristic answer.
	answerQuoteBytes = 400
	// mapPoints and mapPointBytes bound a heuristic global-map answer.
	mapPoints     = 5
	mapPointBytes = 300
	// reportFindings bounds the findings of a heuristic community report.
	reportFindings = 5
)

// heuristic answers prompts with deterministic output computed from the
// prompt alone.
type heuristic struct {
	maxEntities int // per extraction pass; the rest is left for gleaning
	gleanYes    int
}

// extractedEntity and extractedRelation are one record of an extraction
// output, in either format.
type extractedEntity struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

type extractedRelation struct {
	Source      string   `json:"source"`
	Target      string   `json:"target"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
	Strength    float64  `json:"strength"`
}

type extractionJSON struct {
	Entities      []extractedEntity   `json:"entities"`
	Relationships []extractedRelation `json:"relationships"`
}

// extraction answers the first pass of an extraction prompt: the most
// mentioned entities (up to maxEntities) and their co-occurrences.
func (h heuristic) extraction(text string, entityTypes []string, asJSON bool) string {
	f := findEntities(text)
	chosen := make([]bool, len(f.entities))
	for i := range min(h.maxEntities, len(f.entities)) {
		chosen[i] = true
	}
	return h.render(f, chosen, chosen, entityTypes, asJSON)
}

// glean answers a gleaning round: the entities the previous rounds did not
// name (up to maxEntities more), with their co-occurrences with any entity
// named so far. When nothing is left it answers with an empty extraction.
func (h heuristic) glean(text string, entityTypes []string, asJSON bool, named map[string]bool) string {
	f := findEntities(text)
	known := make([]bool, len(f.entities))
	fresh := make([]bool, len(f.entities))
	added := 0
	for i, e := range f.entities {
		switch {
		case named[e.key]:
			known[i] = true
		case added < h.maxEntities:
			fresh[i], known[i] = true, true
			added++
		}
	}
	if added == 0 {
		if asJSON {
			return `{"entities":[],"relationships":[]}`
		}
		return ""
	}
	return h.render(f, fresh, known, entityTypes, asJSON)
}

// render writes the entities marked emit, and the relationships between
// entities marked known of which at least one is emitted.
func (h heuristic) render(f findings, emit, known []bool, entityTypes []string, asJSON bool) string {
	var out extractionJSON
	for i, e := range f.entities {
		if !emit[i] {
			continue
		}
		out.Entities = append(out.Entities, extractedEntity{
			Name:        e.key,
			Type:        strings.ToUpper(entityType(e, entityTypes)),
			Description: fmt.Sprintf("%s is mentioned %s in the text, first in: %s", e.name, times(e.mentions), cutWords(f.texts[e.first], descriptionQuoteBytes)),
		})
	}

	type pair struct{ a, b int }
	counts := map[pair]int{}
	example := map[pair]int{}
	for si, s := range f.sentences {
		for x := range s {
			for y := x + 1; y < len(s); y++ {
				p := pair{min(s[x], s[y]), max(s[x], s[y])}
				if !known[p.a] || !known[p.b] || (!emit[p.a] && !emit[p.b]) {
					continue
				}
				if counts[p] == 0 {
					example[p] = si
				}
				counts[p]++
			}
		}
	}
	pairs := make([]pair, 0, len(counts))
	for p := range counts {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(x, y pair) int {
		if counts[x] != counts[y] {
			return counts[y] - counts[x]
		}
		if x.a != y.a {
			return x.a - y.a
		}
		return x.b - y.b
	})
	// Real extractions name a couple of relationships per entity, not every
	// co-occurring pair of a long chunk.
	if limit := 2 * h.maxEntities; len(pairs) > limit {
		pairs = pairs[:limit]
	}
	for _, p := range pairs {
		a, b := f.entities[p.a], f.entities[p.b]
		out.Relationships = append(out.Relationships, extractedRelation{
			Source:      a.key,
			Target:      b.key,
			Description: fmt.Sprintf("%s and %s appear together %s, e.g.: %s", a.name, b.name, times(counts[p]), cutWords(f.texts[example[p]], descriptionQuoteBytes)),
			Keywords:    []string{"co-occurrence"},
			Strength:    float64(counts[p]),
		})
	}

	if asJSON {
		if out.Entities == nil {
			out.Entities = []extractedEntity{}
		}
		if out.Relationships == nil {
			out.Relationships = []extractedRelation{}
		}
		return marshalCompact(out)
	}
	return renderTuples(out)
}

func renderTuples(out extractionJSON) string {
	records := make([]string, 0, len(out.Entities)+len(out.Relationships))
	for _, e := range out.Entities {
		records = append(records, "(\"entity\""+tupleDelimiter+clean(e.Name)+tupleDelimiter+clean(e.Type)+tupleDelimiter+clean(e.Description)+")")
	}
	for _, r := range out.Relationships {
		records = append(records, "(\"relationship\""+tupleDelimiter+clean(r.Source)+tupleDelimiter+clean(r.Target)+tupleDelimiter+clean(r.Description)+tupleDelimiter+fmt.Sprint(r.Strength)+")")
	}
	return strings.Join(records, recordDelimiter+"\n") + completionDelimiter
}

// clean keeps a field from breaking the tuple format: no delimiters, no line
// breaks.
func clean(field string) string {
	field = strings.NewReplacer(tupleDelimiter, " ", completionDelimiter, " ", recordDelimiter, "#", "\n", " ", "\r", " ").Replace(field)
	return strings.TrimSpace(field)
}

// entityType maps an entity to one of the allowed types by a few cues: an
// honorific means a person, a place or organisation suffix means those. It
// falls back to the first allowed type, or ORGANIZATION.
func entityType(e foundEntity, allowed []string) string {
	want := func(names ...string) string {
		for _, t := range allowed {
			if slices.Contains(names, strings.ToLower(t)) {
				return t
			}
		}
		return ""
	}
	words := strings.Fields(e.name)
	last := words[len(words)-1]
	var t string
	switch {
	case e.person:
		t = want("person", "people", "character", "individual")
	case isPlaceWord(last):
		t = want("geo", "location", "place", "gpe")
	case isOrganisationWord(last):
		t = want("organization", "organisation", "company", "org")
	case isEventWord(last):
		t = want("event")
	}
	if t != "" {
		return t
	}
	if len(allowed) > 0 {
		return allowed[0]
	}
	return "organization"
}

func isPlaceWord(w string) bool {
	switch w {
	case "Street", "Road", "Lane", "Avenue", "Square", "City", "Town", "Village", "County",
		"River", "Lake", "Sea", "Ocean", "Mountain", "Mountains", "Hill", "Island", "Park",
		"Bridge", "Valley", "Coast", "Country", "Kingdom", "Republic", "Province", "State":
		return true
	}
	return false
}

func isOrganisationWord(w string) bool {
	switch strings.TrimSuffix(w, ".") {
	case "Inc", "Corp", "Corporation", "Company", "Co", "Ltd", "LLC", "GmbH", "Bank",
		"University", "College", "School", "Institute", "Ministry", "Department", "Agency",
		"Association", "Society", "Council", "Committee", "Group", "Foundation", "Party",
		"Church", "Army", "Navy", "Office", "Bureau", "Court", "Parliament", "Senate":
		return true
	}
	return false
}

func isEventWord(w string) bool {
	switch w {
	case "War", "Battle", "Festival", "Conference", "Summit", "Revolution", "Election",
		"Day", "Eve", "Games", "Olympics", "Ceremony", "Treaty":
		return true
	}
	return false
}

// entityTypesOf reads the entity types of an extraction prompt's -Real Data-
// section ("Entity_types: a,b,c"), or the defaults.
func entityTypesOf(prompt string) []string {
	const header = "-Real Data-\n######################\nEntity_types: "
	at := strings.Index(prompt, header)
	if at < 0 {
		return prompts.DefaultEntityTypes()
	}
	line, _, _ := strings.Cut(prompt[at+len(header):], "\n")
	var types []string
	for t := range strings.SplitSeq(strings.Trim(line, "[] "), ",") {
		if t = strings.Trim(t, " '\""); t != "" {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return prompts.DefaultEntityTypes()
	}
	return types
}

// gleanLoop answers "are entities still missing?": YES for the first
// gleanYes gleaning rounds of a conversation, NO after.
func (h heuristic) gleanLoop(roundsDone int) string {
	if max(roundsDone, 1) <= h.gleanYes {
		return "YES"
	}
	return "NO"
}

// summarize joins the first sentence of each description, without repeats.
func (h heuristic) summarize(prompt string) string {
	name, descriptions, ok := prompts.SummarizeInput(prompt)
	if ok && descriptions == nil {
		// nano-graphrag renders the list as one string joined by <SEP>.
		if _, list, found := strings.Cut(prompt, "\nDescription List: "); found {
			list, _, _ = strings.Cut(list, "\n#######")
			descriptions = strings.Split(list, "<SEP>")
		}
	}
	var sentences []string
	for _, d := range descriptions {
		if s := firstSentence(d); s != "" && !slices.Contains(sentences, s) {
			sentences = append(sentences, s)
		}
	}
	if len(sentences) == 0 {
		return strings.TrimSpace(name)
	}
	return cutWords(strings.Join(sentences, " "), summaryBytes)
}

func firstSentence(s string) string {
	s = collapseSpace(s)
	for i, r := range s {
		if (r == '.' || r == '!' || r == '?') && (i+1 == len(s) || s[i+1] == ' ') {
			return s[:i+1]
		}
	}
	return s
}

// communityReport is the JSON object a community report prompt asks for.
type communityReport struct {
	Title             string          `json:"title"`
	Summary           string          `json:"summary"`
	Rating            float64         `json:"rating"`
	RatingExplanation string          `json:"rating_explanation"`
	Findings          []reportFinding `json:"findings"`
}

type reportFinding struct {
	Summary     string `json:"summary"`
	Explanation string `json:"explanation"`
}

// communityReport builds a report from the entity and relationship tables of
// the prompt, falling back to the capitalised phrases of its input when it
// has no entity table.
func (h heuristic) communityReport(prompt string) string {
	input, ok := prompts.CommunityReportInput(prompt)
	if !ok {
		input = prompt
	}
	t := parseTables(input)
	entities := t.entities
	if len(entities) == 0 {
		for _, e := range findEntities(input).entities {
			entities = append(entities, tableEntity{name: e.key})
		}
	}
	if len(entities) == 0 {
		return marshalIndented(communityReport{
			Title:             "Empty community",
			Summary:           "The input lists no entities.",
			Rating:            0,
			RatingExplanation: "There is nothing in the community to rate.",
			Findings:          []reportFinding{{Summary: "No entities", Explanation: "The community tables are empty."}},
		})
	}

	names := make([]string, len(entities))
	for i, e := range entities {
		names[i] = e.name
	}
	title := names[0]
	if len(names) > 1 {
		title += " and " + names[1]
	}
	summary := fmt.Sprintf("The community has %d entities and %d relationships and centres on %s.", len(entities), t.relationships, names[0])
	if len(names) > 1 {
		summary += " It also includes " + strings.Join(names[1:min(len(names), 6)], ", ") + "."
	}
	rating := math.Min(10, 1+0.5*float64(len(entities))+0.1*float64(t.relationships))
	rating = math.Round(rating*10) / 10

	findings := make([]reportFinding, 0, reportFindings)
	for _, e := range entities[:min(len(entities), reportFindings)] {
		explanation := e.name
		if e.typ != "" {
			explanation += " (" + e.typ + ")"
		}
		if e.description != "" {
			explanation += ": " + cutWords(e.description, 400)
		} else {
			explanation += " is a member of this community."
		}
		if n := t.degree[strings.ToUpper(e.name)]; n > 0 {
			explanation += fmt.Sprintf(" It takes part in %s listed here.", plural(n, "relationship"))
		}
		if e.id != "" {
			explanation += " [Data: Entities (" + e.id + ")]"
		}
		findings = append(findings, reportFinding{Summary: "The role of " + e.name, Explanation: explanation})
	}
	return marshalIndented(communityReport{
		Title:             title,
		Summary:           summary,
		Rating:            rating,
		RatingExplanation: fmt.Sprintf("The rating grows with the size of the community: %s and %s.", plural(len(entities), "entity"), plural(t.relationships, "relationship")),
		Findings:          findings,
	})
}

// answerContext returns the data a query prompt carries: the data tables,
// the analysts' reports or the knowledge chunks.
func answerContext(kind prompts.Kind, prompt string) string {
	var start, end string
	switch kind {
	case prompts.KindLocalAnswer, prompts.KindGlobalMap:
		start, end = "---Data tables---\n", "\n---Goal---"
	case prompts.KindGlobalReduce:
		start, end = "---Analyst Reports---\n", "\n---Goal---"
	case prompts.KindNaiveAnswer:
		start, end = "Below are the knowledge you know:\n", "\n---\nIf you don't know"
	default:
		return strings.TrimSpace(prompt)
	}
	at := strings.Index(prompt, start)
	if at < 0 {
		return strings.TrimSpace(prompt)
	}
	rest := prompt[at+len(start):]
	if stop := strings.LastIndex(rest, end); stop >= 0 {
		rest = rest[:stop]
	}
	return strings.TrimSpace(rest)
}

// answer quotes the beginning of the context, so a test can tell which
// context an answer was given.
func (h heuristic) answer(kind prompts.Kind, prompt, question string) string {
	data := answerContext(kind, prompt)
	if data == "" {
		return prompts.FailResponse
	}
	var b strings.Builder
	b.WriteString("## Answer\n\n")
	if question != "" {
		b.WriteString("Question: " + collapseSpace(question) + "\n\n")
	}
	b.WriteString("Based on the data provided: \"" + cutWords(collapseSpace(data), answerQuoteBytes) + "\"\n")
	return b.String()
}

type mapPoint struct {
	Description string `json:"description"`
	Score       int    `json:"score"`
}

// globalMap turns the first rows of the context into scored points; a row
// sharing more words with the question scores higher.
func (h heuristic) globalMap(prompt, question string) string {
	data := answerContext(prompts.KindGlobalMap, prompt)
	var rows []string
	afterFence := false
	for line := range strings.SplitSeq(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			afterFence = strings.HasPrefix(line, "```csv")
			continue
		case afterFence:
			afterFence = false // the table's header row
			continue
		case line == "" || strings.HasPrefix(line, "-----"):
			continue
		}
		rows = append(rows, line)
		if len(rows) == mapPoints {
			break
		}
	}
	points := make([]mapPoint, 0, len(rows))
	words := questionWords(question)
	for i, row := range rows {
		score := 50 - 5*i
		if len(words) > 0 {
			lower := strings.ToLower(row)
			hits := 0
			for _, w := range words {
				if strings.Contains(lower, w) {
					hits++
				}
			}
			score = min(100, 10+20*hits)
		}
		points = append(points, mapPoint{Description: cutWords(row, mapPointBytes), Score: score})
	}
	if len(points) == 0 {
		points = append(points, mapPoint{Description: "I don't know: the data tables hold no information.", Score: 0})
	}
	return marshalIndented(map[string][]mapPoint{"points": points})
}

// questionWords returns the distinct lower-cased words of at least four
// letters of a question.
func questionWords(q string) []string {
	var words []string
	for _, w := range strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if utf8.RuneCountInString(w) >= 4 && !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return words
}

// unknown answers a prompt of no known kind with something recognisable.
func (h heuristic) unknown(lastUser string) string {
	return "fakellm heuristic reply to: \"" + cutWords(collapseSpace(lastUser), 120) + "\""
}

// cutWords shortens s to at most n bytes, at a word boundary when there is
// one, marking the cut with "...".
func cutWords(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := cutAtRune(s, n)
	if sp := strings.LastIndexByte(cut, ' '); sp > n/2 {
		cut = cut[:sp]
	}
	return cut + "..."
}

func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func marshalCompact(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// The values marshalled here are plain structs of strings and numbers.
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// marshalIndented formats JSON the way gpt-4o does in the recorded reports.
func marshalIndented(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}
