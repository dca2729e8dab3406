package fakellm

import (
	"strings"
	"unicode/utf8"
)

// fault is what the server does to one call instead of (or on top of)
// answering it properly.
type fault int

const (
	faultNone fault = iota
	fault429
	fault500
	faultTimeout
	faultGarbage
	faultTruncated
)

// faultPlan turns a call number into a fault. The decision depends only on
// the seed and the call number, so a run with the same seed and the same
// number of calls injects the same faults, whatever the interleaving of the
// calls; the shares are partitioned ([0,r429) → 429, then 500, …), so they
// never overlap and their sum is the share of faulty calls.
type faultPlan struct {
	seed                                   uint64
	rate429, rate500, rateTimeout          float64
	rateGarbage, rateTruncated             float64
	cum429, cum500, cumTimeout, cumGarbage float64
}

func newFaultPlan(cfg Config) faultPlan {
	p := faultPlan{
		seed:          cfg.Seed,
		rate429:       cfg.Rate429,
		rate500:       cfg.Rate500,
		rateTimeout:   cfg.RateTimeout,
		rateGarbage:   cfg.RateGarbage,
		rateTruncated: cfg.RateTruncated,
	}
	p.cum429 = p.rate429
	p.cum500 = p.cum429 + p.rate500
	p.cumTimeout = p.cum500 + p.rateTimeout
	p.cumGarbage = p.cumTimeout + p.rateGarbage
	return p
}

func (p faultPlan) decide(call uint64) fault {
	u := unitFloat(p.hash(call, 0))
	switch {
	case u < p.cum429:
		return fault429
	case u < p.cum500:
		return fault500
	case u < p.cumTimeout:
		return faultTimeout
	case u < p.cumGarbage:
		return faultGarbage
	case u < p.cumGarbage+p.rateTruncated:
		return faultTruncated
	default:
		return faultNone
	}
}

// hash mixes the seed, the call number and a stream id (so the fault choice
// and the garbage bytes of one call are independent).
func (p faultPlan) hash(call, stream uint64) uint64 {
	return splitmix64(p.seed ^ splitmix64(call^splitmix64(stream)))
}

// splitmix64 is Steele, Lea and Flood's SplitMix64 finaliser: a cheap,
// well-mixed 64-bit hash.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitFloat maps a hash to [0, 1) using its top 53 bits.
func unitFloat(h uint64) float64 {
	return float64(h>>11) / (1 << 53)
}

// garbageFragments are pieces of what broken model output looks like (half
// delimiters, half JSON, chatter, control characters), separated by \x1e.
const garbageFragments = "(\"entity\"<|\x1e<|>\x1e##\x1e{\"title\": \x1e]]}\x1e\x00\x1b[0m\x1e" +
	"As an AI language model, \x1e\ufffd\ufffd\x1elorem ipsum dolor \x1e\"\x1e)(\x1e" +
	"null\x1e<|COMPL\x1e\n\n\x1eSure! Here is the output:\x1e\\u00"

// garbage returns deterministic junk for a call: fragments and random
// printable bytes, never a completion delimiter.
func (p faultPlan) garbage(call uint64) string {
	fragments := strings.Split(garbageFragments, "\x1e")
	h := p.hash(call, 1)
	n := 8 + int(h%24)
	var b strings.Builder
	for i := range n {
		h = splitmix64(h + uint64(i))
		if h%3 == 0 {
			b.WriteString(fragments[(h>>8)%uint64(len(fragments))])
			continue
		}
		for j := range 4 + int((h>>16)%12) {
			b.WriteByte(byte(0x21 + (h>>(uint(j)%8*8))%94))
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// truncate cuts an output the way a max-token stop or a dropped connection
// does: about two thirds in, so mid-record, and never with a completion
// delimiter left in it.
func truncate(output string) string {
	output = strings.ReplaceAll(output, completionDelimiter, "")
	cut := len(output) * 2 / 3
	return cutAtRune(output, cut)
}

// cutAtRune returns at most n bytes of s without splitting a UTF-8 sequence.
func cutAtRune(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
