package events

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeRemembersOnlyFullyCheckedPayloads(t *testing.T) {
	v, err := NewValidator()
	require.NoError(t, err)
	valid := []byte(`{"job_id":"job-1","doc_id":"doc-1","namespace":"default","chunk_id":"3f9a1c07d2e84b6a9c51e0f7a2b4d6c8","index":0,"chunks_total":1,"text":"Scrooge.","tokens":3}`)
	// Passes the schema as sent, but decodes to a namespace the schema refuses.
	smuggled := []byte(`{"job_id":"job-1","doc_id":"doc-1","namespace":"ok","NAMESPACE":"../x","chunk_id":"3f9a1c07d2e84b6a9c51e0f7a2b4d6c8","index":0,"chunks_total":1,"text":"Scrooge.","tokens":3}`)
	env := func(data []byte) Envelope {
		return Envelope{ID: "e1", Source: "test", Type: TypeChunkCreated, Data: data}
	}

	first, err := Decode[ChunkCreated](env(valid), v)
	require.NoError(t, err)
	require.True(t, v.checked(digestOf(TypeChunkCreated, valid)))
	again, err := Decode[ChunkCreated](env(valid), v)
	require.NoError(t, err)
	require.Equal(t, first, again, "a remembered payload decodes to the same event")
	require.False(t, v.checked(digestOf(TypeJobFailed, valid)), "the digest is per type")

	for range 2 {
		_, err = Decode[ChunkCreated](env(smuggled), v)
		require.ErrorIs(t, err, ErrInvalidEvent)
	}
	require.False(t, v.checked(digestOf(TypeChunkCreated, smuggled)))
}

func TestCheckedPayloadsAreBounded(t *testing.T) {
	v, err := NewValidator()
	require.NoError(t, err)
	payload := func(i int) []byte { return []byte(fmt.Sprint(i)) }
	for i := range maxDecodedDigests + 10 {
		v.rememberChecked(digestOf(TypeChunkCreated, payload(i)))
	}
	require.LessOrEqual(t, len(v.decoded), maxDecodedDigests)
	require.True(t, v.checked(digestOf(TypeChunkCreated, payload(maxDecodedDigests+9))), "the latest is remembered")
}
