// Package corpusgen generates seeded synthetic corpora with many distinct
// entities, for benchmarks at corpus scale: documents of paragraphs that
// name invented people, organisations and places drawn from large pools,
// with a skewed popularity (a few names appear in many documents, most in a
// few), and one planted fact per document whose question a retrieval check
// can ask.
//
// The same Config always yields the same corpus, and every parameter is a
// field, so no benchmark is tuned to one corpus.
package corpusgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Entity types, as the extractors name them.
const (
	TypePerson       = "PERSON"
	TypeOrganization = "ORGANIZATION"
	TypeGeo          = "GEO"
)

// Config parameterises a corpus.
type Config struct {
	Seed uint64
	// People, Organizations and Places size the name pools.
	People, Organizations, Places int
	// MinParagraphs and MaxParagraphs bound a document's length.
	MinParagraphs, MaxParagraphs int
	// Cast is how many pool entities one document draws; its paragraphs
	// name entities of its cast.
	Cast int
	// Skew is the Zipf exponent of the popular names' popularity (> 1).
	Skew float64
	// Popular is the share of a cast drawn by popularity (Zipf); the rest
	// is drawn uniformly from the pools, so the corpus keeps naming
	// entities it has not named before.
	Popular float64
}

// DefaultConfig is a corpus whose 10,000 documents name well over 100,000
// distinct entities.
func DefaultConfig() Config {
	return Config{Seed: 1, People: 120_000, Organizations: 30_000, Places: 20_000,
		MinParagraphs: 8, MaxParagraphs: 20, Cast: 40, Skew: 1.2, Popular: 0.4}
}

// Validate reports a configuration that cannot generate a corpus.
func (c Config) Validate() error {
	switch {
	case c.People < 1 || c.Organizations < 1 || c.Places < 1:
		return fmt.Errorf("corpusgen: pools need at least one name each (people %d, organizations %d, places %d)", c.People, c.Organizations, c.Places)
	case c.MinParagraphs < 1 || c.MaxParagraphs < c.MinParagraphs:
		return fmt.Errorf("corpusgen: paragraphs %d..%d, want 1 <= min <= max", c.MinParagraphs, c.MaxParagraphs)
	case c.Cast < 3:
		return fmt.Errorf("corpusgen: cast %d, want at least 3", c.Cast)
	case c.Popular < 0 || c.Popular > 1:
		return fmt.Errorf("corpusgen: popular share %v, want 0..1", c.Popular)
	case c.Skew <= 1:
		return fmt.Errorf("corpusgen: skew %v, want > 1", c.Skew)
	}
	return nil
}

// Mention is an entity a paragraph names.
type Mention struct {
	Name string
	Type string
}

// Sentence is one sentence and the entities it names, in order.
type Sentence struct {
	Text     string
	Mentions []Mention
}

// Paragraph is one paragraph: its text is its sentences joined by spaces.
type Paragraph struct {
	Text      string
	Sentences []Sentence
}

// Fact is a document's planted fact: Question asks for Answer, which only
// the paragraph Paragraph of the document states, about Subject.
type Fact struct {
	Subject   string
	Question  string
	Answer    string
	Paragraph int
}

// Document is one generated document.
type Document struct {
	ID         string
	Title      string
	Paragraphs []Paragraph
	Fact       Fact
}

// Text is the document as a user would submit it.
func (d Document) Text() string {
	var b strings.Builder
	b.WriteString(d.Title)
	b.WriteString("\n\n")
	for i, p := range d.Paragraphs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(p.Text)
	}
	b.WriteString("\n")
	return b.String()
}

// Generator yields the documents of a corpus in order.
type Generator struct {
	cfg                  Config
	rng                  *rand.Rand
	people, orgs, places *rand.Zipf
	next                 int
}

// New returns a generator of cfg's corpus.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b67726170680a))
	zipf := func(n int) *rand.Zipf { return rand.NewZipf(rng, cfg.Skew, 4, uint64(n-1)) }
	return &Generator{cfg: cfg, rng: rng, people: zipf(cfg.People), orgs: zipf(cfg.Organizations), places: zipf(cfg.Places)}, nil
}

// Next returns the next document.
func (g *Generator) Next() Document {
	n := g.next
	g.next++
	cast := g.drawCast()
	var people, orgs, places []Mention
	for _, m := range cast {
		switch m.Type {
		case TypePerson:
			people = append(people, m)
		case TypeOrganization:
			orgs = append(orgs, m)
		default:
			places = append(places, m)
		}
	}
	pick := func(ms []Mention) Mention { return ms[g.rng.IntN(len(ms))] }
	paragraphs := g.cfg.MinParagraphs + g.rng.IntN(g.cfg.MaxParagraphs-g.cfg.MinParagraphs+1)
	doc := Document{ID: fmt.Sprintf("synthetic-%06d", n), Title: fmt.Sprintf("Chronicle %d of %s", n, pick(places).Name)}
	factAt := g.rng.IntN(paragraphs)
	for i := range paragraphs {
		var sentences []Sentence
		for range 3 + g.rng.IntN(3) {
			tmpl := sentenceTemplates[g.rng.IntN(len(sentenceTemplates))]
			sentences = append(sentences, fill(tmpl, map[string]Mention{
				"{A}": pick(people), "{B}": pick(people), "{O}": pick(orgs), "{P}": pick(places)}))
		}
		if i == factAt {
			subject := pick(people)
			answer := fmt.Sprintf("%s %d", factWords[g.rng.IntN(len(factWords))], 100+g.rng.IntN(900))
			sentences = append(sentences, Sentence{
				Text:     fmt.Sprintf("%s keeps the ledger marked %s in a locked drawer.", subject.Name, answer),
				Mentions: []Mention{subject}})
			doc.Fact = Fact{Subject: subject.Name, Question: fmt.Sprintf("Which ledger does %s keep in a locked drawer?", subject.Name), Answer: answer, Paragraph: i}
		}
		texts := make([]string, len(sentences))
		for j, s := range sentences {
			texts[j] = s.Text
		}
		doc.Paragraphs = append(doc.Paragraphs, Paragraph{Text: strings.Join(texts, " "), Sentences: sentences})
	}
	return doc
}

// fill replaces a template's placeholders with names, recording the
// mentions in the order they appear in the sentence.
func fill(tmpl string, names map[string]Mention) Sentence {
	var s Sentence
	var b strings.Builder
	for len(tmpl) > 0 {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		m := names[tmpl[i:i+3]]
		b.WriteString(m.Name)
		s.Mentions = append(s.Mentions, m)
		tmpl = tmpl[i+3:]
	}
	s.Text = b.String()
	return s
}

// drawCast picks the document's distinct entities: about half people, the
// rest organisations and places, at least one of each.
func (g *Generator) drawCast() []Mention {
	seen := map[string]bool{}
	var cast []Mention
	add := func(m Mention) {
		if !seen[m.Name] {
			seen[m.Name] = true
			cast = append(cast, m)
		}
	}
	draw := func(z *rand.Zipf, pool int) int {
		if g.rng.Float64() < g.cfg.Popular {
			return int(z.Uint64())
		}
		return g.rng.IntN(pool)
	}
	add(Mention{PersonName(draw(g.people, g.cfg.People)), TypePerson})
	add(Mention{OrganizationName(draw(g.orgs, g.cfg.Organizations)), TypeOrganization})
	add(Mention{PlaceName(draw(g.places, g.cfg.Places)), TypeGeo})
	for tries := 0; len(cast) < g.cfg.Cast && tries < 10*g.cfg.Cast; tries++ {
		switch r := g.rng.IntN(4); {
		case r < 2:
			add(Mention{PersonName(draw(g.people, g.cfg.People)), TypePerson})
		case r == 2:
			add(Mention{OrganizationName(draw(g.orgs, g.cfg.Organizations)), TypeOrganization})
		default:
			add(Mention{PlaceName(draw(g.places, g.cfg.Places)), TypeGeo})
		}
	}
	return cast
}

var sentenceTemplates = []string{
	"{A} met {B} at the offices of {O} in {P}.",
	"After the winter, {A} travelled to {P} to argue with {B} about {O}.",
	"{O} hired {A}, who had studied in {P} alongside {B}.",
	"In {P}, {A} and {B} signed the charter of {O}.",
	"{B} wrote to {A} that {O} would leave {P} before the spring.",
	"{A} remembered how {O} had rebuilt the harbour of {P}, and {B} did not.",
}

var factWords = []string{"amber", "cobalt", "juniper", "saffron", "umber", "vermilion", "indigo", "ochre"}

var (
	onsets = []string{"b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "w", "z"}
	vowels = []string{"a", "e", "i", "o", "u", "ae", "ei", "ou"}
	codas  = []string{"", "n", "r", "s", "l", "m", "th", "nd", "rk"}
)

// word builds a capitalised invented word from n's digits in a mixed
// radix of syllables: distinct n give distinct words.
func word(n, syllables int) string {
	var b strings.Builder
	for i := range syllables {
		b.WriteString(onsets[n%len(onsets)])
		n /= len(onsets)
		b.WriteString(vowels[n%len(vowels)])
		n /= len(vowels)
		if i == syllables-1 {
			b.WriteString(codas[n%len(codas)])
			n /= len(codas)
		}
	}
	w := b.String()
	return strings.ToUpper(w[:1]) + w[1:]
}

// PersonName is the i-th person of the pool.
func PersonName(i int) string {
	return word(i%9973, 2) + " " + word(i/9973+31, 3)
}

// OrganizationName is the i-th organisation of the pool.
func OrganizationName(i int) string {
	return word(i+7, 3) + " " + orgSuffixes[i%len(orgSuffixes)]
}

var orgSuffixes = []string{"Company", "Guild", "Society", "Trust", "Institute", "Works"}

// PlaceName is the i-th place of the pool.
func PlaceName(i int) string {
	return word(i+101, 2) + placeSuffixes[i%len(placeSuffixes)]
}

var placeSuffixes = []string{"ford", "mouth", "haven", "wick", "stead", "bury"}
