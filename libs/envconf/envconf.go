// Package envconf reads typed settings from the environment for a service's
// main, collecting every problem so that one start-up error names them all.
package envconf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables through a getenv function (os.Getenv in main, a map
// in tests).
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// String returns the variable or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an int.
func (r *Reader) Int(name string, def int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not an integer", name, v))
		return def
	}
	return n
}

// Float returns the variable as a float64.
func (r *Reader) Float(name string, def float64) float64 {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not a number", name, v))
		return def
	}
	return f
}

// Duration returns the variable as a time.Duration ("30s", "5m").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not a duration (like 30s)", name, v))
		return def
	}
	return d
}

// Bool returns the variable as a bool.
func (r *Reader) Bool(name string, def bool) bool {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q is not a boolean", name, v))
		return def
	}
	return b
}

// Err returns every problem met so far.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
