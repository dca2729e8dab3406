package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/kv/kvtest"
	"github.com/kgraph-dev/kgraph/libs/natskv"
	"github.com/kgraph-dev/kgraph/libs/redisstore"
	"github.com/kgraph-dev/kgraph/libs/redistest"
)

var _ kv.Store = (*redisstore.Store)(nil)

func open(t testing.TB, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestContract(t *testing.T) {
	url := redistest.Run(t)
	// One server for the suite; a fresh prefix per subtest gives each an
	// empty store.
	stores := 0
	kvtest.Run(t, func(t *testing.T) kv.Store {
		stores++
		return open(t, url, fmt.Sprintf("kvtest%d:", stores))
	})
}

func TestOpenRejectsBadConfig(t *testing.T) {
	url := redistest.Run(t)
	tests := []struct {
		name string
		cfg  redisstore.Config
	}{
		{"empty prefix", redisstore.Config{URL: url}},
		{"empty URL", redisstore.Config{Prefix: "p:"}},
		{"wrong scheme", redisstore.Config{URL: "http://127.0.0.1:6379", Prefix: "p:"}},
		{"bad database", redisstore.Config{URL: "redis://127.0.0.1:6379/x", Prefix: "p:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(t.Context(), tc.cfg)
			require.Error(t, err)
			require.Nil(t, s)
		})
	}
}

func TestOpenUnreachableServer(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	s, err := redisstore.Open(ctx, redisstore.Config{URL: srv.URL(), Prefix: "p:"})
	require.Error(t, err)
	require.Nil(t, s)
	require.Contains(t, err.Error(), srv.Addr())
	require.Less(t, time.Since(start), 5*time.Second)
}

// TestClaimAcrossClients contends for one key from two clients, as two
// service replicas would: each round has exactly one winner, whichever
// client it used.
func TestClaimAcrossClients(t *testing.T) {
	url := redistest.Run(t)
	clients := []*redisstore.Store{open(t, url, "claims:"), open(t, url, "claims:")}
	ctx := t.Context()
	const rounds, claimants = 20, 16
	const key = "dedup.default.shared"
	winsPerClient := make([]int, len(clients))
	for round := range rounds {
		errs := make([]error, claimants)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range claimants {
			wg.Go(func() {
				<-start
				_, errs[i] = clients[i%len(clients)].Create(ctx, key, []byte(strconv.Itoa(i)))
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: claimants %d and %d both won", round, winner, i)
				winner = i
				continue
			}
			require.ErrorIs(t, err, kv.ErrExists, "round %d, claimant %d", round, i)
		}
		require.NotEqual(t, -1, winner, "round %d: nobody won", round)
		winsPerClient[winner%len(clients)]++
		for _, c := range clients {
			got, _, err := c.Get(ctx, key)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(winner), string(got), "round %d", round)
		}
		// Release the claim through the other client for the next round.
		require.NoError(t, clients[(winner+1)%len(clients)].Delete(ctx, key))
	}
	t.Logf("wins per client over %d rounds: %v", rounds, winsPerClient)
}

// TestKeysMany lists more keys than one index page holds, with names whose
// byte order differs from their numeric order.
func TestKeysMany(t *testing.T) {
	s := open(t, redistest.Run(t), "many:")
	ctx := t.Context()
	const jobs, dedups = 5000, 500
	var want, wantDedup []string
	for i := range jobs {
		want = append(want, "job."+strconv.Itoa(i))
	}
	for i := range dedups {
		wantDedup = append(wantDedup, "dedup.default."+strconv.Itoa(i))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, key := range slices.Concat(want, wantDedup) {
		g.Go(func() error {
			_, err := s.Put(gctx, key, []byte("v"))
			return err
		})
	}
	require.NoError(t, g.Wait())
	slices.Sort(want)
	slices.Sort(wantDedup)

	got, err := s.Keys(ctx, "job.")
	require.NoError(t, err)
	require.Equal(t, want, got)

	all, err := s.Keys(ctx, "")
	require.NoError(t, err)
	require.Equal(t, slices.Concat(wantDedup, want), all, "dedup.* sorts before job.*")

	got, err = s.Keys(ctx, "job.12")
	require.NoError(t, err)
	var want12 []string
	for _, key := range want {
		if strings.HasPrefix(key, "job.12") {
			want12 = append(want12, key)
		}
	}
	require.Len(t, want12, 111) // 12, 120-129, 1200-1299
	require.Equal(t, want12, got)

	// Deleted keys leave the index.
	for _, key := range want12 {
		require.NoError(t, s.Delete(ctx, key))
	}
	got, err = s.Keys(ctx, "job.12")
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = s.Keys(ctx, "job.")
	require.NoError(t, err)
	require.Len(t, got, jobs-len(want12))
	require.True(t, slices.IsSorted(got))
}

// TestPrefixIsolation shares one database between stores whose prefixes
// nest, which must not let one see or change the other's keys.
func TestPrefixIsolation(t *testing.T) {
	url := redistest.Run(t)
	ctx := t.Context()
	prefixes := []string{"iso:a:", "iso:a:k:", "iso:a:m:", "iso:b:"}
	stores := make([]*redisstore.Store, len(prefixes))
	for i, prefix := range prefixes {
		stores[i] = open(t, url, prefix)
		_, err := stores[i].Create(ctx, "job.same", []byte(prefix))
		require.NoError(t, err, "each store claims the key independently")
		_, err = stores[i].Put(ctx, "job."+strconv.Itoa(i), []byte(prefix))
		require.NoError(t, err)
	}
	for i, s := range stores {
		got, _, err := s.Get(ctx, "job.same")
		require.NoError(t, err)
		require.Equal(t, prefixes[i], string(got))
		keys, err := s.Keys(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"job." + strconv.Itoa(i), "job.same"}, keys, "store %q", prefixes[i])
	}

	require.NoError(t, stores[0].Delete(ctx, "job.same"))
	_, _, err := stores[0].Get(ctx, "job.same")
	require.ErrorIs(t, err, kv.ErrNotFound)
	for _, s := range stores[1:] {
		_, err := s.Create(ctx, "job.same", []byte("again"))
		require.ErrorIs(t, err, kv.ErrExists, "a delete in another store must not release this one's claim")
	}
}

// TestServerOutage stops the server under a live store: operations fail
// promptly instead of hanging or panicking, and work again once the server
// is back on the same port.
func TestServerOutage(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), "outage:")
	_, err := s.Put(t.Context(), "job.before", []byte("v"))
	require.NoError(t, err)

	srv.Stop()
	requireAllFail(t, s, 2*time.Second)

	srv.Restart()
	require.Eventually(t, func() bool { return s.Ping(t.Context()) == nil }, 10*time.Second, 50*time.Millisecond)
	// The server has no persistence, so this proves it really restarted.
	_, _, err = s.Get(t.Context(), "job.before")
	require.ErrorIs(t, err, kv.ErrNotFound)
	rev, err := s.Create(t.Context(), "job.after", []byte("back"))
	require.NoError(t, err)
	rev, err = s.Update(t.Context(), "job.after", []byte("again"), rev)
	require.NoError(t, err)
	got, gotRev, err := s.Get(t.Context(), "job.after")
	require.NoError(t, err)
	require.Equal(t, "again", string(got))
	require.Equal(t, rev, gotRev)
}

// TestServerHang freezes the server, which then accepts connections but
// never answers: only the context deadline ends each operation.
func TestServerHang(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), "hang:")
	rev, err := s.Create(t.Context(), "job.k", []byte("v"))
	require.NoError(t, err)

	srv.Pause()
	requireAllFail(t, s, 300*time.Millisecond)
	srv.Resume()

	require.Eventually(t, func() bool { return s.Ping(t.Context()) == nil }, 10*time.Second, 50*time.Millisecond)
	got, gotRev, err := s.Get(t.Context(), "job.k")
	require.NoError(t, err)
	require.Equal(t, "v", string(got))
	// The timed-out writes may have reached the server before it froze; an
	// error other than a sentinel leaves a write's outcome unknown.
	require.GreaterOrEqual(t, gotRev, rev)
}

// requireAllFail runs every operation with a timeout and requires each to
// fail with an error that is none of the kv sentinels, within the timeout
// plus scheduling slack.
func requireAllFail(t *testing.T, s *redisstore.Store, timeout time.Duration) {
	t.Helper()
	const slack = time.Second
	ops := map[string]func(ctx context.Context) error{
		"Ping": s.Ping,
		"Get": func(ctx context.Context) error {
			_, _, err := s.Get(ctx, "job.k")
			return err
		},
		"Create": func(ctx context.Context) error {
			_, err := s.Create(ctx, "job.new", []byte("v"))
			return err
		},
		"Update": func(ctx context.Context) error {
			_, err := s.Update(ctx, "job.k", []byte("v"), 1)
			return err
		},
		"Put": func(ctx context.Context) error {
			_, err := s.Put(ctx, "job.k", []byte("v"))
			return err
		},
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "job.other") },
		"Keys": func(ctx context.Context) error {
			_, err := s.Keys(ctx, "job.")
			return err
		},
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		start := time.Now()
		err := op(ctx)
		elapsed := time.Since(start)
		cancel()
		require.Error(t, err, name)
		for _, sentinel := range []error{kv.ErrNotFound, kv.ErrExists, kv.ErrConflict} {
			require.False(t, errors.Is(err, sentinel), "%s: %v must not look like %v", name, err, sentinel)
		}
		require.Less(t, elapsed, timeout+slack, "%s took %s: %v", name, elapsed, err)
		t.Logf("%s failed after %s: %v", name, elapsed.Round(time.Millisecond), err)
	}
}

// BenchmarkUpdate measures the projection's read-modify-compare-and-set
// loop against Redis; BenchmarkNATSKVUpdate runs the same loop against the
// embedded JetStream KV for comparison in one run.
func BenchmarkUpdate(b *testing.B) {
	benchUpdates(b, open(b, redistest.Run(b), "bench:"))
}

func BenchmarkNATSKVUpdate(b *testing.B) {
	_, conn := natstest.Run(b)
	js, err := jetstream.New(conn)
	require.NoError(b, err)
	s, err := natskv.Open(b.Context(), js, "bench")
	require.NoError(b, err)
	benchUpdates(b, s)
}

func benchUpdates(b *testing.B, s kv.Store) {
	b.Run("serial", func(b *testing.B) {
		ctx := b.Context()
		_, err := s.Put(ctx, "job.serial", []byte("0"))
		require.NoError(b, err)
		for b.Loop() {
			if err := increment(ctx, s, "job.serial"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
	// Each goroutine updates its own key, so throughput is not limited by
	// conflicts but by round trips in flight.
	b.Run("parallel", func(b *testing.B) {
		ctx := b.Context()
		var mu sync.Mutex
		next := 0
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			key := "job.parallel" + strconv.Itoa(next)
			next++
			mu.Unlock()
			if _, err := s.Put(ctx, key, []byte("0")); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if err := increment(ctx, s, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
}

// increment is the projection's update loop: read, modify, compare-and-set,
// and start over on a conflict.
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

func TestTTLExpiresKeys(t *testing.T) {
	url := redistest.Run(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: "ttl:", TTL: 300 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Put(ctx, "llm.a", []byte("cached answer"))
	require.NoError(t, err)
	rev, err := s.Create(ctx, "llm.b", []byte("x"))
	require.NoError(t, err)
	_, err = s.Update(ctx, "llm.b", []byte("y"), rev)
	require.NoError(t, err)
	v, _, err := s.Get(ctx, "llm.a")
	require.NoError(t, err)
	require.Equal(t, "cached answer", string(v))
	require.Eventually(t, func() bool {
		_, _, errA := s.Get(ctx, "llm.a")
		_, _, errB := s.Get(ctx, "llm.b")
		return errors.Is(errA, kv.ErrNotFound) && errors.Is(errB, kv.ErrNotFound)
	}, 5*time.Second, 50*time.Millisecond, "keys expire after the TTL")

	plain, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: "nottl:"})
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Put(ctx, "job.a", []byte("kept"))
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	_, _, err = plain.Get(ctx, "job.a")
	require.NoError(t, err, "without a TTL nothing expires")
}
