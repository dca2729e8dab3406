package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/dustin/go-humanize"
)

// defaultMemoryLimit is kg serve's soft memory limit when neither
// --memory-limit nor GOMEMLIMIT says otherwise. It bounds what the Go
// runtime holds (heap, NATS's block buffers, stacks); SQLite's page caches
// (at most 64 MiB) and the binary come on top. At 256 MiB a 3,000-document
// wave peaked at 398-402 MiB of RSS (and a 10,000-document run at up to
// 440); at 192 MiB at 331-336 MiB, for 1-8 % of the ingest rate (the live
// heap at such a peak was 139 MB, 104 MB of it NATS's block buffers).
const defaultMemoryLimit = "192MiB"

// memoryLimit returns the soft memory limit in bytes that kg serve should
// set from the --memory-limit value ("256MiB", "1GiB", "off"), or -1 when
// the runtime's own setting must stay: GOMEMLIMIT, when set, has already
// been applied by the runtime and wins, as it does for every Go program.
//
// The limit is soft: near it the garbage collector runs more often instead
// of letting the heap double between collections (GOGC=100), which is what
// made a rebuild's short-lived garbage show up as RSS peaks; it never makes
// an allocation fail.
func memoryLimit(flagValue, gomemlimit string) (int64, error) {
	if gomemlimit != "" {
		return -1, nil
	}
	switch v := strings.TrimSpace(flagValue); strings.ToLower(v) {
	case "off", "0", "none":
		return math.MaxInt64, nil
	default:
		n, err := humanize.ParseBytes(v)
		if err != nil {
			return 0, fmt.Errorf("memory limit %q: want a size such as 256MiB or 1GiB, or off: %w", flagValue, err)
		}
		if n < 64<<20 {
			return 0, fmt.Errorf("memory limit %q: below 64 MiB kgraph would spend its time collecting garbage", flagValue)
		}
		if n > math.MaxInt64 {
			return math.MaxInt64, nil
		}
		return int64(n), nil
	}
}
