package events_test

import (
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
	require.Len(t, catalog, 11)
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
	require.False(t, strings.HasPrefix(events.QuerySubject, events.SubjectPrefix),
		"query requests must not land in the EVENTS stream")
}

func TestSchemaLocations(t *testing.T) {
	require.Equal(t, "dev.kgraph.chunk.merged.v1.json", events.SchemaFile(events.TypeChunkMerged))
	require.Equal(t, "https://kgraph.dev/schemas/dev.kgraph.chunk.merged.v1.json", events.SchemaURL(events.TypeChunkMerged))
}

// TestDocsListEveryType keeps docs/events.md, the catalogue for outside
// publishers, in step with Catalog.
func TestDocsListEveryType(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "events.md"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/events.md is not beside this module (module used outside its repository)")
	}
	require.NoError(t, err)
	for _, s := range events.Catalog() {
		require.Contains(t, string(doc), fmt.Sprintf("| `%s` | `%s` |", s.Type, s.Subject), "type table row of %s", s.Type)
		require.Contains(t, string(doc), fmt.Sprintf("### `%s`", s.Type), "payload section of %s", s.Type)
		require.Contains(t, string(doc), "(../events/schemas/"+events.SchemaFile(s.Type)+")", "schema link of %s", s.Type)
	}
}
