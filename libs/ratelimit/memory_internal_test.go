package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMemoryExactDecisions walks one key through a burst, denials and
// refills on a clock that only moves when told, checking every number.
func TestMemoryExactDecisions(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	l := Limit{Requests: 5, Per: 200 * time.Millisecond} // one per 40ms
	ms := time.Millisecond
	steps := []struct {
		advance time.Duration
		want    Decision
	}{
		{0, Decision{Allowed: true, Remaining: 4, ResetAfter: 40 * ms}},
		{0, Decision{Allowed: true, Remaining: 3, ResetAfter: 80 * ms}},
		{0, Decision{Allowed: true, Remaining: 2, ResetAfter: 120 * ms}},
		{0, Decision{Allowed: true, Remaining: 1, ResetAfter: 160 * ms}},
		{0, Decision{Allowed: true, Remaining: 0, ResetAfter: 200 * ms}},
		{0, Decision{RetryAfter: 40 * ms, ResetAfter: 200 * ms}},
		{39 * ms, Decision{RetryAfter: 1 * ms, ResetAfter: 161 * ms}},
		{1 * ms, Decision{Allowed: true, Remaining: 0, ResetAfter: 200 * ms}},
		{0, Decision{RetryAfter: 40 * ms, ResetAfter: 200 * ms}},
		// 120ms later three intervals have passed; this request takes one.
		{120 * ms, Decision{Allowed: true, Remaining: 2, ResetAfter: 120 * ms}},
		// Idle past the TAT, before any sweep: a full burst, not more.
		{300 * ms, Decision{Allowed: true, Remaining: 4, ResetAfter: 40 * ms}},
		// Idle long enough for the key to be swept: the same.
		{time.Hour, Decision{Allowed: true, Remaining: 4, ResetAfter: 40 * ms}},
	}
	for i, step := range steps {
		clock.Advance(step.advance)
		got, err := m.Allow(t.Context(), "key", l)
		require.NoError(t, err)
		require.Equal(t, step.want, got, "step %d", i)
	}
}

// TestMemoryClockBeforeConstruction covers a clock that reads earlier than
// it did when the limiter was made: a new key still gets its full burst.
func TestMemoryClockBeforeConstruction(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	clock.Advance(-time.Hour)
	d, err := m.Allow(t.Context(), "key", Limit{Requests: 3, Per: time.Second})
	require.NoError(t, err)
	require.Equal(t, Decision{Allowed: true, Remaining: 2, ResetAfter: time.Second / 3}, d)
}

// TestMemoryEvictsIdleKeys checks that keys back to a full burst are
// dropped once a minute even when no shard grows.
func TestMemoryEvictsIdleKeys(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	ctx := t.Context()
	allowAll(t, m, "old", 5000, Limit{Requests: 1, Per: time.Second})
	require.Equal(t, 5000, m.Len())

	clock.Advance(sweepEvery)
	// 1000 keys reach every one of the 32 shards but for a chance of about
	// 32·(31/32)^1000 ≈ 1e-12.
	allowAll(t, m, "new", 1000, Limit{Requests: 1, Per: time.Hour})
	require.Equal(t, 1000, m.Len(), "the old keys' TATs have passed")

	// A swept key is as good as new, and a key still refilling survives.
	d, err := m.Allow(ctx, "old0", Limit{Requests: 1, Per: time.Second})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	clock.Advance(sweepEvery)
	d, err = m.Allow(ctx, "new0", Limit{Requests: 1, Per: time.Hour})
	require.NoError(t, err)
	require.False(t, d.Allowed, "a key an hour from full must not be evicted")
}

// TestMemoryBoundedUnderChurn streams distinct keys, each idle a moment
// later, and checks that growth-triggered sweeps keep every shard small.
func TestMemoryBoundedUnderChurn(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	// 100,000 steps of 100µs stay below a minute, so only growth sweeps.
	const keys, step = 100_000, 100 * time.Microsecond
	require.Less(t, keys*step, sweepEvery)
	l := Limit{Requests: 1, Per: step}
	for i := range keys {
		clock.Advance(step)
		d, err := m.Allow(t.Context(), fmt.Sprintf("churn%d", i), l)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	require.LessOrEqual(t, m.Len(), shardCount*minSweepLen)
}

func allowAll(t *testing.T, m *Memory, prefix string, n int, l Limit) {
	t.Helper()
	for i := range n {
		d, err := m.Allow(context.Background(), fmt.Sprintf("%s%d", prefix, i), l)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
}

func TestLimitInterval(t *testing.T) {
	tests := []struct {
		l    Limit
		want time.Duration
	}{
		{Limit{Requests: 600, Per: time.Minute}, 100 * time.Millisecond},
		{Limit{Requests: 3, Per: time.Second}, 333333333 * time.Nanosecond},
		// More requests than nanoseconds: the interval cannot reach 0.
		{Limit{Requests: 1000, Per: time.Nanosecond}, time.Nanosecond},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.l.interval(), "%v", tc.l)
	}
}
