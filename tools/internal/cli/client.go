package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
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

// Error is "<title>: <detail> (HTTP <status>)", then a line per field error.
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
	if p.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", p.Status)
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

// statusOf is the HTTP status of a problem, 0 for any other error.
func statusOf(err error) int {
	var p *ProblemError
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
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

// maxErrorBody bounds the body of a refused request that is read.
const maxErrorBody = 1 << 20

func (c *client) newRequest(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	return req, nil
}

func (c *client) roundTrip(req *http.Request) (reply, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read reply of %s %s: %w", req.Method, req.URL.Path, err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return reply{status: resp.StatusCode, contentType: ct, raw: raw}, nil
}

func (c *client) send(ctx context.Context, method, path string, body any) (reply, error) {
	var rd io.Reader
	contentType := ""
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return reply{}, fmt.Errorf("encode request: %w", err)
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := c.newRequest(ctx, method, path, contentType, rd)
	if err != nil {
		return reply{}, err
	}
	return c.roundTrip(req)
}

// do sends a request and returns the body of a 2xx reply; any other reply
// becomes an error, a *ProblemError when the edge explained it.
func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	r, err := c.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	return r.body()
}

func (r reply) body() ([]byte, error) {
	if r.status >= 200 && r.status < 300 {
		return r.raw, nil
	}
	return nil, r.problem()
}

// get reads a JSON reply into out and returns it raw too.
func (c *client) get(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	raw, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode reply of GET %s: %w", path, err)
	}
	return raw, nil
}

// post sends body (nil for none) and reads the JSON reply into out.
func (c *client) post(ctx context.Context, path string, body, out any) ([]byte, error) {
	raw, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode reply of POST %s: %w", path, err)
	}
	return raw, nil
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

// upload submits a file as multipart/form-data (the edge reduces HTML to
// its text); fields are the form's other fields.
func (c *client) upload(ctx context.Context, filename, contentType string, content []byte, fields map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": filename}))
	h.Set("Content-Type", contentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, fmt.Errorf("build upload of %s: %w", filename, err)
	}
	if _, err := part.Write(content); err != nil {
		return nil, fmt.Errorf("build upload of %s: %w", filename, err)
	}
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			return nil, fmt.Errorf("build upload of %s: %w", filename, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("build upload of %s: %w", filename, err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/documents/upload", mw.FormDataContentType(), &buf)
	if err != nil {
		return nil, err
	}
	r, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	return r.body()
}

// maxEventBytes bounds one server-sent event (a context can be large).
const maxEventBytes = 64 << 20

// stream sends a request answered with server-sent events and calls onEvent
// with each event's name and data until the stream ends, onEvent fails or
// ctx ends. A refusal before the stream opens is a *ProblemError.
func (c *client) stream(ctx context.Context, method, path string, body any, onEvent func(event string, data []byte) error) error {
	var rd io.Reader
	contentType := ""
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := c.newRequest(ctx, method, path, contentType, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream, application/problem+json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return fmt.Errorf("read reply of %s %s: %w", method, path, err)
		}
		r := reply{status: resp.StatusCode, contentType: ct, raw: raw}
		if r.status == http.StatusOK {
			return fmt.Errorf("%s %s: want an event stream, got %q", method, path, ct)
		}
		return r.problem()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "":
			if event != "" || data.Len() > 0 {
				if event == "" {
					event = "message"
				}
				if err := onEvent(event, bytes.TrimSuffix(data.Bytes(), []byte("\n"))); err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// A comment: keep-alive.
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream of %s %s: %w", method, path, err)
	}
	return nil
}

func jobPath(id string) string { return "/api/v1/jobs/" + url.PathEscape(id) }

func (c *client) getJob(ctx context.Context, id string) (jobView, error) {
	var v jobView
	raw, err := c.get(ctx, jobPath(id), nil, &v)
	if err != nil {
		return jobView{}, err
	}
	v.raw = raw
	return v, nil
}

// jobAction is the reply of approve and cancel.
type jobAction struct {
	Job     jobView `json:"job"`
	Message string  `json:"message"`
}

// jobAction approves or cancels a job (action "approve" or "cancel").
func (c *client) jobAction(ctx context.Context, id, action string, body any) (jobAction, []byte, error) {
	var out jobAction
	raw, err := c.post(ctx, jobPath(id)+"/"+action, body, &out)
	if err != nil {
		return jobAction{}, nil, err
	}
	return out, raw, nil
}

// Waiting polls at this interval.
const pollInterval = 250 * time.Millisecond

// unknownJobGrace is how long a job may be unknown: a job just submitted
// appears in the job records within moments.
const unknownJobGrace = 15 * time.Second

// follow polls a job, calling onView with every view read, until onView
// says stop or returns an error. The last view read is returned.
func (c *client) follow(ctx context.Context, id string, onView func(jobView) (stop bool, err error)) (jobView, error) {
	start := time.Now()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		v, err := c.getJob(ctx, id)
		switch {
		case err == nil:
			stop, err := onView(v)
			if err != nil || stop {
				return v, err
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

// waitJob polls a job until it ends, calling onPoll with every view read.
func (c *client) waitJob(ctx context.Context, id string, onPoll func(jobView)) (jobView, error) {
	return c.follow(ctx, id, func(v jobView) (bool, error) {
		if onPoll != nil {
			onPoll(v)
		}
		return v.terminal(), nil
	})
}

func retryable(err error, waited time.Duration) bool {
	switch statusOf(err) {
	case http.StatusServiceUnavailable:
		return true
	case http.StatusNotFound:
		return waited < unknownJobGrace
	}
	return false
}

// jobView is GET /api/v1/jobs/{id}.
type jobView struct {
	JobID         string            `json:"job_id"`
	Kind          string            `json:"kind"`
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	ClientID      string            `json:"client_id"`
	Status        string            `json:"status"`
	Progress      progress          `json:"progress"`
	Duplicate     bool              `json:"duplicate"`
	ExistingJobID string            `json:"existing_job_id"`
	Extractor     string            `json:"extractor"`
	Usage         events.Usage      `json:"usage"`
	Estimate      *events.Estimate  `json:"estimate"`
	Metadata      map[string]string `json:"metadata"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	FinishedAt    *time.Time        `json:"finished_at"`
	AwaitingSince *time.Time        `json:"awaiting_since"`
	ApprovedAt    *time.Time        `json:"approved_at"`
	ApprovedBy    string            `json:"approved_by"`
	CancelledBy   string            `json:"cancelled_by"`
	Error         string            `json:"error"`

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

// Job statuses kg acts on, and the deletion kind.
const (
	statusPending          = "pending"
	statusAwaitingApproval = "awaiting_approval"
	statusCompleted        = "completed"
	statusDuplicate        = "duplicate"
	statusFailed           = "failed"
	statusCancelled        = "cancelled"
	statusExpired          = "expired"
	kindDelete             = "delete"
)

// terminal: the job ended; nothing changes any more.
func (v jobView) terminal() bool {
	switch v.Status {
	case statusCompleted, statusDuplicate, statusFailed, statusCancelled, statusExpired:
		return true
	}
	return false
}

// unsuccessful says why a job that ended did not do its work, or "".
func (v jobView) unsuccessful() error {
	switch v.Status {
	case statusFailed:
		return fmt.Errorf("job %s failed: %s", v.JobID, v.Error)
	case statusCancelled:
		return fmt.Errorf("job %s was cancelled", v.JobID)
	case statusExpired:
		return fmt.Errorf("job %s expired waiting for approval", v.JobID)
	case statusAwaitingApproval:
		return fmt.Errorf("job %s awaits approval: kg jobs approve %s", v.JobID, v.JobID)
	}
	return nil
}

// submitReply is POST /api/v1/documents.
type submitReply struct {
	JobID         string           `json:"job_id"`
	DocID         string           `json:"doc_id"`
	Namespace     string           `json:"namespace"`
	Status        string           `json:"status"`
	Duplicate     bool             `json:"duplicate"`
	ExistingJobID string           `json:"existing_job_id"`
	Hint          string           `json:"hint"`
	Estimate      *events.Estimate `json:"estimate"`
}

// view is what the reply says of the job.
func (s submitReply) view() jobView {
	return jobView{JobID: s.JobID, DocID: s.DocID, Namespace: s.Namespace, Status: s.Status,
		Duplicate: s.Duplicate, ExistingJobID: s.ExistingJobID, Estimate: s.Estimate}
}

// jsonUnmarshal decodes a reply; what names it in the error.
func jsonUnmarshal(raw []byte, out any, what string) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}
