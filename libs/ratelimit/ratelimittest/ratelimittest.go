// Package ratelimittest is the contract suite every ratelimit.Limiter must
// pass.
//
// The suite runs on the limiter's own clock, which for Redis is the
// server's, so it cannot move time: it waits for real time where it must
// (with short periods) and otherwise uses periods so long that nothing
// refills while it runs. Every timing assertion is bounded by the time
// measured around the calls, so a slow machine cannot make it fail, only a
// wrong limiter.
package ratelimittest

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/ratelimit"
)

// resolution is the rounding a limiter may apply to the durations it
// reports.
const resolution = time.Millisecond

// hourlyLimit refills one request every six minutes: nothing refills during a
// test, so counts are exact however slow the machine.
func hourlyLimit() ratelimit.Limit {
	return ratelimit.Limit{Requests: 10, Per: time.Hour}
}

// Run runs the contract suite. open must return a limiter holding no state,
// one per subtest; releasing it is left to open (via t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) ratelimit.Limiter) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, l ratelimit.Limiter)
	}{
		{"BurstThenDeny", testBurstThenDeny},
		{"DeniedRequestsAreNotCounted", testDeniedRequestsAreNotCounted},
		{"IndependentKeys", testIndependentKeys},
		{"Concurrent", testConcurrent},
		{"Recovery", testRecovery},
		{"Unlimited", testUnlimited},
		{"InvalidInput", testInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}

// within asserts that got lies in [lo, hi], widened by resolution.
func within(t *testing.T, got, lo, hi time.Duration, what string) {
	t.Helper()
	require.GreaterOrEqual(t, got, lo-resolution, "%s", what)
	require.LessOrEqual(t, got, hi+resolution, "%s", what)
}

func interval(l ratelimit.Limit) time.Duration {
	return l.Per / time.Duration(l.Requests)
}

// testBurstThenDeny spends a full burst, each request reporting what is
// left and when the key is full again, then is denied until one interval
// after the first request.
func testBurstThenDeny(t *testing.T, lim ratelimit.Limiter) {
	ctx := t.Context()
	hourly := hourlyLimit()
	emission := interval(hourly)
	start := time.Now()
	for i := range hourly.Requests {
		d, err := lim.Allow(ctx, "burst", hourly)
		require.NoError(t, err)
		elapsed := time.Since(start)
		require.True(t, d.Allowed, "request %d of a burst of %d", i+1, hourly.Requests)
		require.Equal(t, hourly.Requests-1-i, d.Remaining, "request %d", i+1)
		require.Zero(t, d.RetryAfter, "request %d", i+1)
		spent := time.Duration(i+1) * emission
		within(t, d.ResetAfter, spent-elapsed, spent, fmt.Sprintf("ResetAfter of request %d", i+1))
	}
	d, err := lim.Allow(ctx, "burst", hourly)
	require.NoError(t, err)
	elapsed := time.Since(start)
	require.False(t, d.Allowed, "request beyond the burst")
	require.Zero(t, d.Remaining)
	require.Positive(t, d.RetryAfter)
	// The first request's interval is the first to end.
	within(t, d.RetryAfter, emission-elapsed, emission, "RetryAfter")
	within(t, d.ResetAfter, hourly.Per-elapsed, hourly.Per, "ResetAfter when denied")
}

// testDeniedRequestsAreNotCounted checks that hammering a spent key does
// not push its recovery further away.
func testDeniedRequestsAreNotCounted(t *testing.T, lim ratelimit.Limiter) {
	ctx := t.Context()
	hourly := hourlyLimit()
	spend(t, lim, "hammered", hourly)
	first, err := lim.Allow(ctx, "hammered", hourly)
	require.NoError(t, err)
	require.False(t, first.Allowed)
	for range 20 {
		d, err := lim.Allow(ctx, "hammered", hourly)
		require.NoError(t, err)
		require.False(t, d.Allowed)
		require.Positive(t, d.RetryAfter)
		require.LessOrEqual(t, d.RetryAfter, first.RetryAfter+resolution)
		require.LessOrEqual(t, d.ResetAfter, first.ResetAfter+resolution)
	}
}

func testIndependentKeys(t *testing.T, lim ratelimit.Limiter) {
	ctx := t.Context()
	hourly := hourlyLimit()
	spend(t, lim, "spent", hourly)
	for _, key := range []string{"fresh", "spent2", "SPENT", "spent:"} {
		d, err := lim.Allow(ctx, key, hourly)
		require.NoError(t, err)
		require.True(t, d.Allowed, "key %q", key)
		require.Equal(t, hourly.Requests-1, d.Remaining, "key %q", key)
	}
	d, err := lim.Allow(ctx, "spent", hourly)
	require.NoError(t, err)
	require.False(t, d.Allowed, "the spent key after others were used")
}

// testConcurrent races many requests for one key: exactly a burst gets
// through, and every other request is told when to come back.
func testConcurrent(t *testing.T, lim ratelimit.Limiter) {
	const goroutines, perGoroutine = 8, 25
	ctx := t.Context()
	hourly := hourlyLimit()
	emission := interval(hourly)
	var (
		mu      sync.Mutex
		allowed int
		errs    []error
	)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			<-start
			for range perGoroutine {
				d, err := lim.Allow(ctx, "contended", hourly)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case d.Allowed:
					allowed++
				case d.RetryAfter <= 0 || d.RetryAfter > emission+resolution:
					errs = append(errs, fmt.Errorf("denied with RetryAfter %s, want in (0, %s]", d.RetryAfter, emission))
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, hourly.Requests, allowed, "%d requests raced for a burst of %d", goroutines*perGoroutine, hourly.Requests)
}

// testRecovery waits out real time on a short period: one request is
// allowed again after RetryAfter — only one, as the key refills smoothly —
// and the full burst after ResetAfter.
func testRecovery(t *testing.T, lim ratelimit.Limiter) {
	ctx := t.Context()
	l := ratelimit.Limit{Requests: 5, Per: 200 * time.Millisecond}
	emission := interval(l)

	// A slow machine may see the key refill while spending it; keep asking
	// until it is denied.
	var denied ratelimit.Decision
	var deniedAt time.Time
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 1000, "never denied")
		deniedAt = time.Now()
		d, err := lim.Allow(ctx, "recovering", l)
		require.NoError(t, err)
		if !d.Allowed {
			denied = d
			break
		}
	}
	require.Positive(t, denied.RetryAfter)
	require.LessOrEqual(t, denied.RetryAfter, emission+resolution)
	require.LessOrEqual(t, denied.ResetAfter, l.Per+resolution)

	time.Sleep(denied.RetryAfter + resolution)
	d, err := lim.Allow(ctx, "recovering", l)
	require.NoError(t, err)
	elapsed := time.Since(deniedAt)
	require.True(t, d.Allowed, "after waiting RetryAfter %s", denied.RetryAfter)
	// Only the time waited beyond RetryAfter adds requests; a limiter that
	// refilled the whole burst at once would report more.
	refilled := int((elapsed - denied.RetryAfter + resolution) / emission)
	require.LessOrEqual(t, d.Remaining, refilled, "Remaining %s after the denial", elapsed)

	time.Sleep(d.ResetAfter + resolution)
	d, err = lim.Allow(ctx, "recovering", l)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, l.Requests-1, d.Remaining, "after waiting ResetAfter the burst is full")
}

func testUnlimited(t *testing.T, lim ratelimit.Limiter) {
	ctx := t.Context()
	hourly := hourlyLimit()
	for _, l := range []ratelimit.Limit{{}, {Requests: 0, Per: time.Hour}, {Requests: -1, Per: time.Second}} {
		for i := range 50 {
			d, err := lim.Allow(ctx, "unlimited", l)
			require.NoError(t, err)
			require.Equal(t, ratelimit.Decision{Allowed: true, Remaining: math.MaxInt}, d, "limit %v, request %d", l, i+1)
		}
	}
	// Unlimited requests leave no trace on the key.
	d, err := lim.Allow(ctx, "unlimited", hourly)
	require.NoError(t, err)
	require.Equal(t, hourly.Requests-1, d.Remaining)
}

func testInvalidInput(t *testing.T, lim ratelimit.Limiter) {
	tests := []struct {
		name string
		key  string
		l    ratelimit.Limit
	}{
		{"empty key", "", hourlyLimit()},
		{"zero period", "k", ratelimit.Limit{Requests: 5}},
		{"negative period", "k", ratelimit.Limit{Requests: 5, Per: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lim.Allow(t.Context(), tc.key, tc.l)
			require.Error(t, err)
		})
	}
}

// spend uses up key's burst under l, which must not refill during a test.
func spend(t *testing.T, lim ratelimit.Limiter, key string, l ratelimit.Limit) {
	t.Helper()
	for i := range l.Requests {
		d, err := lim.Allow(t.Context(), key, l)
		require.NoError(t, err)
		require.True(t, d.Allowed, "request %d of key %q", i+1, key)
	}
}
