package ingestapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/jobstate"
)

// QueryStreamer is what streaming a query needs of a NATS connection; a
// *nats.Conn is one.
type QueryStreamer interface {
	NewInbox() string
	SubscribeSync(subject string) (*nats.Subscription, error)
	PublishMsg(m *nats.Msg) error
	FlushWithContext(ctx context.Context) error
}

// Server-sent event names.
const (
	EventReferences = events.StreamReferences
	EventDelta      = events.StreamDelta
	EventDone       = events.StreamDone
	EventError      = events.StreamError
	EventJob        = "job"
)

// StreamReferences opens a streamed answer: the references (the same
// fields as a QueryReply's), the mode, and the context when only_context
// was asked.
type StreamReferences struct {
	Mode    string `json:"mode"`
	Context string `json:"context,omitempty"`
	events.References
}

// StreamDelta is the answer's next piece; the deltas concatenate to the
// whole answer.
type StreamDelta struct {
	Text string `json:"text"`
}

// StreamDone ends a streamed answer that succeeded.
type StreamDone struct {
	Usage     *events.QueryUsage `json:"usage,omitempty"`
	LatencyMS float64            `json:"latency_ms"`
	Cached    bool               `json:"cached"`
	Model     string             `json:"model,omitempty"`
	Answerer  string             `json:"answerer"`
}

// StreamError ends a streamed answer that failed, possibly after
// references and deltas; Status is the HTTP status the plain query
// endpoint would have answered with.
type StreamError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// QueryMode describes one query mode.
type QueryMode struct {
	Mode        string `json:"mode" enum:"local,global,naive"`
	Description string `json:"description"`
}

// keepAliveEvery is how long a job event stream stays silent before it
// sends a comment, so proxies do not close an idle connection.
const keepAliveEvery = 15 * time.Second

func modeDescription(mode string) string {
	switch mode {
	case events.ModeLocal:
		return "Entities near the question, their relations, source chunks and community reports: questions about specific things."
	case events.ModeGlobal:
		return "Map-reduce over community reports: questions about the whole corpus, its themes and trends."
	case events.ModeNaive:
		return "Chunks nearest the question by vector similarity, without the graph."
	}
	return ""
}

func (s *Server) streamRoutes() {
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "query-modes", Method: http.MethodGet, Path: "/api/v1/query/modes", Tags: []string{"query"},
		Summary: "List the query modes",
	}, RoleRead), func(ctx context.Context, _ *struct{}) (*struct{ Body []QueryMode }, error) {
		modes := events.QueryModes()
		out := make([]QueryMode, 0, len(modes))
		for _, m := range modes {
			out = append(out, QueryMode{Mode: m, Description: modeDescription(m)})
		}
		return &struct{ Body []QueryMode }{out}, nil
	})
	registerStream(s.api, withRole(huma.Operation{
		OperationID: "query-stream", Method: http.MethodPost, Path: "/api/v1/query/stream", Tags: []string{"query"},
		Summary:      "Ask a question and stream the answer",
		Description:  "Server-sent events: one `references`, `delta`s whose texts concatenate to the answer, then `done` or `error`. Errors before the first event are problem+json responses.",
		MaxBodyBytes: humaBodyLimit(64 << 10), Errors: []int{http.StatusServiceUnavailable},
	}, RoleRead), map[string]any{EventReferences: StreamReferences{}, EventDelta: StreamDelta{}, EventDone: StreamDone{}, EventError: StreamError{}},
		func(ctx context.Context, in *struct{ Body QueryBody }) (streamFunc, error) {
			return s.openQueryStream(ctx, in.Body)
		})
	registerStream(s.api, withRole(huma.Operation{
		OperationID: "job-events", Method: http.MethodGet, Path: "/api/v1/jobs/{id}/events", Tags: []string{"jobs"},
		Summary:     "Follow a job's status",
		Description: "Server-sent events: a `job` event with the job's status now and at every change; the stream ends after a terminal status (completed, duplicate, failed, cancelled, expired).",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, RoleRead), map[string]any{EventJob: JobView{}}, func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"128"`
	}) (streamFunc, error) {
		return s.openJobStream(ctx, in.ID)
	})
}

// send writes one server-sent event; it fails when the client is gone.
type send func(event string, data any) error

// streamFunc writes a stream of events until it is done or ctx (the
// request's) ends.
type streamFunc func(ctx context.Context, send send)

// registerStream registers a server-sent event operation documented as
// huma's sse.Register documents one. Unlike sse.Register, open runs before
// the response starts, so it can refuse the request with a problem (404,
// 503) instead of a 200 stream; what it returns then writes the events.
func registerStream[I any](api huma.API, op huma.Operation, eventTypes map[string]any, open func(context.Context, *I) (streamFunc, error)) {
	schemas := make([]*huma.Schema, 0, len(eventTypes))
	for _, name := range slices.Sorted(maps.Keys(eventTypes)) {
		schemas = append(schemas, &huma.Schema{
			Title: "Event " + name, Type: huma.TypeObject,
			Properties: map[string]*huma.Schema{
				"event": {Type: huma.TypeString, Description: "The event name.", Extensions: map[string]any{"const": name}},
				"data":  api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(eventTypes[name]), true, name),
			},
			Required: []string{"event", "data"},
		})
	}
	op.Responses = map[string]*huma.Response{"200": {
		Description: "Server-sent events",
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{
			Title: "Server Sent Events", Type: huma.TypeArray,
			Description: "Each oneOf object is one possible server-sent event, serialized as UTF-8 text per the SSE specification.",
			Items:       &huma.Schema{Extensions: map[string]any{"oneOf": schemas}},
		}}},
	}}
	huma.Register(api, op, func(ctx context.Context, in *I) (*huma.StreamResponse, error) {
		run, err := open(ctx, in)
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "text/event-stream")
			hctx.SetHeader("Cache-Control", "no-cache")
			hctx.SetHeader("X-Accel-Buffering", "no") // nginx would hold the events back
			hctx.SetStatus(http.StatusOK)
			_, w := humachi.Unwrap(hctx)
			rc := http.NewResponseController(w)
			_ = rc.Flush() // the client sees the stream open before the first event
			defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
			run(hctx.Context(), func(event string, data any) error { return writeEvent(w, rc, event, data) })
		}}, nil
	})
}

// eventWriteTimeout bounds writing one event, so a client that stopped
// reading does not hold the stream (and its subscription) forever.
const eventWriteTimeout = 10 * time.Second

// writeEvent writes an event, or a comment when event is empty, and
// flushes it.
func writeEvent(w io.Writer, rc *http.ResponseController, event string, data any) error {
	var buf bytes.Buffer
	if event == "" {
		fmt.Fprintf(&buf, ": %v\n\n", data)
	} else {
		// JSON has no raw newlines, so the data is one data line.
		raw, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", event, err)
		}
		fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", event, raw)
	}
	_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) // not every writer has deadlines
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write %s event: %w", event, err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush %s event: %w", event, err)
	}
	return nil
}

// openQueryStream sends the question to the query service's stream
// endpoint. It answers with a problem when the question is invalid or no
// query service listens; the stream it returns relays the service's
// events.
func (s *Server) openQueryStream(ctx context.Context, in QueryBody) (streamFunc, error) {
	start := time.Now()
	if strings.TrimSpace(in.Question) == "" {
		return nil, huma.Error422UnprocessableEntity("question is empty")
	}
	in.Namespace = nsOrDefault(in.Namespace)
	if err := s.allowNamespace(ctx, in.Namespace); err != nil {
		return nil, err
	}
	if s.deps.QueryStream == nil {
		return nil, huma.Error503ServiceUnavailable("query streaming is not configured")
	}
	data, err := encodeQuery(in)
	if err != nil {
		return nil, err
	}
	nc := s.deps.QueryStream
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "subscribe to query stream inbox", "err", err)
		return nil, huma.Error503ServiceUnavailable("query service unreachable")
	}
	deadline := start.Add(s.cfg.QueryTimeout)
	first, err := s.sendQuery(ctx, nc, sub, &nats.Msg{Subject: events.QueryStreamSubject, Reply: inbox, Data: data}, deadline)
	if err != nil {
		if uerr := sub.Unsubscribe(); uerr != nil {
			s.deps.Logger.WarnContext(ctx, "unsubscribe query stream inbox", "err", uerr)
		}
		return nil, err
	}
	return func(ctx context.Context, send send) {
		defer func() {
			if err := sub.Unsubscribe(); err != nil {
				s.deps.Logger.WarnContext(ctx, "unsubscribe query stream inbox", "err", err)
			}
		}()
		s.relayQuery(ctx, sub, first, start, deadline, send)
	}, nil
}

// sendQuery publishes the request and flushes: the server answers a
// request nobody listens to with a no-responders status before the flush's
// pong, so the status is already queued when the flush returns. It returns
// the first message if one is queued too.
func (s *Server) sendQuery(ctx context.Context, nc QueryStreamer, sub *nats.Subscription, m *nats.Msg, deadline time.Time) (*nats.Msg, error) {
	if err := nc.PublishMsg(m); err != nil {
		s.deps.Logger.ErrorContext(ctx, "publish streamed query", "err", err)
		return nil, huma.Error503ServiceUnavailable("query service unreachable")
	}
	fctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, huma.Error504GatewayTimeout("query timed out")
		}
		s.deps.Logger.ErrorContext(ctx, "flush streamed query", "err", err)
		return nil, huma.Error503ServiceUnavailable("query service unreachable")
	}
	if sub.IsValid() {
		if n, _, err := sub.Pending(); err == nil && n == 0 {
			return nil, nil
		}
	}
	first, err := sub.NextMsg(time.Millisecond)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, huma.Error503ServiceUnavailable("query service unavailable")
	case errors.Is(err, nats.ErrTimeout):
		return nil, nil
	case err != nil:
		s.deps.Logger.ErrorContext(ctx, "read query stream", "err", err)
		return nil, huma.Error503ServiceUnavailable("query service unreachable")
	}
	return first, nil
}

// relayQuery turns the query service's messages into events until done,
// error, the deadline or the client leaving.
func (s *Server) relayQuery(ctx context.Context, sub *nats.Subscription, m *nats.Msg, start, deadline time.Time, send send) {
	qctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	fail := func(status int, msg string) { _ = send(EventError, StreamError{Status: status, Message: msg}) }
	var opened StreamDone
	for {
		if m == nil {
			var err error
			m, err = sub.NextMsgWithContext(qctx)
			switch {
			case ctx.Err() != nil:
				return // the client left
			case errors.Is(err, context.DeadlineExceeded):
				fail(http.StatusGatewayTimeout, "query timed out")
				return
			case errors.Is(err, nats.ErrNoResponders):
				fail(http.StatusServiceUnavailable, "query service unavailable")
				return
			case err != nil:
				s.deps.Logger.ErrorContext(ctx, "read query stream", "err", err)
				fail(http.StatusBadGateway, "query stream broken")
				return
			}
		}
		var ev events.QueryStreamEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			fail(http.StatusBadGateway, "query service sent an unreadable event")
			return
		}
		kind := m.Header.Get(events.StreamEventHeader)
		if kind == "" {
			kind = ev.Type
		}
		m = nil
		var err error
		switch kind {
		case events.StreamReferences:
			opened = StreamDone{Cached: ev.Cached, Model: ev.Model, Answerer: ev.Answerer}
			s.observeQuery(ev.Mode, ev.Cached)
			refs := StreamReferences{Mode: ev.Mode, Context: ev.Context}
			if ev.References != nil {
				refs.References = *ev.References
			}
			err = send(EventReferences, refs)
		case events.StreamDelta:
			err = send(EventDelta, StreamDelta{Text: ev.Delta})
		case events.StreamDone:
			done := opened
			done.Usage, done.LatencyMS = ev.Usage, float64(time.Since(start).Microseconds())/1000
			_ = send(EventDone, done)
			return
		case events.StreamError:
			status, msg := http.StatusBadGateway, "query failed"
			if ev.Error != nil {
				msg = ev.Error.Message
				if ev.Error.Status >= 400 && ev.Error.Status <= 599 {
					status = ev.Error.Status
				}
			}
			fail(status, msg)
			return
		default:
			// An event type of a newer query service: skipped, as an SSE
			// client skips unknown events.
		}
		if err != nil {
			return // the client is gone
		}
	}
}

// openJobStream answers with a problem when the job is unknown; the
// stream it returns sends the job's view now and at every change.
func (s *Server) openJobStream(ctx context.Context, id string) (streamFunc, error) {
	v, err := s.job(ctx, id)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, send send) { s.followJob(ctx, id, v, send) }, nil
}

// followJob polls the job record (a KV watch would be quicker, but polling
// works with every store) and sends the view whenever it changed.
func (s *Server) followJob(ctx context.Context, id string, v JobView, send send) {
	tick := time.NewTicker(s.cfg.JobPollInterval)
	defer tick.Stop()
	var last []byte
	lastSent := time.Now()
	for {
		raw, err := json.Marshal(v)
		if err != nil {
			s.deps.Logger.ErrorContext(ctx, "encode job view", "err", err, "job_id", id)
			return
		}
		if !bytes.Equal(raw, last) {
			if send(EventJob, json.RawMessage(raw)) != nil {
				return
			}
			last, lastSent = raw, time.Now()
		} else if time.Since(lastSent) >= keepAliveEvery {
			if send("", "keep-alive") != nil {
				return
			}
			lastSent = time.Now()
		}
		if jobstate.Status(v.Status).Terminal() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		next, err := s.job(ctx, id)
		var se huma.StatusError
		switch {
		case err == nil:
			v = next
		case errors.As(err, &se) && se.GetStatus() == http.StatusNotFound:
			return // the record expired or was deleted: nothing more will come
		case ctx.Err() != nil:
			return
		default:
			// A store hiccup: the next poll may succeed.
			s.deps.Logger.WarnContext(ctx, "poll job", "err", err, "job_id", id)
		}
	}
}
