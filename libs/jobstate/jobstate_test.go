package jobstate

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBitset(t *testing.T) {
	var b Bitset
	require.True(t, b.Set(0))
	require.True(t, b.Set(9))
	require.False(t, b.Set(9), "second set of the same bit is not new")
	require.False(t, b.Set(-1))
	require.True(t, b.Has(9))
	require.False(t, b.Has(8))
	require.Equal(t, 2, b.Count())
	var o Bitset
	o.Set(9)
	o.Set(20)
	require.Equal(t, 1, b.And(o).Count())

	raw, err := json.Marshal(b)
	require.NoError(t, err)
	var back Bitset
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, b, back)
}

func TestProgress(t *testing.T) {
	j := &Job{Status: StatusProcessing, Accepted: true, Chunked: true, ChunksTotal: 4}
	for i := range 4 {
		j.Merged.Set(i)
	}
	j.Indexed.Set(0)
	p := j.Progress()
	require.Equal(t, "extracting", p.Stage)
	require.Equal(t, 62, p.Percent)
	require.Equal(t, 1, p.ChunksProcessed)

	require.Equal(t, "queued", (&Job{Status: StatusPending}).Progress().Stage)
	require.Equal(t, "chunking", (&Job{Status: StatusProcessing, Accepted: true}).Progress().Stage)
	done := (&Job{Status: StatusCompleted}).Progress()
	require.Equal(t, 100, done.Percent)
	require.True(t, StatusDuplicate.Terminal())
	require.False(t, StatusProcessing.Terminal())
}
