package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/ratelimit"
	"github.com/kgraph-dev/kgraph/libs/ratelimit/ratelimittest"
	"github.com/kgraph-dev/kgraph/libs/redistest"
)

var (
	_ ratelimit.Limiter = (*ratelimit.Memory)(nil)
	_ ratelimit.Limiter = (*ratelimit.Redis)(nil)
)

func TestMemoryContract(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		return ratelimit.NewMemory(nil)
	})
}

func TestRedisContract(t *testing.T) {
	client := newClient(t, redistest.Run(t))
	// One server for the suite; a fresh prefix per subtest gives each an
	// empty limiter.
	limiters := 0
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		limiters++
		return ratelimit.NewRedis(client, fmt.Sprintf("rltest%d:", limiters))
	})
}

func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	return client
}

// TestRedisSharedAcrossReplicas races two edge replicas, each with its own
// client, for one key: together they get exactly one burst, while another
// prefix keeps its own counters.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	url := redistest.Run(t)
	replicas := []*ratelimit.Redis{
		ratelimit.NewRedis(newClient(t, url), "edge:"),
		ratelimit.NewRedis(newClient(t, url), "edge:"),
	}
	l := ratelimit.Limit{Requests: 20, Per: time.Hour}
	var allowed atomic.Int64
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			for range 10 {
				d, err := replicas[i%len(replicas)].Allow(t.Context(), "key-1", l)
				if err != nil {
					errs[i] = err
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(l.Requests), allowed.Load())

	other := ratelimit.NewRedis(newClient(t, url), "other:")
	d, err := other.Allow(t.Context(), "key-1", l)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, l.Requests-1, d.Remaining)
}

// TestRedisKeyLifetime checks the one key a limiter writes: named
// <prefix><key>, expiring when the key is back to a full burst, and left
// alone by denied requests.
func TestRedisKeyLifetime(t *testing.T) {
	client := newClient(t, redistest.Run(t))
	lim := ratelimit.NewRedis(client, "life:")
	ctx := t.Context()
	l := ratelimit.Limit{Requests: 2, Per: time.Hour}

	var last ratelimit.Decision
	for range l.Requests {
		d, err := lim.Allow(ctx, "k", l)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		last = d
	}
	keys, err := client.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.Equal(t, []string{"life:k"}, keys)
	ttl, err := client.PTTL(ctx, "life:k").Result()
	require.NoError(t, err)
	require.Positive(t, ttl)
	require.LessOrEqual(t, ttl, last.ResetAfter+time.Millisecond)
	stored, err := client.Get(ctx, "life:k").Result()
	require.NoError(t, err)
	// The TAT is kept to the microsecond, not in a float's exponent form.
	_, err = strconv.ParseInt(stored, 10, 64)
	require.NoError(t, err, "stored TAT %q", stored)

	d, err := lim.Allow(ctx, "k", l)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	after, err := client.Get(ctx, "life:k").Result()
	require.NoError(t, err)
	require.Equal(t, stored, after, "a denied request must not write")
}

// TestRedisStaleState checks that a TAT left in the past (a key without
// expiry, e.g. restored from a backup) reads as a full burst, not more.
func TestRedisStaleState(t *testing.T) {
	client := newClient(t, redistest.Run(t))
	lim := ratelimit.NewRedis(client, "stale:")
	ctx := t.Context()
	l := ratelimit.Limit{Requests: 3, Per: time.Hour}
	require.NoError(t, client.Set(ctx, "stale:k", "1", 0).Err())
	d, err := lim.Allow(ctx, "k", l)
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Remaining: 2, ResetAfter: 20 * time.Minute}, d)
}

// TestRedisScriptFlushed checks the EVAL fallback when the server has lost
// the script, as after a restart or SCRIPT FLUSH, and that counting goes on.
func TestRedisScriptFlushed(t *testing.T) {
	client := newClient(t, redistest.Run(t))
	lim := ratelimit.NewRedis(client, "flush:")
	ctx := t.Context()
	l := ratelimit.Limit{Requests: 3, Per: time.Hour}
	for want := l.Requests - 1; want >= 0; want-- {
		require.NoError(t, client.ScriptFlush(ctx).Err())
		d, err := lim.Allow(ctx, "k", l)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, want, d.Remaining)
	}
}

func TestRedisServerDown(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.URL())
	lim := ratelimit.NewRedis(client, "down:")
	l := ratelimit.Limit{Requests: 3, Per: time.Hour}
	_, err := lim.Allow(t.Context(), "k", l)
	require.NoError(t, err)

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = lim.Allow(ctx, "k", l)
	require.Error(t, err)
}

func TestSetHeaders(t *testing.T) {
	perMinute := ratelimit.Limit{Requests: 600, Per: time.Minute}
	tests := []struct {
		name string
		l    ratelimit.Limit
		d    ratelimit.Decision
		want http.Header
	}{
		{
			name: "allowed",
			l:    perMinute,
			d:    ratelimit.Decision{Allowed: true, Remaining: 5, ResetAfter: 1500 * time.Millisecond},
			want: http.Header{"Ratelimit-Limit": {"600"}, "Ratelimit-Remaining": {"5"}, "Ratelimit-Reset": {"2"}},
		},
		{
			name: "allowed with a full burst",
			l:    perMinute,
			d:    ratelimit.Decision{Allowed: true, Remaining: 599},
			want: http.Header{"Ratelimit-Limit": {"600"}, "Ratelimit-Remaining": {"599"}, "Ratelimit-Reset": {"0"}},
		},
		{
			name: "denied for less than a second",
			l:    perMinute,
			d:    ratelimit.Decision{RetryAfter: 100 * time.Millisecond, ResetAfter: time.Minute},
			want: http.Header{
				"Ratelimit-Limit": {"600"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"60"}, "Retry-After": {"1"},
			},
		},
		{
			name: "denied for just over two seconds",
			l:    perMinute,
			d:    ratelimit.Decision{RetryAfter: 2*time.Second + time.Microsecond, ResetAfter: time.Minute},
			want: http.Header{
				"Ratelimit-Limit": {"600"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"60"}, "Retry-After": {"3"},
			},
		},
		{
			name: "unlimited",
			l:    ratelimit.Limit{},
			d:    ratelimit.Decision{Allowed: true, Remaining: 1 << 40},
			want: http.Header{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			ratelimit.SetHeaders(h, tc.l, tc.d)
			require.Equal(t, tc.want, h)
		})
	}
}

// benchmarkKeys is how many API keys the benchmarks spread requests over.
const benchmarkKeys = 1024

func benchmarkAllow(b *testing.B, lim ratelimit.Limiter) {
	keys := make([]string, benchmarkKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	l := ratelimit.Limit{Requests: 600, Per: time.Minute}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := keys[next.Add(1)%benchmarkKeys]
			if _, err := lim.Allow(context.Background(), key, l); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMemoryAllow(b *testing.B) {
	benchmarkAllow(b, ratelimit.NewMemory(nil))
}

func BenchmarkRedisAllow(b *testing.B) {
	opts, err := redis.ParseURL(redistest.Run(b))
	require.NoError(b, err)
	client := redis.NewClient(opts)
	b.Cleanup(func() { require.NoError(b, client.Close()) })
	benchmarkAllow(b, ratelimit.NewRedis(client, "bench:"))
}
