package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

const (
	// shardCount splits the keys over independently locked maps so that
	// concurrent requests of different keys rarely wait for each other.
	shardCount = 32
	// minSweepLen is the shard size below which growth alone does not
	// trigger a sweep.
	minSweepLen = 256
	// sweepEvery bounds how long an idle key can outlive its reset when its
	// shard stops growing.
	sweepEvery = time.Minute
)

// Memory is a Limiter for one process. Its memory is bounded by the keys
// that are not yet back to a full burst: a key whose TAT has passed is
// indistinguishable from a key never seen, so sweeping it loses nothing.
// Each shard sweeps itself when it has doubled in size since its last
// sweep (amortised O(1) per request) and at least every minute while in
// use; no goroutine runs in the background.
type Memory struct {
	now  func() time.Time
	base time.Time
	seed maphash.Seed

	shards [shardCount]memoryShard
}

type memoryShard struct {
	mu sync.Mutex
	// tats holds each key's theoretical arrival time as an offset from
	// Memory.base, which keeps the monotonic clock reading of time.Now.
	tats map[string]time.Duration
	// sweepLen and sweepAt trigger the next sweep.
	sweepLen int
	sweepAt  time.Duration
}

// NewMemory returns an in-process limiter reading the time from now
// (time.Now when nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, base: now(), seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i] = memoryShard{
			tats:     make(map[string]time.Duration),
			sweepLen: minSweepLen,
			sweepAt:  sweepEvery,
		}
	}
	return m
}

// Allow decides on one request of key under l.
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Decision, error) {
	if err := check(key, l); err != nil {
		return Decision{}, err
	}
	if l.Unlimited() {
		return unlimitedDecision(), nil
	}
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now().Sub(m.base)
	s.maybeSweep(now)
	tat, ok := s.tats[key]
	if !ok {
		tat = now
	}
	d, tat := gcra(now, tat, l.interval(), l.Requests)
	if d.Allowed {
		s.tats[key] = tat
	}
	return d, nil
}

// Len returns the number of keys held, for metrics.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// maybeSweep drops the keys back to a full burst when the shard has grown
// or has not been swept for a while. The caller holds s.mu.
func (s *memoryShard) maybeSweep(now time.Duration) {
	if len(s.tats) < s.sweepLen && now < s.sweepAt {
		return
	}
	for key, tat := range s.tats {
		if tat <= now {
			delete(s.tats, key)
		}
	}
	s.sweepLen = max(2*len(s.tats), minSweepLen)
	s.sweepAt = now + sweepEvery
}
