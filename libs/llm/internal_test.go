package llm

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{"none", http.Header{}, 0, false},
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second, true},
		{"fractional seconds", http.Header{"Retry-After": {"0.25"}}, 250 * time.Millisecond, true},
		{"milliseconds win", http.Header{"Retry-After-Ms": {"120"}, "Retry-After": {"3"}}, 120 * time.Millisecond, true},
		{"bad milliseconds fall back", http.Header{"Retry-After-Ms": {"soon"}, "Retry-After": {"3"}}, 3 * time.Second, true},
		{"HTTP date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{"past HTTP date", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0, true},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0, false},
		{"garbage", http.Header{"Retry-After": {"later"}}, 0, false},
		{"huge saturates", http.Header{"Retry-After": {"1e300"}}, 2 * maxRetryAfter, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retryAfter(tt.header, now)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestBackoffIsExponentialJitteredAndCapped(t *testing.T) {
	for n := 1; n <= 40; n++ {
		ceiling := min(backoffBase<<min(n-1, 20), backoffMax)
		for range 50 {
			d := backoff(n)
			require.GreaterOrEqual(t, d, ceiling/2, "retry %d", n)
			require.LessOrEqual(t, d, ceiling, "retry %d", n)
		}
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(3)] = true
	}
	require.Greater(t, len(seen), 1, "jittered")
}

func TestRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 408: true, 409: true, 422: false,
		429: true, 500: true, 502: true, 503: true, 504: true, 529: true,
	} {
		require.Equal(t, want, retryableStatus(status), "status %d", status)
	}
}

func TestBucket(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	require.Nil(t, newBucket(0, clock), "0 is unlimited")
	var unlimited *bucket
	require.Zero(t, unlimited.reserve(1e9))
	unlimited.adjust(5) // no-op, no panic

	b := newBucket(120, clock) // 2 a second, holds 2
	require.Zero(t, b.reserve(1))
	require.Zero(t, b.reserve(1))
	require.Equal(t, 500*time.Millisecond, b.reserve(1))
	require.Equal(t, time.Second, b.reserve(1), "waits queue up")

	now = now.Add(time.Second)
	require.Equal(t, 500*time.Millisecond, b.reserve(1))
	b.adjust(1) // a refund: the next taker waits 500 ms, not 1 s
	require.Equal(t, 500*time.Millisecond, b.reserve(1))

	now = now.Add(time.Hour)
	require.Zero(t, b.reserve(2), "refill stops at capacity")
	require.Equal(t, 500*time.Millisecond, b.reserve(1))

	small := newBucket(30, clock) // half a request a second still holds one
	require.Zero(t, small.reserve(1))
	require.Equal(t, 2*time.Second, small.reserve(1))

	tokens := newBucket(600, clock) // 10 a second, holds 10
	require.Equal(t, 4*time.Second, tokens.reserve(50), "a reservation above capacity waits for its excess")
	tokens.adjust(100)
	require.Zero(t, tokens.reserve(10), "adjust never fills beyond capacity")
	require.Equal(t, 100*time.Millisecond, tokens.reserve(1))
}
