// Package kvtest is the contract suite every key-value store must pass.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Run runs the contract suite. open must return an empty store; releasing it
// is left to open (via t.Cleanup), since kv.Store has no Close.
func Run(t *testing.T, open func(t *testing.T) kv.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s kv.Store)
	}{
		{"NotFound", testNotFound},
		{"CreateAndGet", testCreateAndGet},
		{"CreateExisting", testCreateExisting},
		{"Put", testPut},
		{"Update", testUpdate},
		{"UpdateMissingOrDeleted", testUpdateMissingOrDeleted},
		{"DeleteThenCreate", testDeleteThenCreate},
		{"Keys", testKeys},
		{"KeysAfter", testKeysAfter},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentClaimsAfterDelete", testConcurrentClaimsAfterDelete},
		{"ConcurrentCompareAndSet", testConcurrentCompareAndSet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func testNotFound(t *testing.T, s kv.Store) {
	ctx := t.Context()
	_, _, err := s.Get(ctx, "job.missing")
	require.ErrorIs(t, err, kv.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "job.missing"), "deleting a missing key is not an error")
	_, _, err = s.Get(ctx, "job.missing")
	require.ErrorIs(t, err, kv.ErrNotFound)
}

func testCreateAndGet(t *testing.T, s kv.Store) {
	ctx := t.Context()
	value := []byte{0, 1, 2, 0xff, '{', '}'}
	rev, err := s.Create(ctx, "job.abc-123_X", value)
	require.NoError(t, err)
	require.Positive(t, rev)

	got, gotRev, err := s.Get(ctx, "job.abc-123_X")
	require.NoError(t, err)
	require.Equal(t, value, got)
	require.Equal(t, rev, gotRev)
}

func testCreateExisting(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev, err := s.Create(ctx, "dedup.default.k", []byte("first"))
	require.NoError(t, err)

	_, err = s.Create(ctx, "dedup.default.k", []byte("second"))
	require.ErrorIs(t, err, kv.ErrExists)
	require.NotErrorIs(t, err, kv.ErrConflict)

	got, gotRev, err := s.Get(ctx, "dedup.default.k")
	require.NoError(t, err)
	require.Equal(t, "first", string(got), "a lost claim must not overwrite")
	require.Equal(t, rev, gotRev)
}

func testPut(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev1, err := s.Put(ctx, "job.p", []byte("one"))
	require.NoError(t, err)
	rev2, err := s.Put(ctx, "job.p", []byte("two"))
	require.NoError(t, err)
	require.Greater(t, rev2, rev1)

	got, rev, err := s.Get(ctx, "job.p")
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	require.Equal(t, rev2, rev)
}

func testUpdate(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev1, err := s.Create(ctx, "job.u", []byte("queued"))
	require.NoError(t, err)
	rev2, err := s.Update(ctx, "job.u", []byte("running"), rev1)
	require.NoError(t, err)
	require.Greater(t, rev2, rev1)

	_, err = s.Update(ctx, "job.u", []byte("stale"), rev1)
	require.ErrorIs(t, err, kv.ErrConflict)
	require.NotErrorIs(t, err, kv.ErrExists)

	got, rev, err := s.Get(ctx, "job.u")
	require.NoError(t, err)
	require.Equal(t, "running", string(got), "a stale update must not be applied")
	require.Equal(t, rev2, rev)

	// A Put in between makes the revision read before it stale.
	_, err = s.Put(ctx, "job.u", []byte("forced"))
	require.NoError(t, err)
	_, err = s.Update(ctx, "job.u", []byte("stale"), rev2)
	require.ErrorIs(t, err, kv.ErrConflict)

	_, err = s.Update(ctx, "job.u", []byte("zero"), 0)
	require.Error(t, err, "lastRevision 0 is not a revision")
	got, _, err = s.Get(ctx, "job.u")
	require.NoError(t, err)
	require.Equal(t, "forced", string(got))
}

func testUpdateMissingOrDeleted(t *testing.T, s kv.Store) {
	ctx := t.Context()
	_, err := s.Update(ctx, "job.never", []byte("x"), 1)
	require.ErrorIs(t, err, kv.ErrConflict)
	_, _, err = s.Get(ctx, "job.never")
	require.ErrorIs(t, err, kv.ErrNotFound)

	_, err = s.Update(ctx, "job.never", []byte("x"), 0)
	require.Error(t, err)
	_, _, err = s.Get(ctx, "job.never")
	require.ErrorIs(t, err, kv.ErrNotFound, "Update must never create a key")

	rev, err := s.Create(ctx, "job.gone", []byte("x"))
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, "job.gone"))
	_, err = s.Update(ctx, "job.gone", []byte("y"), rev)
	require.ErrorIs(t, err, kv.ErrConflict)
	_, _, err = s.Get(ctx, "job.gone")
	require.ErrorIs(t, err, kv.ErrNotFound)
}

func testDeleteThenCreate(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev1, err := s.Create(ctx, "dedup.default.abc", []byte("one"))
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, "dedup.default.abc"))
	_, _, err = s.Get(ctx, "dedup.default.abc")
	require.ErrorIs(t, err, kv.ErrNotFound)

	rev2, err := s.Create(ctx, "dedup.default.abc", []byte("two"))
	require.NoError(t, err)
	require.Greater(t, rev2, rev1)
	got, rev, err := s.Get(ctx, "dedup.default.abc")
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	require.Equal(t, rev2, rev)

	_, err = s.Create(ctx, "dedup.default.abc", []byte("three"))
	require.ErrorIs(t, err, kv.ErrExists)
}

func testKeys(t *testing.T, s kv.Store) {
	ctx := t.Context()
	for _, key := range []string{"job.b", "job.a", "jobs.z", "dedup.default.x", "dedup.other.y", "dedup.default.xy", "job.deleted"} {
		_, err := s.Put(ctx, key, []byte("v"))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(ctx, "job.deleted"))

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"dedup.default.x", "dedup.default.xy", "dedup.other.y", "job.a", "job.b", "jobs.z"}},
		{"job.", []string{"job.a", "job.b"}},
		{"job", []string{"job.a", "job.b", "jobs.z"}},
		{"dedup.", []string{"dedup.default.x", "dedup.default.xy", "dedup.other.y"}},
		{"dedup.default.", []string{"dedup.default.x", "dedup.default.xy"}},
		{"dedup.default.x", []string{"dedup.default.x", "dedup.default.xy"}},
		{"dedup.default.xy", []string{"dedup.default.xy"}},
		{"nothing.", []string{}},
		{"jo", []string{"job.a", "job.b", "jobs.z"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix %q", tc.prefix), func(t *testing.T) {
			got, err := s.Keys(ctx, tc.prefix)
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Equal(t, tc.want, got)
		})
	}
}

func testKeysAfter(t *testing.T, s kv.Store) {
	ctx := t.Context()
	for _, key := range []string{"idx.a.3", "idx.a.1", "idx.a.2", "idx.ab.1", "idx.b.1", "other.1", "idx.a.9"} {
		_, err := s.Put(ctx, key, []byte("v"))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(ctx, "idx.a.9"))

	tests := []struct {
		name          string
		prefix, after string
		limit         int
		want          []string
	}{
		{"first page", "idx.a.", "", 2, []string{"idx.a.1", "idx.a.2"}},
		{"next page", "idx.a.", "idx.a.2", 2, []string{"idx.a.3"}},
		{"past the end", "idx.a.", "idx.a.3", 2, []string{}},
		{"after a key that does not exist", "idx.a.", "idx.a.15", 10, []string{"idx.a.2", "idx.a.3"}},
		{"after a deleted key", "idx.a.", "idx.a.8", 10, []string{}},
		{"after a key below the prefix", "idx.a.", "idx.", 10, []string{"idx.a.1", "idx.a.2", "idx.a.3"}},
		{"after a key above the prefix", "idx.a.", "idx.b", 10, []string{}},
		{"whole prefix", "idx.", "", 10, []string{"idx.a.1", "idx.a.2", "idx.a.3", "idx.ab.1", "idx.b.1"}},
		{"partial token", "idx.a", "idx.a.3", 10, []string{"idx.ab.1"}},
		{"every key", "", "idx.b.1", 10, []string{"other.1"}},
		{"limit one", "", "", 1, []string{"idx.a.1"}},
		{"no match", "none.", "", 10, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.KeysAfter(ctx, tc.prefix, tc.after, tc.limit)
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Equal(t, tc.want, got)
		})
	}

	// Paging through many keys a few at a time sees each once, in order.
	var want []string
	for i := range 57 {
		key := fmt.Sprintf("many.%03d", i)
		_, err := s.Put(ctx, key, []byte("v"))
		require.NoError(t, err)
		want = append(want, key)
	}
	var got []string
	after := ""
	for {
		page, err := s.KeysAfter(ctx, "many.", after, 10)
		require.NoError(t, err)
		got = append(got, page...)
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1]
	}
	require.Equal(t, want, got)

	_, err := s.KeysAfter(ctx, "idx.", "", 0)
	require.Error(t, err, "limit must be positive")
}

func testInvalidKeys(t *testing.T, s kv.Store) {
	ctx := t.Context()
	for _, key := range []string{"", "has space", "a..b", ".leading", "trailing.", "wild.*", "wild.>", "slash/key", "ünïcode"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			_, err := s.Put(ctx, key, []byte("v"))
			require.Error(t, err)
			_, err = s.Create(ctx, key, []byte("v"))
			require.Error(t, err)
			require.NotErrorIs(t, err, kv.ErrExists)
			_, _, err = s.Get(ctx, key)
			require.Error(t, err)
		})
	}
}

func testConcurrentClaims(t *testing.T, s kv.Store) {
	requireOneClaimWinner(t, s, "dedup.default.contended")
}

func testConcurrentClaimsAfterDelete(t *testing.T, s kv.Store) {
	ctx := t.Context()
	_, err := s.Create(ctx, "dedup.default.recycled", []byte("old"))
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, "dedup.default.recycled"))
	requireOneClaimWinner(t, s, "dedup.default.recycled")
}

func requireOneClaimWinner(t *testing.T, s kv.Store, key string) {
	t.Helper()
	ctx := t.Context()
	const claimants = 20
	errs := make([]error, claimants)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range claimants {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Create(ctx, key, []byte(strconv.Itoa(i)))
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "claimants %d and %d both won", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, err, kv.ErrExists, "claimant %d", i)
	}
	require.NotEqual(t, -1, winner, "nobody won the claim")

	got, _, err := s.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(winner), string(got), "the stored value must be the winner's")
}

func testConcurrentCompareAndSet(t *testing.T, s kv.Store) {
	ctx := t.Context()
	const workers, incrementsEach = 8, 5
	_, err := s.Create(ctx, "job.counter", []byte("0"))
	require.NoError(t, err)

	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-start
			for range incrementsEach {
				if err := increment(ctx, s, "job.counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	got, _, err := s.Get(ctx, "job.counter")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(workers*incrementsEach), string(got))
}

// increment is a read-modify-write loop: a lost update shows up as a final
// count below workers*incrementsEach.
func increment(ctx context.Context, s kv.Store, key string) error {
	for {
		value, rev, err := s.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("get %s: %w", key, err)
		}
		n, err := strconv.Atoi(string(value))
		if err != nil {
			return fmt.Errorf("parse %s: %w", key, err)
		}
		_, err = s.Update(ctx, key, []byte(strconv.Itoa(n+1)), rev)
		if errors.Is(err, kv.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update %s: %w", key, err)
		}
		return nil
	}
}
