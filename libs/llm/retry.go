package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

const (
	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
	// maxRetryAfter bounds the wait a server may ask for. Longer ones
	// (quota exhausted until tomorrow) end the call instead of parking it.
	maxRetryAfter = 5 * time.Minute
	// maxErrorBody bounds how much of a non-JSON error body goes into
	// APIError.Message.
	maxErrorBody = 512
)

// policy is the resolved (defaulted) call policy of one provider.
type policy struct {
	maxConcurrency int
	rpm, tpm       int
	maxRetries     int
	timeout        time.Duration
}

// runner runs a provider's calls under its policy: the concurrency cap, the
// request and token budgets, per-attempt timeouts and retries. It is the
// only retry policy: openai-go's is disabled.
type runner struct {
	policy   policy
	sem      chan struct{}
	requests *bucket
	tokens   *bucket
	clock    Clock
	stats    *recorder
	metrics  *callMetrics
}

func newRunner(p policy, clock Clock, stats *recorder, metrics *callMetrics) *runner {
	return &runner{
		policy:   p,
		sem:      make(chan struct{}, p.maxConcurrency),
		requests: newBucket(p.rpm, clock.Now),
		tokens:   newBucket(p.tpm, clock.Now),
		clock:    clock,
		stats:    stats,
		metrics:  metrics,
	}
}

// attemptFunc sends one request. It must pass opts to the openai-go call so
// the runner sees the HTTP response, and returns the tokens the call used.
type attemptFunc func(ctx context.Context, opts ...option.RequestOption) (tokensUsed int, err error)

// finalError marks an attempt failure that must not be retried whatever
// its cause, e.g. a stream that already delivered deltas to the caller.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// run calls attempt until it succeeds, fails for good, or retries run out.
// estimate is the number of tokens reserved from the token budget up front;
// it is settled against what attempt reports.
func (r *runner) run(ctx context.Context, estimate int, attempt attemptFunc) error {
	for n := 1; ; n++ {
		if err := r.admit(ctx, estimate); err != nil {
			return err
		}
		var resp *http.Response
		used, err := r.send(ctx, attempt, option.WithResponseInto(&resp))
		if err == nil {
			r.tokens.adjust(float64(estimate - used))
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			r.tokens.adjust(float64(estimate))
			return ctxErr
		}
		var final *finalError
		retryVeto := errors.As(err, &final)
		if retryVeto {
			// The request reached the model: its tokens stay spent.
			err = final.err
		} else {
			// A failed request is not charged by providers.
			r.tokens.adjust(float64(estimate))
		}

		failure := classify(err, resp, n, r.clock.Now(), retryVeto)
		if failure.apiErr.Status == http.StatusTooManyRequests {
			r.stats.update(func(s *Stats) { s.RateLimited++ })
		}
		if errors.Is(failure.apiErr.Err, ErrTimeout) {
			r.stats.update(func(s *Stats) { s.Timeouts++ })
		}
		if !failure.apiErr.Retryable || n > r.policy.maxRetries {
			return failure.apiErr
		}
		delay := backoff(n)
		if failure.hasRetryAfter {
			if failure.retryAfter > maxRetryAfter {
				failure.apiErr.Message += fmt.Sprintf(" (server asked to retry after %s)", failure.retryAfter)
				return failure.apiErr
			}
			delay = failure.retryAfter
		}
		r.stats.update(func(s *Stats) { s.Retries++ })
		r.metrics.retry(failure.apiErr)
		if err := r.clock.Sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// admit waits for the request and token budgets.
func (r *runner) admit(ctx context.Context, estimate int) error {
	wait := max(r.requests.reserve(1), r.tokens.reserve(float64(estimate)))
	if wait <= 0 {
		return nil
	}
	if err := r.clock.Sleep(ctx, wait); err != nil {
		r.requests.adjust(1)
		r.tokens.adjust(float64(estimate))
		return err
	}
	return nil
}

// send runs one attempt inside a concurrency slot and under the timeout.
func (r *runner) send(ctx context.Context, attempt attemptFunc, opts ...option.RequestOption) (int, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-r.sem }()
	r.stats.started()
	defer r.stats.finished()

	attemptCtx, cancel := context.WithTimeout(ctx, r.policy.timeout)
	defer cancel()
	used, err := attempt(attemptCtx, opts...)
	if err != nil && ctx.Err() == nil && errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
		// The SDK's error is just the attempt context's deadline; keeping
		// it would make the timeout look like the caller's own deadline.
		timeout := fmt.Errorf("%w after %s", ErrTimeout, r.policy.timeout)
		if final, ok := errors.AsType[*finalError](err); ok {
			return used, &finalError{fmt.Errorf("%s: %w", final.err.Error(), timeout)}
		}
		return used, timeout
	}
	return used, err
}

// failure is a classified attempt error.
type failure struct {
	apiErr        *APIError
	retryAfter    time.Duration
	hasRetryAfter bool
}

// classify turns an attempt error into an APIError, deciding whether it is
// worth retrying: 408, 409, 429 and 5xx responses, timeouts and connection
// errors are, unless retryVeto says otherwise; other client errors and
// malformed replies are not.
func classify(err error, resp *http.Response, attempts int, now time.Time, retryVeto bool) failure {
	var oaErr *openai.Error
	status := 0
	if errors.As(err, &oaErr) {
		status = oaErr.StatusCode
		if resp == nil {
			resp = oaErr.Response
		}
	} else if resp != nil && resp.StatusCode >= 400 {
		// openai-go returns a JSON decoding error instead of *openai.Error
		// when an error body is not the OpenAI JSON shape (proxies, HTML).
		status = resp.StatusCode
	}

	if status != 0 {
		f := failure{apiErr: &APIError{
			Status:    status,
			Message:   errorMessage(oaErr, resp),
			Retryable: !retryVeto && retryableStatus(status),
			Attempts:  attempts,
		}}
		if resp != nil {
			f.retryAfter, f.hasRetryAfter = retryAfter(resp.Header, now)
		}
		return f
	}
	return failure{apiErr: &APIError{
		Message:   err.Error(),
		Retryable: !retryVeto && retryableTransport(err),
		Attempts:  attempts,
		Err:       err,
	}}
}

func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// retryableTransport reports whether err is a timeout or a broken
// connection rather than, say, a reply that does not parse.
func retryableTransport(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

func errorMessage(oaErr *openai.Error, resp *http.Response) string {
	if oaErr != nil && oaErr.Message != "" {
		return oaErr.Message
	}
	if resp == nil || resp.Body == nil {
		return ""
	}
	// openai-go leaves the error body readable on the response.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return strings.TrimSpace(string(bytes.ToValidUTF8(body, []byte("?"))))
}

// retryAfter reads the wait a server asks for: retry-after-ms (OpenAI's
// millisecond header) or Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return seconds(ms / 1000), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return seconds(s), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// seconds converts s to a Duration, saturating far above maxRetryAfter so
// that absurd values cannot overflow.
func seconds(s float64) time.Duration {
	if s > 2*maxRetryAfter.Seconds() {
		return 2 * maxRetryAfter
	}
	return time.Duration(s * float64(time.Second))
}

// backoff is the wait before retry n (1-based) when the server gave no
// Retry-After: exponential from backoffBase, capped at backoffMax, with the
// upper half jittered so that callers rejected together do not return
// together.
func backoff(n int) time.Duration {
	d := backoffMax
	if n <= 16 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}
