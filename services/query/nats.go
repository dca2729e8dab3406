package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
)

// Run serves the endpoints until ctx ends, then stops the micro service,
// which drains its subscriptions; requests in flight finish first.
func (s *Service) Run(ctx context.Context) error {
	slots := make(chan struct{}, s.cfg.Concurrency)
	// stopped closes once Run holds every slot for good. The draining
	// subscriptions may still deliver requests after that; they are refused
	// with a retryable 503 instead of blocking their goroutine forever and
	// leaving the caller without a reply.
	stopped := make(chan struct{})
	handlerCtx := context.WithoutCancel(ctx)
	stopping := &Error{Status: http.StatusServiceUnavailable, Msg: "query service is stopping, retry"}
	dispatch := func(serve func(context.Context, micro.Request), refuse func(micro.Request, *Error)) micro.HandlerFunc {
		return func(r micro.Request) {
			select {
			case slots <- struct{}{}:
			case <-stopped:
				refuse(r, stopping)
				return
			}
			go func() {
				defer func() { <-slots }()
				rctx, cancel := context.WithTimeout(handlerCtx, s.cfg.Timeout)
				defer cancel()
				serve(rctx, r)
			}()
		}
	}
	svc, err := micro.AddService(s.nc, micro.Config{
		Name: "kgraph-query", Version: "0.2.0", Description: "kgraph local/global/naive queries",
		Endpoint: &micro.EndpointConfig{Subject: events.QuerySubject, Handler: dispatch(s.serve, s.replyError)},
	})
	if err != nil {
		return fmt.Errorf("start query micro service: %w", err)
	}
	err = svc.AddEndpoint("stream", dispatch(s.serveStream, s.refuseStream), micro.WithEndpointSubject(events.QueryStreamSubject))
	if err != nil {
		if stopErr := svc.Stop(); stopErr != nil {
			s.log.Warn("stop query service", "err", stopErr)
		}
		return fmt.Errorf("add query stream endpoint: %w", err)
	}
	if err := svc.AddEndpoint("health", micro.HandlerFunc(s.serveHealth), micro.WithEndpointSubject(events.QueryHealthSubject)); err != nil {
		if stopErr := svc.Stop(); stopErr != nil {
			s.log.Warn("stop query service", "err", stopErr)
		}
		return fmt.Errorf("add health endpoint: %w", err)
	}
	for _, ep := range s.exploreEndpoints() {
		if err := svc.AddEndpoint(ep.name, dispatch(ep.serve, s.replyError), micro.WithEndpointSubject(ep.subject)); err != nil {
			if stopErr := svc.Stop(); stopErr != nil {
				s.log.Warn("stop query service", "err", stopErr)
			}
			return fmt.Errorf("add %s endpoint: %w", ep.name, err)
		}
	}
	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		s.log.Warn("stop query service", "err", err)
	}
	for range s.cfg.Concurrency { // wait for the requests in flight
		slots <- struct{}{}
	}
	close(stopped)
	return nil
}

func (s *Service) serve(ctx context.Context, r micro.Request) {
	var req events.QueryRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		s.replyError(r, &Error{Status: http.StatusBadRequest, Msg: "query request is not valid JSON"})
		return
	}
	res, err := s.Answer(ctx, req)
	if err != nil {
		s.replyError(r, s.publicError(err, req.Mode))
		return
	}
	data, err := json.Marshal(res)
	if err != nil {
		s.log.Error("encode query answer", "err", err)
		s.replyError(r, &Error{Status: http.StatusInternalServerError, Msg: "query answer could not be encoded"})
		return
	}
	if qe := s.tooLarge(data); qe != nil {
		s.replyError(r, qe)
		return
	}
	s.reply(r, &nats.Msg{Data: data})
}

// tooLarge refuses a message NATS would not carry: only a context asked for
// with huge budgets gets there.
func (s *Service) tooLarge(data []byte) *Error {
	if limit := s.nc.MaxPayload(); int64(len(data)) > limit {
		return &Error{Status: http.StatusInternalServerError, Msg: fmt.Sprintf(
			"the answer takes %d bytes, more than the %d bytes a NATS message may carry: lower the token budgets", len(data), limit)}
	}
	return nil
}

// reply publishes m to r's reply subject. It does not use r's Respond or
// Error: those record the outcome in fields that micro's dispatcher reads as
// soon as the handler returns, a data race when the answer comes from
// another goroutine later.
func (s *Service) reply(r micro.Request, m *nats.Msg) {
	if m.Subject = r.Reply(); m.Subject == "" {
		return // published without a reply subject: nobody waits for an answer
	}
	if err := s.nc.PublishMsg(m); err != nil {
		s.log.Warn("send query reply", "err", err)
	}
}

// replyError answers with a NATS service error whose code is the HTTP status.
func (s *Service) replyError(r micro.Request, qe *Error) {
	s.reply(r, &nats.Msg{Header: nats.Header{
		micro.ErrorCodeHeader: []string{strconv.Itoa(qe.Status)},
		micro.ErrorHeader:     []string{qe.Msg},
	}})
}

// serveStream answers on the stream endpoint: every StreamEvent is one
// message to the request's reply subject (see events/query.go).
func (s *Service) serveStream(ctx context.Context, r micro.Request) {
	if r.Reply() == "" {
		return // nobody to stream to
	}
	st := &streamTo{s: s, subject: r.Reply()}
	var req events.QueryRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		st.fail(&Error{Status: http.StatusBadRequest, Msg: "query request is not valid JSON"})
		return
	}
	err := s.AnswerStream(ctx, req, st.emit)
	var ee *emitError
	if errors.As(err, &ee) {
		s.log.Warn("stream query answer", "err", err, "mode", req.Mode)
	}
}

func (s *Service) refuseStream(r micro.Request, qe *Error) {
	if r.Reply() != "" {
		(&streamTo{s: s, subject: r.Reply()}).fail(qe)
	}
}

// streamTo publishes the events of one streamed answer.
type streamTo struct {
	s       *Service
	subject string
	sent    int
}

func (st *streamTo) fail(qe *Error) {
	if err := st.emit(StreamEvent{Type: events.StreamError, Error: &events.QueryError{Status: qe.Status, Message: qe.Msg}}); err != nil {
		st.s.log.Warn("send query stream error", "err", err)
	}
}

func (st *streamTo) emit(e StreamEvent) error {
	m := &nats.Msg{Subject: st.subject, Header: nats.Header{events.StreamEventHeader: []string{e.Type}}}
	// A refusal before any answer carries the service error headers too,
	// so a client that sent a plain request sees an error reply.
	if e.Type == events.StreamError && st.sent == 0 {
		m.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(e.Error.Status))
		m.Header.Set(micro.ErrorHeader, e.Error.Message)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	if qe := st.s.tooLarge(data); qe != nil {
		st.fail(qe)
		return fmt.Errorf("send %s event: %w", e.Type, qe)
	}
	m.Data = data
	if err := st.s.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("send %s event: %w", e.Type, err)
	}
	st.sent++
	return nil
}
