package events_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

func TestSchemasUpToDate(t *testing.T) {
	known := map[string]bool{}
	for _, s := range events.Catalog() {
		name := events.SchemaFile(s.Type)
		known[name] = true
		t.Run(string(s.Type), func(t *testing.T) {
			want, err := events.GenerateSchema(s)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join("schemas", name))
			require.NoError(t, err, "schemas/%s is missing: run `go generate ./...` in events/", name)
			require.Equal(t, string(want), string(got),
				"schemas/%s is out of date with the Go structs: run `go generate ./...` in events/", name)
		})
	}

	entries, err := os.ReadDir("schemas")
	require.NoError(t, err)
	for _, e := range entries {
		require.True(t, known[e.Name()],
			"schemas/%s belongs to no catalogue type: delete it (or add the type to Catalog)", e.Name())
	}
}

func TestSchemaMetadata(t *testing.T) {
	for _, s := range events.Catalog() {
		t.Run(string(s.Type), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("schemas", events.SchemaFile(s.Type)))
			require.NoError(t, err)
			var sch struct {
				ID                   string          `json:"$id"`
				Title                string          `json:"title"`
				Description          string          `json:"description"`
				AdditionalProperties json.RawMessage `json:"additionalProperties"`
				Required             []string        `json:"required"`
			}
			require.NoError(t, json.Unmarshal(b, &sch))
			require.Equal(t, events.SchemaURL(s.Type), sch.ID)
			require.Equal(t, string(s.Type), sch.Title)
			require.Equal(t, s.Summary, sch.Description)
			require.Nil(t, sch.AdditionalProperties, "unknown properties must stay allowed for forward compatibility")
			require.Subset(t, sch.Required, []string{"job_id", "doc_id", "namespace"}, "every payload carries its job reference")
		})
	}
}

func TestFixtures(t *testing.T) {
	v := newValidator(t)
	cs := codecs()
	for _, s := range events.Catalog() {
		t.Run(string(s.Type), func(t *testing.T) {
			fixture := readFixture(t, s.Type)
			require.NoError(t, v.Validate(s.Type, fixture))

			got, err := cs[s.Type].roundTrip(fixture, v)
			require.NoError(t, err)
			require.JSONEq(t, string(fixture), string(got), "the fixture must survive Encode→DecodeEnvelope→Decode unchanged")
		})
	}
}

func TestFixtureEntriesAreNotEmpty(t *testing.T) {
	// A fixture is a documentation example: every property of its schema
	// should appear, so that readers see each field at least once.
	for _, s := range events.Catalog() {
		t.Run(string(s.Type), func(t *testing.T) {
			var sch struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			b, err := os.ReadFile(filepath.Join("schemas", events.SchemaFile(s.Type)))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &sch))
			var fixture map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(readFixture(t, s.Type), &fixture))
			for prop := range sch.Properties {
				// The REST edge sets content_ref; the fixtures show the inline
				// form that outside publishers use.
				if prop == "content_ref" {
					continue
				}
				require.Contains(t, fixture, prop, "fixture of %s lacks %q", s.Type, prop)
			}
		})
	}
}

func TestSubmittedFixtureHashMatchesContent(t *testing.T) {
	var d events.DocumentSubmitted
	require.NoError(t, json.Unmarshal(readFixture(t, events.TypeDocumentSubmitted), &d))
	require.Equal(t, events.ContentSHA256(d.Content), d.ContentSHA256)
	require.Equal(t, len(d.Content), d.ContentBytes)

	var a events.DocumentAccepted
	require.NoError(t, json.Unmarshal(readFixture(t, events.TypeDocumentAccepted), &a))
	require.Equal(t, events.ContentSHA256(a.Content), a.ContentSHA256)
}

func TestInvalidPayloadsRejected(t *testing.T) {
	v := newValidator(t)
	cs := codecs()
	dirs, err := os.ReadDir(filepath.Join("testdata", "invalid"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		typ := events.Type(dir.Name())
		_, known := events.Lookup(typ)
		require.True(t, known, "testdata/invalid/%s is not a catalogue type", dir.Name())
		files, err := os.ReadDir(filepath.Join("testdata", "invalid", dir.Name()))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			t.Run(dir.Name()+"/"+strings.TrimSuffix(f.Name(), ".json"), func(t *testing.T) {
				payload, err := os.ReadFile(filepath.Join("testdata", "invalid", dir.Name(), f.Name()))
				require.NoError(t, err)
				require.ErrorIs(t, v.Validate(typ, payload), events.ErrInvalidEvent)
				require.ErrorIs(t, cs[typ].decodeRaw(payload, v), events.ErrInvalidEvent)
			})
		}
	}
}

func TestInvalidCasesCoverEveryType(t *testing.T) {
	for _, s := range events.Catalog() {
		files, err := os.ReadDir(filepath.Join("testdata", "invalid", string(s.Type)))
		require.NoError(t, err, "add at least one testdata/invalid case for %s", s.Type)
		require.NotEmpty(t, files)
	}
}

func TestUnknownPropertiesAccepted(t *testing.T) {
	v := newValidator(t)
	cs := codecs()
	for _, s := range events.Catalog() {
		t.Run(string(s.Type), func(t *testing.T) {
			var payload map[string]any
			require.NoError(t, json.Unmarshal(readFixture(t, s.Type), &payload))
			// What a newer v1 producer might add.
			payload["priority"] = "high"
			payload["labels"] = map[string]any{"team": "search", "retries": 2}
			extended, err := json.Marshal(payload)
			require.NoError(t, err)

			require.NoError(t, v.Validate(s.Type, extended))
			require.NoError(t, cs[s.Type].decodeRaw(extended, v))
			got, err := cs[s.Type].roundTrip(extended, v)
			require.NoError(t, err)
			require.JSONEq(t, string(readFixture(t, s.Type)), string(got), "unknown properties are ignored, not kept")
		})
	}
}

func TestDecodeRejectsCaseVariantKeys(t *testing.T) {
	// encoding/json matches member names case-insensitively; the schema does
	// not. A payload whose valid member is shadowed by a differently-cased
	// one must not smuggle the shadowing value past validation.
	v := newValidator(t)
	cs := codecs()
	tests := []struct {
		name  string
		typ   events.Type
		key   string
		value any
	}{
		{"namespace path", events.TypeDocumentSubmitted, "NAMESPACE", "../other"},
		{"job id wildcard", events.TypeDocumentSubmitted, "Job_ID", "job.*"},
		{"negative count", events.TypeChunkIndexed, "Vectors", -1},
		{"chunk id short", events.TypeChunkCreated, "Chunk_Id", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendMember(t, readFixture(t, tt.typ), tt.key, tt.value)
			require.NoError(t, v.Validate(tt.typ, b), "the raw payload passes the schema")
			require.ErrorIs(t, cs[tt.typ].decodeRaw(b, v), events.ErrInvalidEvent)
		})
	}
}

func TestDecodeAllowsCaseVariantKeysWithValidValues(t *testing.T) {
	v := newValidator(t)
	b := appendMember(t, readFixture(t, events.TypeJobFailed), "Stage", "graph-writer")
	env, err := events.DecodeEnvelope(binaryHeader(events.TypeJobFailed), b)
	require.NoError(t, err)
	got, err := events.Decode[events.JobFailed](env, v)
	require.NoError(t, err)
	require.Equal(t, "graph-writer", got.Data.Stage, "encoding/json keeps the last case-insensitive match")
}

// appendMember adds a member after all others of a JSON object, so that it
// is the one encoding/json keeps when names collide case-insensitively.
func appendMember(t *testing.T, object []byte, key string, value any) []byte {
	t.Helper()
	k, err := json.Marshal(key)
	require.NoError(t, err)
	v, err := json.Marshal(value)
	require.NoError(t, err)
	trimmed := bytes.TrimRight(bytes.TrimSpace(object), "}")
	return fmt.Appendf(nil, "%s,%s:%s}", trimmed, k, v)
}

func TestChunkExtractedWithNothingExtracted(t *testing.T) {
	// A chunk with no entities is valid; the zero slices must still encode
	// as the arrays the schema requires.
	v := newValidator(t)
	data := events.ChunkExtracted{
		JobRef:        events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "default"},
		ChunkPosition: events.ChunkPosition{ChunkID: strings.Repeat("ab", 16), Index: 0, ChunksTotal: 1},
		Text:          "Nothing to see here.",
		Tokens:        4,
		Extractor:     "offline",
	}
	b, err := json.Marshal(data)
	require.NoError(t, err)
	require.JSONEq(t, `{"job_id":"job-1","doc_id":"doc-1","namespace":"default","chunk_id":"abababababababababababababababab",
		"index":0,"chunks_total":1,"text":"Nothing to see here.","tokens":4,"entities":[],"relations":[],"extractor":"offline"}`, string(b))
	require.NoError(t, v.Validate(events.TypeChunkExtracted, b))

	msg, err := events.Encode(events.New("evt-1", "urn:kgraph:extractor", data, fixtureTime()))
	require.NoError(t, err)
	env, err := events.DecodeEnvelope(msg.Header, msg.Data)
	require.NoError(t, err)
	got, err := events.Decode[events.ChunkExtracted](env, v)
	require.NoError(t, err)
	require.Empty(t, got.Data.Entities)
	require.Empty(t, got.Data.Relations)
}

func TestValidateUnknownType(t *testing.T) {
	v := newValidator(t)
	err := v.Validate("dev.kgraph.document.archived.v1", readFixture(t, events.TypeDocumentSubmitted))
	require.ErrorIs(t, err, events.ErrUnknownType)
}

func TestValidateNotJSON(t *testing.T) {
	v := newValidator(t)
	for _, payload := range []string{``, `{`, `{"job_id":"a"} {}`, `not json`} {
		require.ErrorIs(t, v.Validate(events.TypeJobFailed, []byte(payload)), events.ErrInvalidEvent, "payload %q", payload)
	}
}
