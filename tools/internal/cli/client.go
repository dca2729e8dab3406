package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ProblemError is an RFC 9457 problem the edge answered with.
type ProblemError struct {
	Status int            `json:"status"`
	Title  string         `json:"title"`
	Detail string         `json:"detail"`
	Errors []ProblemField `json:"errors"`
}

// ProblemField is one field error of a problem.
type ProblemField struct {
	Message  string `json:"message"`
	Location string `json:"location"`
	Value    any    `json:"value"`
}

// maxEchoedValue bounds a field's value echoed in an error: a rejected
// document would otherwise fill the terminal.
const maxEchoedValue = 60

func (p *ProblemError) Error() string {
	var b strings.Builder
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	b.WriteString(title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, f := range p.Errors {
		b.WriteString("\n  ")
		if f.Location != "" {
			b.WriteString(f.Location + ": ")
		}
		b.WriteString(f.Message)
		if f.Value != nil {
			if v := fmt.Sprint(f.Value); len(v) <= maxEchoedValue {
				fmt.Fprintf(&b, " (got %q)", v)
			}
		}
	}
	return b.String()
}

// client talks to the REST edge.
type client struct {
	base   string
	apiKey string
	http   *http.Client
}

// reply is an HTTP answer.
type reply struct {
	status      int
	contentType string
	raw         []byte
}

func (c *client) send(ctx context.Context, method, path string, body any) (reply, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return reply{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read reply of %s %s: %w", method, path, err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return reply{status: resp.StatusCode, contentType: ct, raw: raw}, nil
}

// do sends a request and returns the body of a 2xx reply; any other reply
// becomes an error, a *ProblemError when the edge explained it.
func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	r, err := c.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if r.status >= 200 && r.status < 300 {
		return r.raw, nil
	}
	return nil, r.problem()
}

func (r reply) problem() error {
	var p ProblemError
	if strings.HasSuffix(r.contentType, "json") && json.Unmarshal(r.raw, &p) == nil && (p.Title != "" || p.Detail != "") {
		if p.Status == 0 {
			p.Status = r.status
		}
		return &p
	}
	text := strings.TrimSpace(string(r.raw))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return fmt.Errorf("HTTP %d %s: %s", r.status, http.StatusText(r.status), text)
}

func (c *client) getJob(ctx context.Context, id string) (jobView, error) {
	raw, err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil)
	if err != nil {
		return jobView{}, err
	}
	var v jobView
	if err := json.Unmarshal(raw, &v); err != nil {
		return jobView{}, fmt.Errorf("decode job %s: %w", id, err)
	}
	v.raw = raw
	return v, nil
}

// Waiting polls at this interval.
const pollInterval = 250 * time.Millisecond

// unknownJobGrace is how long a job may be unknown: a job just submitted
// appears in the job records within moments.
const unknownJobGrace = 15 * time.Second

// waitJob polls a job until it ends, calling onPoll with every view read.
func (c *client) waitJob(ctx context.Context, id string, onPoll func(jobView)) (jobView, error) {
	start := time.Now()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		v, err := c.getJob(ctx, id)
		switch {
		case err == nil:
			if onPoll != nil {
				onPoll(v)
			}
			if v.terminal() {
				return v, nil
			}
		case retryable(err, time.Since(start)):
		default:
			return jobView{}, fmt.Errorf("follow job %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return jobView{}, fmt.Errorf("follow job %s: %w", id, ctx.Err())
		case <-ticker.C:
		}
	}
}

func retryable(err error, waited time.Duration) bool {
	p, ok := err.(*ProblemError)
	if !ok {
		return false
	}
	return p.Status == http.StatusServiceUnavailable || p.Status == http.StatusNotFound && waited < unknownJobGrace
}

// jobView is GET /api/v1/jobs/{id}.
type jobView struct {
	JobID         string   `json:"job_id"`
	DocID         string   `json:"doc_id"`
	Namespace     string   `json:"namespace"`
	Status        string   `json:"status"`
	Progress      progress `json:"progress"`
	Duplicate     bool     `json:"duplicate"`
	ExistingJobID string   `json:"existing_job_id"`
	Extractor     string   `json:"extractor"`
	Usage         struct {
		Calls            int     `json:"calls"`
		CachedCalls      int     `json:"cached_calls"`
		PromptTokens     int     `json:"prompt_tokens"`
		CompletionTokens int     `json:"completion_tokens"`
		CostUSD          float64 `json:"cost_usd"`
	} `json:"usage"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Error     string    `json:"error"`

	raw []byte
}

type progress struct {
	Stage           string `json:"stage"`
	Percent         int    `json:"percent"`
	ChunksProcessed int    `json:"chunks_processed"`
	ChunksTotal     int    `json:"chunks_total"`
	Entities        int    `json:"entities"`
	Relations       int    `json:"relations"`
}

// Job statuses that end a job.
const (
	statusCompleted = "completed"
	statusDuplicate = "duplicate"
	statusFailed    = "failed"
)

func (v jobView) terminal() bool {
	switch v.Status {
	case statusCompleted, statusDuplicate, statusFailed:
		return true
	}
	return false
}

// submitReply is POST /api/v1/documents.
type submitReply struct {
	JobID         string `json:"job_id"`
	DocID         string `json:"doc_id"`
	Namespace     string `json:"namespace"`
	Status        string `json:"status"`
	Duplicate     bool   `json:"duplicate"`
	ExistingJobID string `json:"existing_job_id"`
}
