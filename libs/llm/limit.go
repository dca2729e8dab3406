package llm

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source of rate budgets and retry waits. Tests inject one
// whose Sleep returns at once and advances Now, so budgets and backoff can be
// checked without waiting. Per-attempt timeouts always use real time.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// bucket is a token bucket refilled continuously at perMinute/60 a second,
// holding at most one second's worth (at least 1). Providers enforce
// per-minute limits over short windows, so a smooth pace avoids the 429s a
// minute-sized burst would cause.
//
// Takers reserve first and wait afterwards: the level may go negative, and
// the debt is the wait. That makes waiting first-come first-served, lets a
// request larger than the capacity through (after a proportional wait), and
// lets a call settle its estimate against real usage afterwards.
type bucket struct {
	mu        sync.Mutex
	perSecond float64
	capacity  float64
	level     float64
	last      time.Time
	now       func() time.Time
}

// newBucket returns nil for an unlimited budget; a nil bucket never waits.
func newBucket(perMinute int, now func() time.Time) *bucket {
	if perMinute <= 0 {
		return nil
	}
	perSecond := float64(perMinute) / 60
	capacity := max(perSecond, 1)
	return &bucket{perSecond: perSecond, capacity: capacity, level: capacity, last: now(), now: now}
}

// reserve takes n and returns how long the caller must wait before using it.
func (b *bucket) reserve(n float64) time.Duration {
	if b == nil || n <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.level -= n
	if b.level >= 0 {
		return 0
	}
	return time.Duration(-b.level / b.perSecond * float64(time.Second))
}

// adjust gives back n (or takes -n more, when n is negative) after the fact:
// a refund of a reservation not used, or the difference between a token
// estimate and the usage the server reported.
func (b *bucket) adjust(n float64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.level = min(b.level+n, b.capacity)
}

func (b *bucket) refill() {
	now := b.now()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.level = min(b.level+elapsed.Seconds()*b.perSecond, b.capacity)
		b.last = now
	}
}
