// Package ratelimit limits requests per key (an API key at the REST edge)
// with the generic cell rate algorithm (GCRA).
//
// GCRA keeps one number per key, the theoretical arrival time (TAT): the
// moment at which the key would be back to a full burst. Each allowed
// request pushes the TAT one emission interval (Per/Requests) further; a
// request is denied when that would put the TAT more than a full burst
// (Requests intervals) ahead of now. A key can therefore spend Requests at
// once and then one every Per/Requests, and it refills smoothly instead of
// all at once at a window boundary. Denied requests change nothing, so a
// client hammering a limit does not push its own recovery further away.
//
// Memory keeps the TATs in process; Redis keeps them in Redis so that
// several edge replicas share them, with the server's clock deciding.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Limit is a rate: Requests per Per, all of which may be spent at once
// (the burst is Requests). Requests <= 0 means unlimited.
//
// A key should be used with one Limit. Changing a key's Limit keeps its
// state (the TAT), which is what a configuration change wants: the key is
// neither reset nor locked out.
type Limit struct {
	Requests int
	Per      time.Duration
}

// Unlimited reports whether l lets every request through.
func (l Limit) Unlimited() bool {
	return l.Requests <= 0
}

// interval is the emission interval, the steady-state spacing between
// allowed requests.
func (l Limit) interval() time.Duration {
	return max(l.Per/time.Duration(l.Requests), 1)
}

// String formats l for logs and errors, e.g. "600/1m0s".
func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d/%s", l.Requests, l.Per)
}

// Decision is the verdict on one request.
type Decision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Remaining is how many more requests would be allowed right now;
	// math.MaxInt when the limit is unlimited.
	Remaining int
	// RetryAfter, when the request is denied, is how long until one request
	// would be allowed; it is then always positive. 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its full burst if no
	// further request is allowed.
	ResetAfter time.Duration
}

// Limiter decides whether the request identified by key may proceed under
// l, counting it if so. Implementations are safe for concurrent use.
//
// key names what is limited, such as an API key's id; it is stored (in
// Redis, as part of a key name), so it must never be the secret itself.
// Errors do not repeat it.
//
// An error means no decision could be made (e.g. Redis is unreachable);
// whether to let the request through then is the caller's policy.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
}

// unlimitedDecision is the answer for a Limit without a bound.
func unlimitedDecision() Decision {
	return Decision{Allowed: true, Remaining: math.MaxInt}
}

// check rejects what no limiter can decide on.
func check(key string, l Limit) error {
	if key == "" {
		return errors.New("empty rate limit key")
	}
	if !l.Unlimited() && l.Per <= 0 {
		return fmt.Errorf("limit %d per %s: period must be positive", l.Requests, l.Per)
	}
	return nil
}

// gcra decides on a request arriving at now for a key whose TAT is tat (a
// TAT in the past, or a missing key, means a full burst is available). It
// returns the decision and the key's new TAT, which equals tat when the
// request is denied. All times are on one clock; interval is positive.
//
// The Redis script is a transcription of this function in microseconds;
// keep the two in step.
func gcra(now, tat, interval time.Duration, burst int) (Decision, time.Duration) {
	tat = max(tat, now)
	tolerance := interval * time.Duration(burst)
	newTAT := tat + interval
	ahead := newTAT - now
	if ahead > tolerance {
		return Decision{RetryAfter: ahead - tolerance, ResetAfter: tat - now}, tat
	}
	return Decision{
		Allowed:    true,
		Remaining:  int((tolerance - ahead) / interval),
		ResetAfter: ahead,
	}, newTAT
}

// SetHeaders writes the rate limit headers of a response governed by l:
// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds), and
// Retry-After (seconds) when d denies the request. It writes nothing for an
// unlimited l. Seconds are rounded up, so a client that waits Retry-After
// never comes back too early.
func SetHeaders(h http.Header, l Limit, d Decision) {
	if l.Unlimited() {
		return
	}
	h.Set("RateLimit-Limit", strconv.Itoa(l.Requests))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(d.ResetAfter), 10))
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	return int64((max(d, 0) + time.Second - 1) / time.Second)
}
