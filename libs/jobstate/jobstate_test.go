package jobstate

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

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

func TestJobPositionsSortNewestFirst(t *testing.T) {
	base := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ordered := []struct {
		created time.Time
		id      string
	}{
		{base.Add(time.Hour), "b"},
		{base.Add(time.Nanosecond), "a"},
		{base, "a"},
		{base, "b"}, // same time: by id
		{base.Add(-24 * time.Hour), "z"},
		{time.Unix(0, 0), "epoch"},
		{time.Time{}, "zero"}, // an unset time sorts last
	}
	var positions []string
	for _, o := range ordered {
		positions = append(positions, JobPosition(o.created, o.id))
	}
	require.True(t, slices.IsSorted(positions), "%q", positions)

	for _, o := range ordered[:5] {
		at, id, ok := ParseJobPosition(JobPosition(o.created, o.id))
		require.True(t, ok)
		require.Equal(t, o.id, id)
		require.True(t, o.created.Equal(at), "%v != %v", o.created, at)
	}
	for _, bad := range []string{"", "123.a", "abcdefghijklmnopqrs.a", "0000000000000000001", "-000000000000000001.a", "+000000000000000001.a", "0000000000000000001.a.b"} {
		_, _, ok := ParseJobPosition(bad)
		require.False(t, ok, bad)
	}
}

func TestJobIndexKeys(t *testing.T) {
	j := &Job{JobID: "job-1", Namespace: "books", CreatedAt: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	keys := JobIndexKeys(j)
	pos := JobPosition(j.CreatedAt, j.JobID)
	require.Equal(t, []string{JobIndexPrefixAll + pos, JobIndexPrefix("books") + pos}, keys)
	for _, k := range keys {
		got, ok := ParseIndexKey(k)
		require.True(t, ok)
		require.Equal(t, pos, got)
	}
	_, ok := ParseIndexKey(JobKey("job-1"))
	require.False(t, ok)
	// A namespace's prefix does not take in a namespace that extends it.
	require.NotContains(t, JobIndexPrefix("books2")+pos, JobIndexPrefix("books"))
}

func TestDocIndexKeys(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	d := &Document{DocID: "book:1.2/ä", Namespace: "books", CreatedAt: at}
	keys := DocIndexKeys(d)
	pos := DocPosition(at, "books", "book:1.2/ä")
	require.Equal(t, []string{DocIndexPrefixAll + pos, DocIndexPrefix("books") + pos}, keys)
	for _, k := range keys {
		got, ok := ParseIndexKey(k)
		require.True(t, ok)
		require.Equal(t, pos, got)
	}
	gotAt, ns, id, ok := ParseDocPosition(pos)
	require.True(t, ok)
	require.True(t, at.Equal(gotAt))
	require.Equal(t, "books", ns)
	require.Equal(t, "book:1.2/ä", id)
	require.True(t, DocPosition(at.Add(time.Second), "zzz", "a") < DocPosition(at, "aaa", "a"), "newest first, whatever the namespace")
	for _, bad := range []string{"", pos + ".x", "0000000000000000001.books.zz", "0000000000000000001..61"} {
		_, _, _, ok := ParseDocPosition(bad)
		require.False(t, ok, bad)
	}
}
