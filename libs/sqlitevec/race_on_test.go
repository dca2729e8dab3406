//go:build race

package sqlitevec_test

// underRace: the race detector slows SQLite (compiled to Go) about thirty
// times, so the heaviest index test runs on a smaller partition under it.
const underRace = true
