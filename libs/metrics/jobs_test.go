package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natskv"
)

// fakeStore is an in-memory JobStore. Keys in vanished are listed but
// not found, as when a record is deleted between listing and reading; a
// Get of a key in broken fails.
type fakeStore struct {
	mu       sync.Mutex
	records  map[string]string
	vanished []string
	broken   map[string]bool
	gets     int
}

func (s *fakeStore) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.broken[key] {
		return nil, 0, errors.New("store unavailable")
	}
	v, ok := s.records[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	return []byte(v), 1, nil
}

func (s *fakeStore) Keys(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.records {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	for _, k := range s.vanished {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *fakeStore) put(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key] = value
}

func jobRecord(t *testing.T, status jobstate.Status, kind string) string {
	t.Helper()
	raw, err := json.Marshal(jobstate.Job{JobID: "j", Status: status, Kind: kind})
	require.NoError(t, err)
	return string(raw)
}

// jobSeries is every known status and kind at zero, overridden by nonzero.
func jobSeries(nonzero map[string]float64) map[string]float64 {
	out := map[string]float64{"kgraph_jobs_up{}": 1}
	for _, kind := range []string{jobstate.KindIngest, jobstate.KindDelete} {
		for _, status := range jobstate.Statuses() {
			out["kgraph_jobs{kind="+kind+",status="+string(status)+"}"] = 0
		}
	}
	maps.Copy(out, nonzero)
	return out
}

func TestJobsByStatusCountsEveryRecord(t *testing.T) {
	store := &fakeStore{records: map[string]string{
		"job.a": jobRecord(t, jobstate.StatusPending, jobstate.KindIngest),
		"job.b": jobRecord(t, jobstate.StatusPending, ""), // an older record without a kind
		"job.c": jobRecord(t, jobstate.StatusCompleted, jobstate.KindIngest),
		"job.d": jobRecord(t, jobstate.StatusCompleted, jobstate.KindDelete),
		"job.e": jobRecord(t, jobstate.StatusAwaitingApproval, jobstate.KindIngest),
		"job.f": jobRecord(t, "paused", jobstate.KindIngest), // a status newer than this build
		"job.g": "not json",
		// Document records share the bucket and are not jobs.
		"doc.default.6162": `{"doc_id":"ab","status":"ready"}`,
	}, vanished: []string{"job.gone"}}
	c := NewJobsByStatus(store, JobsConfig{Concurrency: 2})

	require.Equal(t, jobSeries(map[string]float64{
		"kgraph_jobs{kind=ingest,status=pending}":           2,
		"kgraph_jobs{kind=ingest,status=completed}":         1,
		"kgraph_jobs{kind=delete,status=completed}":         1,
		"kgraph_jobs{kind=ingest,status=awaiting_approval}": 1,
		"kgraph_jobs{kind=ingest,status=paused}":            1,
	}), gather(t, c))
}

func TestJobsByStatusCachesItsCount(t *testing.T) {
	store := &fakeStore{records: map[string]string{"job.a": jobRecord(t, jobstate.StatusProcessing, jobstate.KindIngest)}}
	clock := newFakeClock()
	c := NewJobsByStatus(store, JobsConfig{})
	c.reading.now = clock.Now

	want := jobSeries(map[string]float64{"kgraph_jobs{kind=ingest,status=processing}": 1})
	require.Equal(t, want, gather(t, c))
	store.put("job.b", jobRecord(t, jobstate.StatusProcessing, jobstate.KindIngest))
	clock.advance(DefaultJobsCacheFor - time.Millisecond)
	require.Equal(t, want, gather(t, c), "within the cache period the records are not read again")
	require.Equal(t, 1, store.gets)

	clock.advance(time.Millisecond)
	require.Equal(t, jobSeries(map[string]float64{"kgraph_jobs{kind=ingest,status=processing}": 2}), gather(t, c))
}

func TestJobsByStatusReportsAFailedCount(t *testing.T) {
	store := &fakeStore{
		records: map[string]string{
			"job.a": jobRecord(t, jobstate.StatusProcessing, jobstate.KindIngest),
			"job.b": jobRecord(t, jobstate.StatusProcessing, jobstate.KindIngest),
		},
		broken: map[string]bool{"job.b": true},
	}
	c := NewJobsByStatus(store, JobsConfig{})
	require.Equal(t, map[string]float64{"kgraph_jobs_up{}": 0}, gather(t, c),
		"a partial count would pass for the truth: none is reported")
}

func TestJobsByStatusOverNATSKV(t *testing.T) {
	js := startJetStream(t)
	ctx := t.Context()
	store, err := natskv.Open(ctx, js, bus.BucketJobs)
	require.NoError(t, err)
	for i, status := range []jobstate.Status{jobstate.StatusFailed, jobstate.StatusFailed, jobstate.StatusCancelled} {
		_, err := store.Put(ctx, jobstate.JobKey(fmt.Sprintf("job_%d", i)), []byte(jobRecord(t, status, jobstate.KindIngest)))
		require.NoError(t, err)
	}
	_, err = store.Put(ctx, jobstate.DocKey("default", "doc.1"), []byte(`{"status":"ready"}`))
	require.NoError(t, err)

	require.Equal(t, jobSeries(map[string]float64{
		"kgraph_jobs{kind=ingest,status=failed}":    2,
		"kgraph_jobs{kind=ingest,status=cancelled}": 1,
	}), gather(t, NewJobsByStatus(store, JobsConfig{})))
}
