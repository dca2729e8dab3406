package ingestapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the edge's request metrics, labelled by route pattern
// (never the raw path, which would let clients create series at will).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kgraph_http_requests_total", Help: "HTTP requests answered by the REST edge.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kgraph_http_request_duration_seconds", Help: "Time to answer an HTTP request (streams: until the stream ends).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kgraph_http_requests_in_flight", Help: "HTTP requests being answered.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			// A second edge on one registry (tests) shares the first one's
			// collectors.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				switch c {
				case m.requests:
					m.requests = are.ExistingCollector.(*prometheus.CounterVec)
				case m.duration:
					m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
				case m.inFlight:
					m.inFlight = are.ExistingCollector.(prometheus.Gauge)
				}
			}
		}
	}
	return m
}

// accessLog writes one JSON log line per request (request id, route,
// status, duration, key and client — never a body, a query string or a
// secret) and records the request metrics.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		// authenticate, further in, says here who the request was for.
		slot := &principalSlot{}
		r = r.WithContext(context.WithValue(r.Context(), principalSlotKey{}, slot))
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		} else if p := s.mux.Find(chi.NewRouteContext(), r.Method, r.URL.Path); p != "" {
			// Refused before routing (401, 429): still counted by route.
			route = p
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())
		if status >= 400 || s.deps.Logger.Enabled(r.Context(), slog.LevelDebug) {
			p := slot.p
			s.deps.Logger.LogAttrs(r.Context(), logLevel(status), "http request", slog.String("method", r.Method),
				slog.String("route", route), slog.Int("status", status), slog.Duration("duration", elapsed),
				slog.String("key_id", p.KeyID), slog.String("client_id", r.Header.Get("X-Client-ID")))
		}
	})
}

// recoverer turns a handler panic into a logged 500 problem instead of a
// dropped connection; a panic is a bug, and tests fail on any 5xx.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				s.deps.Logger.ErrorContext(r.Context(), "handler panic", "panic", rec, "stack", string(debug.Stack()))
				writeProblem(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func logLevel(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// cors answers preflight requests and sets CORS headers for the configured
// origins; without origins it does nothing.
func (s *Server) cors() func(http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	return cors.Handler(cors.Options{
		AllowedOrigins:   s.cfg.CORSOrigins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions},
		AllowedHeaders:   []string{"Accept", "Authorization", "Content-Type", "X-API-Key", "X-Client-ID", "X-Request-Id", "Last-Event-ID"},
		ExposedHeaders:   []string{"X-Request-Id", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Location"},
		AllowCredentials: !slices.Contains(s.cfg.CORSOrigins, "*"),
		MaxAge:           600,
	})
}

// streamPaths are answered for as long as the client listens: no request
// timeout applies to them (the query stream has its own).
func isStream(path string) bool {
	return strings.HasSuffix(path, "/events") || strings.HasSuffix(path, "/query/stream")
}

// requestTimeout bounds a request's context, so a slow backend cannot hold
// a connection and its goroutine forever.
func (s *Server) requestTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isStream(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		timeout := s.cfg.RequestTimeout
		if r.URL.Path == "/api/v1/query" {
			// A query has its own deadline (504); this one must not cut it.
			timeout = max(timeout, s.cfg.QueryTimeout+5*time.Second)
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestIDHandler adds the request id to every log line written with a
// request's context, so a handler's lines and the access log line of one
// request can be found together.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := middleware.GetReqID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// upstreamStatus maps a service's error code to the edge's status: a
// client error passes through; a failure behind the service (500 and
// anything unknown) is the service being unavailable (503), or a bad
// gateway for a code that is no error status at all.
func upstreamStatus(code int, parseErr error) int {
	switch {
	case parseErr != nil || code < 400 || code > 599:
		return http.StatusBadGateway
	case code == http.StatusInternalServerError:
		return http.StatusServiceUnavailable
	}
	return code
}

// problemTypes are the stable problem types, one per status the API
// answers with (docs/api.md lists them).
var problemTypes = map[int]string{
	http.StatusBadRequest:            "bad-request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not-found",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload-too-large",
	http.StatusUnsupportedMediaType:  "unsupported-media-type",
	http.StatusUnprocessableEntity:   "validation-failed",
	http.StatusTooManyRequests:       "rate-limited",
	http.StatusInternalServerError:   "internal-error",
	http.StatusNotImplemented:        "not-implemented",
	http.StatusBadGateway:            "bad-gateway",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusGatewayTimeout:        "timeout",
}

// ProblemTypeBase prefixes every problem type.
const ProblemTypeBase = "https://kgraph.dev/problems/"

// ProblemType is the stable type URI of a status's problems.
func ProblemType(status int) string {
	if t, ok := problemTypes[status]; ok {
		return ProblemTypeBase + t
	}
	return "about:blank"
}

// maxEchoedValue bounds a value a validation error echoes back: a large or
// structured value (a whole document) is not repeated in the answer.
const maxEchoedValue = 256

// problemTransformer gives every problem its stable type and keeps the
// values its details echo small.
func problemTransformer(_ huma.Context, _ string, v any) (any, error) {
	m, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	if m.Type == "" {
		m.Type = ProblemType(m.Status)
	}
	for _, d := range m.Errors {
		if d == nil {
			continue
		}
		switch val := d.Value.(type) {
		case string:
			if len(val) > maxEchoedValue {
				d.Value = val[:maxEchoedValue] + "…"
			}
		case nil, bool, float64, int, int64:
		default:
			d.Value = "(omitted)"
		}
	}
	return m, nil
}
