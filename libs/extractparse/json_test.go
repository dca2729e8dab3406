package extractparse

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

const canonicalJSON = `{"entities":[
 {"name":"Scrooge","type":"person","description":"Scrooge is a miser who hates Christmas."},
 {"name":"Marley's Ghost","type":"person","description":"The ghost of Scrooge's late partner."}],
"relationships":[
 {"source":"Scrooge","target":"Marley's Ghost","description":"Marley's Ghost warns Scrooge.","keywords":["warning","redemption"],"strength":9}]}`

func TestParseJSON(t *testing.T) {
	warnsKW := relation("SCROOGE", "MARLEY'S GHOST", "Marley's Ghost warns Scrooge.", 9, "warning", "redemption")
	full := Result{Entities: []events.Entity{scrooge, marley}, Relations: []events.Relation{warnsKW}, Complete: true}
	tests := []struct {
		name   string
		output string
		want   Result
	}{
		{name: "canonical", output: canonicalJSON, want: full},
		{name: "json fence", output: "```json\n" + canonicalJSON + "\n```", want: full},
		{name: "fence with prose holding braces", output: "Here is the result {as asked}:\n```json\n" + canonicalJSON + "\n```\nDone {ok}.", want: full},
		{name: "prose around, no fence", output: "Result: " + canonicalJSON + " -- end", want: full},
		{name: "unclosed fence", output: "```json\n" + canonicalJSON, want: full},
		{
			name:   "trailing commas are removed",
			output: `{"entities":[{"name":"Scrooge","type":"person","description":"Scrooge is a miser who hates Christmas.",},{"name":"Marley's Ghost","type":"person","description":"The ghost of Scrooge's late partner."},],"relationships":[{"source":"Scrooge","target":"Marley's Ghost","description":"Marley's Ghost warns Scrooge.","keywords":["warning","redemption",],"strength":9,}, ],}`,
			want:   full,
		},
		{
			name:   "commas before brackets inside strings are kept",
			output: `{"entities":[{"name":"Scrooge","type":"person","description":"odd text ,] and \", }"}]}`,
			want:   Result{Entities: []events.Entity{entity("SCROOGE", "PERSON", `odd text ,] and ", }`)}, Complete: true},
		},
		{
			name: "aliases, key case, string strength, keyword string",
			output: `{"Entities":[{"entity_name":"Scrooge","entity_type":"person","entity_description":"Scrooge is a miser who hates Christmas."}],` +
				`"relations":[{"src":"Scrooge","tgt":"Marley's Ghost","Description":"Marley's Ghost warns Scrooge.","keywords":"warning, redemption","weight":"9"}]}`,
			want: Result{Entities: []events.Entity{scrooge}, Relations: []events.Relation{warnsKW}, Complete: true},
		},
		{
			name:   "missing strength, negative strength",
			output: `{"relationships":[{"source":"A","target":"B","description":"d"},{"source":"A","target":"C","description":"d","strength":-2}]}`,
			want:   Result{Relations: []events.Relation{relation("A", "B", "d", 1), relation("A", "C", "d", 1)}, Complete: true},
		},
		{
			name: "missing fields skipped and counted",
			output: `{"entities":[{"type":"person","description":"no name"},{"name":"","type":"person"},"just a string",42,null,` +
				`{"name":"Scrooge","type":"person","description":"Scrooge is a miser who hates Christmas."}],` +
				`"relationships":[{"source":"Scrooge","description":"no target"},{"source":"Scrooge","target":"SCROOGE","description":"self"}]}`,
			want: Result{Entities: []events.Entity{scrooge}, Skipped: 7, Complete: true},
		},
		{
			name:   "wrong shapes for the arrays",
			output: `{"entities":{"name":"Scrooge"},"relationships":"none","notes":[1,{"a":[2]}]}`,
			want:   Result{Skipped: 2, Complete: true},
		},
		{name: "empty arrays", output: `{"entities":[],"relationships":[]}`, want: Result{Complete: true}},
		{name: "null arrays", output: `{"entities":null,"relationships":null}`, want: Result{Complete: true}},
		{name: "empty object", output: `{}`, want: Result{Complete: true}},
		{
			name:   "truncated output keeps the items before the cut",
			output: canonicalJSON[:strings.Index(canonicalJSON, `{"name":"Marley`)+20],
			want:   Result{Entities: []events.Entity{scrooge}, Skipped: 1},
		},
		{
			name:   "syntax error after items keeps them",
			output: `{"entities":[{"name":"Scrooge","type":"person","description":"Scrooge is a miser who hates Christmas."} {"name":"X"}]}`,
			want:   Result{Entities: []events.Entity{scrooge}, Skipped: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJSON(tt.output)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, output := range []string{
		"",
		"no json here",
		canonical, // tuples when JSON was asked for
		"[1, 2, 3]",
		"{",
		`{"entities":[`,
		"{not json at all}",
		strings.Repeat("{", 1<<20),
	} {
		res, err := ParseJSON(output)
		require.Error(t, err, "%.60q", output)
		require.Equal(t, Result{}, res)
	}
}

func TestRemoveTrailingCommas(t *testing.T) {
	tests := map[string]string{
		`[1,2,]`:                  `[1,2]`,
		"{\"a\":1 ,\n }":          "{\"a\":1 \n }",
		`["a,]", "b\",}",]`:       `["a,]", "b\",}"]`,
		`["\\",]`:                 `["\\"]`,
		`{"a":[1,2],"b":3}`:       `{"a":[1,2],"b":3}`,
		`,`:                       `,`,
		`"unterminated string ,]`: `"unterminated string ,]`,
		`[1,,]`:                   `[1,]`,
	}
	for in, want := range tests {
		require.Equal(t, want, removeTrailingCommas(in), in)
	}
}
