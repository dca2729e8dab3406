//go:build !race

package sqlitevec_test

const underRace = false
