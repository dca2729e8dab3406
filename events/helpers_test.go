package events_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
)

// fixtureTime is the event time used by tests that build events.
func fixtureTime() time.Time { return time.Date(2025, 6, 1, 9, 30, 0, 123456789, time.UTC) }

func readFixture(t *testing.T, typ events.Type) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", string(typ)+".json"))
	require.NoError(t, err, "every catalogue type needs a fixture")
	return b
}

func newValidator(t *testing.T) *events.Validator {
	t.Helper()
	v, err := events.NewValidator()
	require.NoError(t, err)
	return v
}

// roundTripFunc sends a JSON payload of one type through the whole codec
// (unmarshal, New, Encode, DecodeEnvelope, Decode) and returns the decoded
// payload marshalled again.
type roundTripFunc func(payload []byte, v *events.Validator) ([]byte, error)

// decodeRawFunc decodes a raw JSON payload, sent as-is in a binary-mode
// message of the given type, with Decode of that type.
type decodeRawFunc func(payload []byte, v *events.Validator) error

type typeCodec struct {
	roundTrip roundTripFunc
	decodeRaw decodeRawFunc
}

func codecFor[T events.Payload]() typeCodec {
	return typeCodec{
		roundTrip: func(payload []byte, v *events.Validator) ([]byte, error) {
			var data T
			if err := json.Unmarshal(payload, &data); err != nil {
				return nil, err
			}
			msg, err := events.Encode(events.New("evt-1", "urn:kgraph:test", data, fixtureTime()))
			if err != nil {
				return nil, err
			}
			env, err := events.DecodeEnvelope(msg.Header, msg.Data)
			if err != nil {
				return nil, err
			}
			got, err := events.Decode[T](env, v)
			if err != nil {
				return nil, err
			}
			return json.Marshal(got.Data)
		},
		decodeRaw: func(payload []byte, v *events.Validator) error {
			var zero T
			env, err := events.DecodeEnvelope(binaryHeader(zero.EventType()), payload)
			if err != nil {
				return err
			}
			_, err = events.Decode[T](env, v)
			return err
		},
	}
}

// codecs has one entry per catalogue type; TestCodecsCoverCatalog keeps it
// complete.
func codecs() map[events.Type]typeCodec {
	return map[events.Type]typeCodec{
		events.TypeDocumentSubmitted:   codecFor[events.DocumentSubmitted](),
		events.TypeDocumentDuplicate:   codecFor[events.DocumentDuplicate](),
		events.TypeDocumentAccepted:    codecFor[events.DocumentAccepted](),
		events.TypeDocumentChunked:     codecFor[events.DocumentChunked](),
		events.TypeChunkCreated:        codecFor[events.ChunkCreated](),
		events.TypeChunkExtracted:      codecFor[events.ChunkExtracted](),
		events.TypeChunkMerged:         codecFor[events.ChunkMerged](),
		events.TypeChunkIndexed:        codecFor[events.ChunkIndexed](),
		events.TypeJobCompleted:        codecFor[events.JobCompleted](),
		events.TypeJobFailed:           codecFor[events.JobFailed](),
		events.TypeCommunitiesUpdated:  codecFor[events.CommunitiesUpdated](),
		events.TypeJobAwaitingApproval: codecFor[events.JobAwaitingApproval](),
		events.TypeJobApproved:         codecFor[events.JobApproved](),
		events.TypeJobCancelled:        codecFor[events.JobCancelled](),
		events.TypeJobExpired:          codecFor[events.JobExpired](),
		events.TypeDocumentDeleted:     codecFor[events.DocumentDeleted](),
		events.TypeDocumentUnmerged:    codecFor[events.DocumentUnmerged](),
		events.TypeDocumentUnindexed:   codecFor[events.DocumentUnindexed](),
	}
}

func TestCodecsCoverCatalog(t *testing.T) {
	cs := codecs()
	require.Len(t, cs, len(events.Catalog()))
	for _, s := range events.Catalog() {
		require.Contains(t, cs, s.Type)
	}
}

// binaryHeader is a minimal valid binary-mode header of an event type, as an
// outside publisher would write it.
func binaryHeader(typ events.Type) nats.Header {
	return nats.Header{
		"ce-specversion":     {"1.0"},
		"ce-id":              {"evt-1"},
		"ce-source":          {"urn:kgraph:test"},
		"ce-type":            {string(typ)},
		"ce-datacontenttype": {"application/json"},
	}
}
