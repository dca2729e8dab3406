package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraSource is gcra in microseconds of the server clock, over one string
// key holding the TAT. The server's TIME, not the caller's clock, decides,
// so replicas whose clocks disagree still agree on every key. Lua numbers
// are doubles, exact for integers up to 2^53: microseconds since 1970 fit
// for a few centuries, nanoseconds would not. A denied request writes
// nothing; an allowed one sets the TAT to expire when it passes, since a
// missing key and a past TAT mean the same.
//
// KEYS[1]: the key. ARGV[1]: emission interval (µs, positive). ARGV[2]:
// burst. Returns {allowed 0|1, remaining, retry after µs, reset after µs}.
const gcraSource = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
	tat = math.max(tonumber(stored), now)
end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > tolerance then
	return {0, 0, ahead - tolerance, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000))
return {1, math.floor((tolerance - ahead) / interval), 0, ahead}
`

// Redis is a Limiter whose state lives in Redis, shared by every process
// using the same server and prefix. Each decision is one script call
// (EVALSHA, falling back to EVAL after a server restart) on one key,
// <prefix><key>, so it also works on Redis Cluster. It needs Redis 5 or
// later, which replicates a script's writes rather than the script, as the
// script reads the clock.
//
// RetryAfter and ResetAfter have microsecond resolution, and the emission
// interval is rounded up to a whole microsecond (a Limit whose Per is not
// a multiple of Requests µs is enforced a hair more strictly).
//
// The client's retry policy applies: a command retried after a network
// error may count one request twice, which errs on the strict side.
type Redis struct {
	client redis.UniversalClient
	prefix string
	script *redis.Script
}

// NewRedis returns a limiter keeping its state in client's database under
// prefix (e.g. "kg:ratelimit:"), which keeps limiters sharing a database
// apart. The client stays the caller's to close.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix, script: redis.NewScript(gcraSource)}
}

// Allow decides on one request of key under l.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Decision, error) {
	if err := check(key, l); err != nil {
		return Decision{}, err
	}
	if l.Unlimited() {
		return unlimitedDecision(), nil
	}
	interval := max((l.interval()+time.Microsecond-1)/time.Microsecond, 1)
	reply, err := r.script.Run(ctx, r.client, []string{r.prefix + key}, int64(interval), l.Requests).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit at %s in redis: %w", l, err)
	}
	if len(reply) != 4 {
		return Decision{}, fmt.Errorf("rate limit at %s in redis: script returned %d values, want 4", l, len(reply))
	}
	return Decision{
		Allowed:    reply[0] == 1,
		Remaining:  int(reply[1]),
		RetryAfter: time.Duration(reply[2]) * time.Microsecond,
		ResetAfter: time.Duration(reply[3]) * time.Microsecond,
	}, nil
}
