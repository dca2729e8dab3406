package offline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/chunk"
)

func ent(name, typ, description string) events.Entity {
	return events.Entity{Name: name, Type: typ, Description: description}
}

func rel(source, target, description string, weight float64) events.Relation {
	return events.Relation{Source: source, Target: target, Description: description, Weight: weight}
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name          string
		text          string
		wantEntities  []events.Entity
		wantRelations []events.Relation
	}{
		{
			name: "title, name and organisation with connector",
			text: "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy.",
			wantEntities: []events.Entity{
				ent("Mr. Scrooge", TypePerson, "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy."),
				ent("Bob Cratchit", TypeConcept, "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy."),
				ent("Bank of England", TypeOrganization, "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy."),
			},
			wantRelations: []events.Relation{
				rel("Mr. Scrooge", "Bob Cratchit", "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy.", 1),
				rel("Mr. Scrooge", "Bank of England", "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy.", 1),
				rel("Bob Cratchit", "Bank of England", "When Mr. Scrooge met Bob Cratchit at the Bank of England, he was happy.", 1),
			},
		},
		{
			name: "possessives are stripped and weight counts shared sentences",
			text: "Scrooge's nephew Fred laughed. Fred’s wife smiled at Scrooge. Scrooge slept.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge's nephew Fred laughed."),
				ent("Fred", TypeConcept, "Scrooge's nephew Fred laughed."),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "Fred", "Scrooge's nephew Fred laughed.", 2),
			},
		},
		{
			name: "sentence-initial The is dropped",
			text: "The Ghost of Christmas Past appeared. The ghost spoke.",
			wantEntities: []events.Entity{
				ent("Ghost of Christmas Past", TypeConcept, "The Ghost of Christmas Past appeared."),
			},
			wantRelations: []events.Relation{},
		},
		{
			name: "mid-sentence The is kept",
			text: "Scrooge never visited The Hague.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge never visited The Hague."),
				ent("The Hague", TypeConcept, "Scrooge never visited The Hague."),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "The Hague", "Scrooge never visited The Hague.", 1),
			},
		},
		{
			name: "abbreviations do not end sentences",
			text: "Mr. Scrooge walked to St. Paul's with Dr. Jekyll. Then he left.",
			wantEntities: []events.Entity{
				ent("Mr. Scrooge", TypePerson, "Mr. Scrooge walked to St. Paul's with Dr. Jekyll."),
				ent("St. Paul", TypeConcept, "Mr. Scrooge walked to St. Paul's with Dr. Jekyll."),
				ent("Dr. Jekyll", TypePerson, "Mr. Scrooge walked to St. Paul's with Dr. Jekyll."),
			},
			wantRelations: []events.Relation{
				rel("Mr. Scrooge", "St. Paul", "Mr. Scrooge walked to St. Paul's with Dr. Jekyll.", 1),
				rel("Mr. Scrooge", "Dr. Jekyll", "Mr. Scrooge walked to St. Paul's with Dr. Jekyll.", 1),
				rel("St. Paul", "Dr. Jekyll", "Mr. Scrooge walked to St. Paul's with Dr. Jekyll.", 1),
			},
		},
		{
			name: "sentence punctuation separates co-occurrence",
			text: "Scrooge slept! Marley came? Fred laughed.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge slept!"),
				ent("Marley", TypeConcept, "Marley came?"),
				ent("Fred", TypeConcept, "Fred laughed."),
			},
			wantRelations: []events.Relation{},
		},
		{
			name: "short lines and blank lines end sentences",
			text: "Scrooge\nMarley\n\nFred and Belle",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge"),
				ent("Marley", TypeConcept, "Marley"),
				ent("Fred", TypeConcept, "Fred and Belle"),
				ent("Belle", TypeConcept, "Fred and Belle"),
			},
			wantRelations: []events.Relation{
				rel("Fred", "Belle", "Fred and Belle", 1),
			},
		},
		{
			name: "hard-wrapped prose continues across line breaks",
			text: "Scrooge walked the long and winding road through the\ncold and foggy streets of the city with old Marley\nbeside him.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge walked the long and winding road through the cold and foggy streets of the city with old Marley beside him."),
				ent("Marley", TypeConcept, "Scrooge walked the long and winding road through the cold and foggy streets of the city with old Marley beside him."),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "Marley", "Scrooge walked the long and winding road through the cold and foggy streets of the city with old Marley beside him.", 1),
			},
		},
		{
			name: "the short last line of a paragraph ends a sentence",
			text: "Scrooge walked the long and winding road through the\ncold streets with Marley\nFred followed.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge walked the long and winding road through the cold streets with Marley"),
				ent("Marley", TypeConcept, "Scrooge walked the long and winding road through the cold streets with Marley"),
				ent("Fred", TypeConcept, "Fred followed."),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "Marley", "Scrooge walked the long and winding road through the cold streets with Marley", 1),
			},
		},
		{
			name: "a name across a soft line break",
			text: "Scrooge walked the long and winding road through the cold streets of the Bank of\nEngland.",
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, "Scrooge walked the long and winding road through the cold streets of the Bank of England."),
				ent("Bank of England", TypeOrganization, "Scrooge walked the long and winding road through the cold streets of the Bank of England."),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "Bank of England", "Scrooge walked the long and winding road through the cold streets of the Bank of England.", 1),
			},
		},
		{
			name:          "function words, pronouns, months and days alone are no entities",
			text:          "It was Monday. She said I would come in May. Oh, December! Yes. But when? A cold night. I'm here.",
			wantEntities:  []events.Entity{},
			wantRelations: []events.Relation{},
		},
		{
			name: "acronyms and places",
			text: "NASA and the BBC met in Paris near Baker Street.",
			wantEntities: []events.Entity{
				ent("NASA", TypeOrganization, "NASA and the BBC met in Paris near Baker Street."),
				ent("BBC", TypeOrganization, "NASA and the BBC met in Paris near Baker Street."),
				ent("Paris", TypeGeo, "NASA and the BBC met in Paris near Baker Street."),
				ent("Baker Street", TypeGeo, "NASA and the BBC met in Paris near Baker Street."),
			},
			wantRelations: []events.Relation{
				rel("NASA", "BBC", "NASA and the BBC met in Paris near Baker Street.", 1),
				rel("NASA", "Paris", "NASA and the BBC met in Paris near Baker Street.", 1),
				rel("NASA", "Baker Street", "NASA and the BBC met in Paris near Baker Street.", 1),
				rel("BBC", "Paris", "NASA and the BBC met in Paris near Baker Street.", 1),
				rel("BBC", "Baker Street", "NASA and the BBC met in Paris near Baker Street.", 1),
				rel("Paris", "Baker Street", "NASA and the BBC met in Paris near Baker Street.", 1),
			},
		},
		{
			name: "initials and dotted acronyms",
			text: "J. R. R. Tolkien wrote about the U.S.A. in May.",
			wantEntities: []events.Entity{
				ent("J. R. R. Tolkien", TypeConcept, "J. R. R. Tolkien wrote about the U.S.A. in May."),
				ent("U.S.A.", TypeConcept, "J. R. R. Tolkien wrote about the U.S.A. in May."),
			},
			wantRelations: []events.Relation{
				rel("J. R. R. Tolkien", "U.S.A.", "J. R. R. Tolkien wrote about the U.S.A. in May.", 1),
			},
		},
		{
			name: "quoted speech",
			text: `"Humbug!" said Scrooge. "But I don't think so," said Fred.`,
			wantEntities: []events.Entity{
				ent("Humbug", TypeConcept, `"Humbug!" said Scrooge.`),
				ent("Scrooge", TypeConcept, `"Humbug!" said Scrooge.`),
				ent("Fred", TypeConcept, `"But I don't think so," said Fred.`),
			},
			wantRelations: []events.Relation{
				rel("Humbug", "Scrooge", `"Humbug!" said Scrooge.`, 1),
			},
		},
		{
			name: "one entity per entity key, named as first seen",
			text: `Scrooge met SCROOGE and "Scrooge" and Marley. Marley saw scrooge.`,
			wantEntities: []events.Entity{
				ent("Scrooge", TypeConcept, `Scrooge met SCROOGE and "Scrooge" and Marley.`),
				ent("Marley", TypeConcept, `Scrooge met SCROOGE and "Scrooge" and Marley.`),
			},
			wantRelations: []events.Relation{
				rel("Scrooge", "Marley", `Scrooge met SCROOGE and "Scrooge" and Marley.`, 1),
			},
		},
		{
			name: "connectors join only capitalised words",
			text: "Ludwig van Beethoven played for the Duke of the North. Scrooge of the counting-house frowned.",
			wantEntities: []events.Entity{
				ent("Ludwig van Beethoven", TypeConcept, "Ludwig van Beethoven played for the Duke of the North."),
				ent("Duke of the North", TypePerson, "Ludwig van Beethoven played for the Duke of the North."),
				ent("Scrooge", TypeConcept, "Scrooge of the counting-house frowned."),
			},
			wantRelations: []events.Relation{
				rel("Ludwig van Beethoven", "Duke of the North", "Ludwig van Beethoven played for the Duke of the North.", 1),
			},
		},
		{
			name: "all-caps heading has no acronyms",
			text: "STAVE ONE.\nMARLEY'S GHOST",
			wantEntities: []events.Entity{
				ent("STAVE ONE", TypeConcept, "STAVE ONE."),
				ent("MARLEY", TypeConcept, "MARLEY'S GHOST"),
				ent("GHOST", TypeConcept, "MARLEY'S GHOST"),
			},
			wantRelations: []events.Relation{
				rel("MARLEY", "GHOST", "MARLEY'S GHOST", 1),
			},
		},
		{
			name: "organisation word anywhere in a name",
			text: "The Royal Society of London met.",
			wantEntities: []events.Entity{
				ent("Royal Society of London", TypeOrganization, "The Royal Society of London met."),
			},
			wantRelations: []events.Relation{},
		},
		{
			name:          "Japanese has no capitals",
			text:          "日本語のテキストです。東京タワーは高い！",
			wantEntities:  []events.Entity{},
			wantRelations: []events.Relation{},
		},
		{
			name: "Greek capitals",
			text: "στην Αθήνα με τον Σωκράτη.",
			wantEntities: []events.Entity{
				ent("Αθήνα", TypeConcept, "στην Αθήνα με τον Σωκράτη."),
				ent("Σωκράτη", TypeConcept, "στην Αθήνα με τον Σωκράτη."),
			},
			wantRelations: []events.Relation{
				rel("Αθήνα", "Σωκράτη", "στην Αθήνα με τον Σωκράτη.", 1),
			},
		},
		{
			name:          "empty",
			text:          "",
			wantEntities:  []events.Entity{},
			wantRelations: []events.Relation{},
		},
		{
			name:          "whitespace",
			text:          " \n\t\n ",
			wantEntities:  []events.Entity{},
			wantRelations: []events.Relation{},
		},
	}
	e := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entities, relations, err := e.Extract(context.Background(), tt.text)
			require.NoError(t, err)
			require.Equal(t, tt.wantEntities, entities)
			require.Equal(t, tt.wantRelations, relations)
		})
	}
}

func TestName(t *testing.T) {
	require.Equal(t, "offline", New().Name())
}

func TestExtractTrimsDescriptions(t *testing.T) {
	sentence := "Scrooge met Marley " + strings.Repeat("über ", 80) + "end."
	entities, relations, err := New().Extract(context.Background(), sentence)
	require.NoError(t, err)
	require.Len(t, entities, 2)
	require.Len(t, relations, 1)
	descriptions := []string{entities[0].Description, entities[1].Description, relations[0].Description}
	for _, d := range descriptions {
		require.True(t, utf8.ValidString(d), "description cut inside a character: %q", d[len(d)-3:])
		require.LessOrEqual(t, len(d), maxDescriptionBytes)
		require.GreaterOrEqual(t, len(d), maxDescriptionBytes-utf8.UTFMax)
		require.True(t, strings.HasPrefix(sentence, d))
	}
}

func TestExtractCaps(t *testing.T) {
	names := make([]string, 250)
	for i := range names {
		names[i] = fmt.Sprintf("Name%03d", i)
	}
	// Every pair shares the first sentence; the second repeats one kept pair
	// and one pair of dropped entities.
	text := strings.Join(names, ", ") + ". Name000 and Name001 met Name240 and Name241."

	entities, relations, err := New().Extract(context.Background(), text)
	require.NoError(t, err)

	require.Len(t, entities, maxEntities)
	kept := map[string]bool{}
	for i, en := range entities {
		require.Equal(t, names[i], en.Name, "entities keep the first ones")
		kept[en.Name] = true
	}
	require.Len(t, relations, maxRelations)
	// Pairs in order of appearance: Name000 with the 199 others, Name001
	// with the 198 after it, then Name002 with Name003..Name005.
	require.Equal(t, "Name000", relations[0].Source)
	require.Equal(t, "Name001", relations[0].Target)
	require.Equal(t, 2.0, relations[0].Weight, "kept relations still count later sentences")
	require.Equal(t, "Name001", relations[199].Source)
	require.Equal(t, "Name002", relations[199].Target)
	require.Equal(t, "Name002", relations[399].Source)
	require.Equal(t, "Name005", relations[399].Target)
	for _, r := range relations {
		require.True(t, kept[r.Source] && kept[r.Target], "relation %s-%s names a dropped entity", r.Source, r.Target)
		if r.Source != "Name000" || r.Target != "Name001" {
			require.Equal(t, 1.0, r.Weight)
		}
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := New().Extract(ctx, "Scrooge met Marley.")
	require.ErrorIs(t, err, context.Canceled)
}

// TestExtractInvariants runs random text (with invalid UTF-8, scripts with
// and without capitals) and checks what any result must satisfy.
func TestExtractInvariants(t *testing.T) {
	pieces := []string{
		"Scrooge", "Marley", "Bank", "of", "the", "England", "Mr.", "St.", "J.", "NASA", "The", "It", "'s", "’s",
		"日本", "Αθήνα", "Москва", "é", "\u0301", "👨‍👩‍👧", "\xff", "\xe6\x97", " ", " ", " ", "\n", "\n\n", ".", ". ",
		"!", "?", ",", "\"", "'", "-", "—", "(", ")", "U.S.", "3.14", "don't", "I'm", "van", "Dr",
	}
	e := New()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		var sb strings.Builder
		for range rng.IntN(400) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := sb.String()
		entities, relations, err := e.Extract(context.Background(), text)
		require.NoError(t, err)
		require.LessOrEqual(t, len(entities), maxEntities)
		require.LessOrEqual(t, len(relations), maxRelations)
		names := map[string]bool{}
		keys := map[string]bool{}
		for _, en := range entities {
			key := events.EntityKey(en.Name)
			require.NotEmpty(t, key, "text %q", text)
			require.False(t, keys[key], "duplicate entity %q in %q", en.Name, text)
			keys[key] = true
			names[en.Name] = true
			require.LessOrEqual(t, len(en.Name), maxNameBytes)
			require.Contains(t, []string{TypePerson, TypeOrganization, TypeGeo, TypeConcept}, en.Type)
			require.True(t, utf8.ValidString(en.Name) && utf8.ValidString(en.Description))
			require.LessOrEqual(t, len(en.Description), maxDescriptionBytes)
		}
		pairs := map[[2]string]bool{}
		for _, r := range relations {
			require.True(t, names[r.Source] && names[r.Target], "relation %q-%q in %q", r.Source, r.Target, text)
			require.NotEqual(t, r.Source, r.Target)
			pair := [2]string{min(r.Source, r.Target), max(r.Source, r.Target)}
			require.False(t, pairs[pair], "duplicate relation %v", pair)
			pairs[pair] = true
			require.GreaterOrEqual(t, r.Weight, 1.0)
			require.Nil(t, r.Keywords)
			require.True(t, utf8.ValidString(r.Description))
			require.LessOrEqual(t, len(r.Description), maxDescriptionBytes)
		}
	}
}

func TestExtractDeterministicAndConcurrent(t *testing.T) {
	text := proseChunk(t, 1200)
	e := New()
	wantEntities, wantRelations, err := e.Extract(context.Background(), text)
	require.NoError(t, err)
	require.NotEmpty(t, wantEntities)
	require.NotEmpty(t, wantRelations)

	const workers = 4
	type result struct {
		entities  []events.Entity
		relations []events.Relation
		err       error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			en, rel, err := e.Extract(context.Background(), text)
			results[w] = result{en, rel, err}
		})
	}
	wg.Wait()
	for _, r := range results {
		require.NoError(t, r.err)
		require.Equal(t, wantEntities, r.entities)
		require.Equal(t, wantRelations, r.relations)
	}
}

// proseChunk returns the first chunk of maxTokens tokens of generated
// Dickens-like prose.
func proseChunk(tb testing.TB, maxTokens int) string {
	tb.Helper()
	sentences := []string{
		"Marley was dead: to begin with.",
		"Mr. Scrooge signed the register at the Bank of England, and Scrooge's name was good upon 'Change.",
		"Old Fezziwig laughed with Mrs. Fezziwig in the warehouse near Cornhill Street.",
		"The Ghost of Christmas Past took Scrooge to the school where Fan found him.",
		"Bob Cratchit carried Tiny Tim home from St. Paul's on Christmas Eve.",
		"It was cold, bleak, biting weather: foggy withal.",
		"\"A merry Christmas, uncle! God save you!\" cried Fred, Scrooge's nephew.",
		"Belle spoke softly to Scrooge about the Golden Idol.",
		"The BBC and the Royal Society of London later discussed the story in Paris.",
		"Jacob Marley's Ghost wore the chain he forged in life.",
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var sb strings.Builder
	for range 400 {
		sb.WriteString(sentences[rng.IntN(len(sentences))])
		if rng.IntN(5) == 0 {
			sb.WriteString("\n\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	c, err := chunk.New(chunk.Config{MaxTokens: maxTokens})
	require.NoError(tb, err)
	chunks := c.Split(sb.String())
	require.Greater(tb, len(chunks), 1)
	require.Equal(tb, maxTokens, chunks[0].Tokens)
	return chunks[0].Text
}

func BenchmarkExtract(b *testing.B) {
	text := proseChunk(b, 1200)
	e := New()
	ctx := context.Background()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Extract(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}
