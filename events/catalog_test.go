package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

func TestCatalog(t *testing.T) {
	typePattern := regexp.MustCompile(`^dev\.kgraph\.[a-z]+\.[a-z_]+\.v[0-9]+$`)
	types := map[events.Type]bool{}
	subjects := map[string]events.Type{}
	catalog := events.Catalog()
	// The whole catalogue in its documented order: adding, dropping or
	// reordering a type is a contract change and must show up here.
	want := []events.Type{
		events.TypeDocumentSubmitted, events.TypeDocumentDuplicate, events.TypeDocumentAccepted,
		events.TypeDocumentChunked, events.TypeChunkCreated, events.TypeChunkExtracted,
		events.TypeChunkMerged, events.TypeChunkIndexed, events.TypeJobCompleted, events.TypeJobFailed,
		events.TypeJobAwaitingApproval, events.TypeJobApproved, events.TypeJobCancelled, events.TypeJobExpired,
		events.TypeDocumentDeleted, events.TypeDocumentUnmerged, events.TypeDocumentUnindexed,
		events.TypeCommunitiesUpdated,
	}
	got := make([]events.Type, 0, len(catalog))
	for _, s := range catalog {
		got = append(got, s.Type)
	}
	require.Equal(t, want, got)
	for _, s := range catalog {
		t.Run(string(s.Type), func(t *testing.T) {
			require.Regexp(t, typePattern, string(s.Type))
			require.False(t, types[s.Type], "type listed twice")
			types[s.Type] = true

			require.True(t, strings.HasPrefix(s.Subject, events.SubjectPrefix), "subject %q", s.Subject)
			other, dup := subjects[s.Subject]
			require.False(t, dup, "subject %q also used by %s", s.Subject, other)
			subjects[s.Subject] = s.Type
			// <noun>.<verb> of the type is the subject suffix, so the two
			// cannot drift apart.
			nounVerb := strings.TrimPrefix(string(s.Type), "dev.kgraph.")
			nounVerb = nounVerb[:strings.LastIndex(nounVerb, ".")]
			require.Equal(t, events.SubjectPrefix+nounVerb, s.Subject)
			require.NotContains(t, s.Subject, "*")
			require.NotContains(t, s.Subject, ">")

			payload, ok := s.Payload().(events.Payload)
			require.True(t, ok, "payload of %s does not implement events.Payload", s.Type)
			require.Equal(t, s.Type, payload.EventType())
			require.NotEmpty(t, s.Summary)

			got, ok := events.Lookup(s.Type)
			require.True(t, ok)
			require.Equal(t, s.Subject, got.Subject)
			subject, err := events.SubjectOf(s.Type)
			require.NoError(t, err)
			require.Equal(t, s.Subject, subject)
		})
	}
}

func TestCatalogSubjectsMatchAllEvents(t *testing.T) {
	require.Equal(t, events.SubjectPrefix+">", events.SubjectAllEvents)
	require.Equal(t, events.DeadLetterPrefix+">", events.SubjectAllDead)
}

func TestUnknownType(t *testing.T) {
	for _, typ := range []events.Type{
		"",
		"dev.kgraph.document.archived.v1",
		"dev.kgraph.document.submitted.v2",
		"DEV.KGRAPH.DOCUMENT.SUBMITTED.V1",
		"dev.kgraph.document.submitted.v1 ",
	} {
		t.Run(string(typ), func(t *testing.T) {
			_, ok := events.Lookup(typ)
			require.False(t, ok)
			_, err := events.SubjectOf(typ)
			require.ErrorIs(t, err, events.ErrUnknownType)
		})
	}
}

func TestDerivedSubjects(t *testing.T) {
	require.Equal(t, "kgraph.dlq.graph-writer", events.DeadLetterSubject("graph-writer"))
	for _, subject := range []string{events.QuerySubject, events.QueryStreamSubject} {
		// Services answer on core NATS: a request must not land in the
		// EVENTS stream, and docs/events.md documents them as kgraph.svc.>.
		require.True(t, strings.HasPrefix(subject, "kgraph.svc."), "service subject %q", subject)
		require.False(t, strings.HasPrefix(subject, events.SubjectPrefix), "service subject %q", subject)
	}
}

func TestSchemaLocations(t *testing.T) {
	require.Equal(t, "dev.kgraph.chunk.merged.v1.json", events.SchemaFile(events.TypeChunkMerged))
	require.Equal(t, "https://kgraph.dev/schemas/dev.kgraph.chunk.merged.v1.json", events.SchemaURL(events.TypeChunkMerged))
}

// TestDocsListEveryType keeps docs/events.md, the catalogue for outside
// publishers, in step with Catalog: every type has its table row and its
// payload section, and the section's field table and example follow the
// schema and the fixture.
func TestDocsListEveryType(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "events.md"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/events.md is not beside this module (module used outside its repository)")
	}
	require.NoError(t, err)
	doc := string(raw)
	for _, s := range events.Catalog() {
		t.Run(string(s.Type), func(t *testing.T) {
			// Truef, not Contains: a failure should name the missing text
			// rather than print the whole document.
			row := fmt.Sprintf("| `%s` | `%s` |", s.Type, s.Subject)
			require.Truef(t, strings.Contains(doc, row), "docs/events.md lacks the type table row %q", row)
			section := docSection(t, doc, s.Type)
			require.Truef(t, strings.Contains(section, "(../events/schemas/"+events.SchemaFile(s.Type)+")"), "the section lacks the schema link")
			require.Truef(t, strings.HasPrefix(section, "\n"+s.Summary+" "), "the section does not open with the catalogue summary %q", s.Summary)

			var sch struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			b, err := os.ReadFile(filepath.Join("schemas", events.SchemaFile(s.Type)))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &sch))
			for prop := range sch.Properties {
				require.Truef(t, strings.Contains(section, "| `"+prop+"` |"), "the field table lacks %q", prop)
			}

			fixture := "events/testdata/fixtures/" + string(s.Type) + ".json"
			_, example, found := strings.Cut(section, "Example ([`"+fixture+"`](../"+fixture+")):\n\n```json\n")
			require.True(t, found, "example taken from %s", fixture)
			example, _, found = strings.Cut(example, "\n```\n")
			require.True(t, found, "example code block is closed")
			require.JSONEq(t, string(readFixture(t, s.Type)), example, "the example is the fixture")
		})
	}
}

// docSection returns the text of a type's payload section in docs/events.md:
// from its heading to the next heading of the same or a higher level.
func docSection(t *testing.T, doc string, typ events.Type) string {
	t.Helper()
	heading := fmt.Sprintf("\n### `%s`\n", typ)
	require.Equal(t, 1, strings.Count(doc, heading), "exactly one payload section of %s", typ)
	_, section, _ := strings.Cut(doc, heading)
	if end := regexp.MustCompile(`\n#{2,3} `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	return section
}
