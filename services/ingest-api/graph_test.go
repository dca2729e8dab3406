package ingestapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// Secrets of the graph tests' API keys.
const (
	graphReaderSecret = "reader-secret"      // read, namespace books
	graphAdminSecret  = "admin-secret"       // admin, every namespace
	graphBooksAdmin   = "books-admin-secret" // admin, namespace books
)

// graphQueryService stands in for the query service: it records requests
// by subject and answers with reply.
type graphQueryService struct {
	mu    sync.Mutex
	reqs  []*nats.Msg
	reply func(ctx context.Context, m *nats.Msg) (*nats.Msg, error)
}

func (q *graphQueryService) RequestMsgWithContext(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	q.mu.Lock()
	q.reqs = append(q.reqs, m)
	reply := q.reply
	q.mu.Unlock()
	return reply(ctx, m)
}

func (q *graphQueryService) requests() []*nats.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*nats.Msg(nil), q.reqs...)
}

func (q *graphQueryService) answer(reply func(ctx context.Context, m *nats.Msg) (*nats.Msg, error)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reply = reply
}

// answerJSON answers every request with v.
func answerJSON(t *testing.T, v any) func(context.Context, *nats.Msg) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return func(context.Context, *nats.Msg) (*nats.Msg, error) { return &nats.Msg{Data: data}, nil }
}

// answerError answers every request with a micro service error.
func answerError(code, desc string) func(context.Context, *nats.Msg) (*nats.Msg, error) {
	return func(context.Context, *nats.Msg) (*nats.Msg, error) {
		return &nats.Msg{Header: nats.Header{micro.ErrorCodeHeader: []string{code}, micro.ErrorHeader: []string{desc}}}, nil
	}
}

type graphEdge struct {
	srv   *ingestapi.Server
	query *graphQueryService
}

func newGraphEdge(t *testing.T, queryTimeout time.Duration) *graphEdge {
	t.Helper()
	cfg := ingestapi.Config{QueryTimeout: queryTimeout, Auth: ingestapi.AuthConfig{Keys: []ingestapi.APIKey{
		{ID: "reader", SHA256: ingestapi.HashAPIKey(graphReaderSecret), Namespaces: []string{"books"}, Role: ingestapi.RoleRead},
		{ID: "admin", SHA256: ingestapi.HashAPIKey(graphAdminSecret), Namespaces: []string{ingestapi.AllNamespaces}, Role: ingestapi.RoleAdmin},
		{ID: "books-admin", SHA256: ingestapi.HashAPIKey(graphBooksAdmin), Namespaces: []string{"books"}, Role: ingestapi.RoleAdmin},
	}}}
	require.NoError(t, cfg.Validate())
	q := &graphQueryService{}
	q.answer(func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, nats.ErrNoResponders })
	srv := ingestapi.New(cfg, ingestapi.Deps{Query: q, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return &graphEdge{srv: srv, query: q}
}

type graphResponse struct {
	status int
	body   string
}

func (e *graphEdge) call(t *testing.T, secret, method, target, body string) graphResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("X-API-Key", secret)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return graphResponse{status: rec.Code, body: rec.Body.String()}
}

// problemDetail checks a problem answer's status and returns its detail.
func (r graphResponse) problemDetail(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, r.body)
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &p), r.body)
	require.Equal(t, status, p.Status)
	return p.Detail
}

// sent decodes the last request the query service got, and checks its
// subject.
func (e *graphEdge) sent(t *testing.T, subject string, into any) {
	t.Helper()
	reqs := e.query.requests()
	require.NotEmpty(t, reqs)
	last := reqs[len(reqs)-1]
	require.Equal(t, subject, last.Subject)
	require.NoError(t, json.Unmarshal(last.Data, into), string(last.Data))
}

func TestGraphEndpointsForward(t *testing.T) {
	e := newGraphEdge(t, 0)
	tests := []struct {
		name    string
		secret  string
		method  string
		target  string
		body    string
		subject string
		// want is the request the query service should get.
		want  any
		got   func() any
		reply any
	}{
		{
			name: "search", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/entities?namespace=books&q=Ada%20L&limit=5",
			subject: events.GraphSearchSubject,
			want:    &events.GraphSearchRequest{Namespace: "books", Q: "Ada L", Limit: 5}, got: func() any { return &events.GraphSearchRequest{} },
			reply: events.GraphSearchResponse{Namespace: "books", Entities: []events.GraphEntity{
				{Key: "ADA LOVELACE", Name: "Ada Lovelace", Type: "PERSON", Mentions: 2, ChunkIDs: []string{"c1", "c2"}}}},
		},
		{
			name: "search defaults", secret: graphAdminSecret, method: http.MethodGet, target: "/api/v1/graph/entities",
			subject: events.GraphSearchSubject,
			want:    &events.GraphSearchRequest{Namespace: "default", Limit: events.DefaultGraphSearchLimit}, got: func() any { return &events.GraphSearchRequest{} },
			reply: events.GraphSearchResponse{Namespace: "default", Entities: []events.GraphEntity{}},
		},
		{
			name: "entity", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/entities/Ada%20Lovelace?namespace=books&relations_limit=7",
			subject: events.GraphEntitySubject,
			want:    &events.GraphEntityRequest{Namespace: "books", NameOrKey: "Ada Lovelace", RelationsLimit: 7}, got: func() any { return &events.GraphEntityRequest{} },
			reply: events.GraphEntityResponse{Namespace: "books", Entity: events.GraphEntity{Key: "ADA LOVELACE"},
				Relations: []events.GraphRelation{{Source: "ADA LOVELACE", Target: "CHARLES BABBAGE", Weight: 2}},
				Neighbors: []events.GraphNode{{Key: "CHARLES BABBAGE", Depth: 1}}},
		},
		{
			name: "entity with a slash and defaults", secret: graphAdminSecret, method: http.MethodGet, target: "/api/v1/graph/entities/AC%2FDC",
			subject: events.GraphEntitySubject,
			want:    &events.GraphEntityRequest{Namespace: "default", NameOrKey: "AC/DC", RelationsLimit: events.DefaultRelationsLimit},
			got:     func() any { return &events.GraphEntityRequest{} },
			reply:   events.GraphEntityResponse{Namespace: "default", Entity: events.GraphEntity{Key: "AC/DC"}},
		},
		{
			name: "subgraph", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/subgraph?namespace=books&entity=Thames&depth=3&max_nodes=500",
			subject: events.GraphSubgraphSubject,
			want:    &events.GraphSubgraphRequest{Namespace: "books", Entity: "Thames", Depth: 3, MaxNodes: 500}, got: func() any { return &events.GraphSubgraphRequest{} },
			reply: events.GraphSubgraphResponse{Namespace: "books", Root: "THAMES", Truncated: true,
				Nodes: []events.GraphNode{{Key: "THAMES"}, {Key: "LONDON", Depth: 1}}, Edges: []events.GraphEdge{{Source: "LONDON", Target: "THAMES", Weight: 1}}},
		},
		{
			name: "subgraph defaults", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/subgraph?namespace=books&entity=Thames",
			subject: events.GraphSubgraphSubject,
			want: &events.GraphSubgraphRequest{Namespace: "books", Entity: "Thames", Depth: events.DefaultSubgraphDepth,
				MaxNodes: events.DefaultSubgraphMaxNodes},
			got:   func() any { return &events.GraphSubgraphRequest{} },
			reply: events.GraphSubgraphResponse{Namespace: "books", Root: "THAMES"},
		},
		{
			name: "paths", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/paths?namespace=books&from=Ada&to=Thames&max_depth=6&max_paths=10",
			subject: events.GraphPathsSubject,
			want:    &events.GraphPathsRequest{Namespace: "books", From: "Ada", To: "Thames", MaxDepth: 6, MaxPaths: 10}, got: func() any { return &events.GraphPathsRequest{} },
			reply: events.GraphPathsResponse{Namespace: "books", From: "ADA", To: "THAMES", Paths: []events.GraphPath{{
				Nodes: []events.GraphNode{{Key: "ADA"}, {Key: "THAMES", Depth: 1}}, Edges: []events.GraphEdge{{Source: "ADA", Target: "THAMES"}}}}},
		},
		{
			name: "paths defaults", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/graph/paths?namespace=books&from=Ada&to=Thames",
			subject: events.GraphPathsSubject,
			want: &events.GraphPathsRequest{Namespace: "books", From: "Ada", To: "Thames", MaxDepth: events.DefaultPathMaxDepth,
				MaxPaths: events.DefaultMaxPaths},
			got:   func() any { return &events.GraphPathsRequest{} },
			reply: events.GraphPathsResponse{Namespace: "books", From: "ADA", To: "THAMES", Paths: []events.GraphPath{}},
		},
		{
			name: "stats", secret: graphReaderSecret, method: http.MethodGet, target: "/api/v1/stats?namespace=books",
			subject: events.GraphStatsSubject,
			want:    &events.GraphStatsRequest{Namespace: "books"}, got: func() any { return &events.GraphStatsRequest{} },
			reply: events.GraphStatsResponse{Namespace: "books", Documents: 2, Chunks: 3, Entities: 5, Relations: 4, Communities: 6,
				Generation: 9, CommunitiesGeneration: 8},
		},
		{
			name: "cache clear", secret: graphBooksAdmin, method: http.MethodPost, target: "/api/v1/cache/clear", body: `{"namespace": "books"}`,
			subject: events.QueryCacheClearSubject,
			want:    &events.QueryCacheClearRequest{Namespace: "books"}, got: func() any { return &events.QueryCacheClearRequest{} },
			reply: events.QueryCacheClearResponse{Namespace: "books", Deleted: 3},
		},
		{
			name: "cache clear without a body", secret: graphAdminSecret, method: http.MethodPost, target: "/api/v1/cache/clear",
			subject: events.QueryCacheClearSubject,
			want:    &events.QueryCacheClearRequest{Namespace: "default"}, got: func() any { return &events.QueryCacheClearRequest{} },
			reply: events.QueryCacheClearResponse{Namespace: "default"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.query.answer(answerJSON(t, tc.reply))
			r := e.call(t, tc.secret, tc.method, tc.target, tc.body)
			require.Equal(t, http.StatusOK, r.status, r.body)
			got := tc.got()
			e.sent(t, tc.subject, got)
			require.Equal(t, tc.want, got)
			want, err := json.Marshal(tc.reply)
			require.NoError(t, err)
			require.JSONEq(t, string(want), r.body, "the query service's answer as it is")
		})
	}
}

func TestGraphEndpointsValidate(t *testing.T) {
	e := newGraphEdge(t, 0)
	e.query.answer(answerJSON(t, map[string]any{}))
	targets := []string{
		"/api/v1/graph/entities?namespace=books&limit=0",
		"/api/v1/graph/entities?namespace=books&limit=101",
		"/api/v1/graph/entities?namespace=bad.ns",
		"/api/v1/graph/entities?namespace=books&q=" + strings.Repeat("q", 1001),
		"/api/v1/graph/entities/Ada?namespace=books&relations_limit=501",
		"/api/v1/graph/subgraph?namespace=books",
		"/api/v1/graph/subgraph?namespace=books&entity=",
		"/api/v1/graph/subgraph?namespace=books&entity=Thames&depth=4",
		"/api/v1/graph/subgraph?namespace=books&entity=Thames&depth=0",
		"/api/v1/graph/subgraph?namespace=books&entity=Thames&max_nodes=501",
		"/api/v1/graph/paths?namespace=books&from=Ada",
		"/api/v1/graph/paths?namespace=books&to=Ada",
		"/api/v1/graph/paths?namespace=books&from=Ada&to=Thames&max_depth=7",
		"/api/v1/graph/paths?namespace=books&from=Ada&to=Thames&max_paths=11",
		"/api/v1/stats?namespace=-x",
	}
	for _, target := range targets {
		name := target
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		t.Run(name, func(t *testing.T) {
			e.call(t, graphAdminSecret, http.MethodGet, target, "").problemDetail(t, http.StatusUnprocessableEntity)
		})
	}
	e.call(t, graphAdminSecret, http.MethodPost, "/api/v1/cache/clear", `{"namespace": "a.b"}`).problemDetail(t, http.StatusUnprocessableEntity)
	e.call(t, graphAdminSecret, http.MethodPost, "/api/v1/cache/clear", `{"namespaces": "books"}`).problemDetail(t, http.StatusUnprocessableEntity)
	require.Empty(t, e.query.requests(), "invalid requests never reach the query service")
}

func TestGraphEndpointsAuthorize(t *testing.T) {
	e := newGraphEdge(t, 0)
	e.query.answer(answerJSON(t, map[string]any{}))
	tests := []struct {
		name   string
		secret string
		method string
		target string
		body   string
		status int
	}{
		{"no key", "", http.MethodGet, "/api/v1/graph/entities?namespace=books", "", http.StatusUnauthorized},
		{"another namespace", graphReaderSecret, http.MethodGet, "/api/v1/graph/entities?namespace=other", "", http.StatusForbidden},
		{"the default namespace is a namespace", graphReaderSecret, http.MethodGet, "/api/v1/stats", "", http.StatusForbidden},
		{"entity of another namespace", graphReaderSecret, http.MethodGet, "/api/v1/graph/entities/Ada?namespace=other", "", http.StatusForbidden},
		{"subgraph of another namespace", graphReaderSecret, http.MethodGet, "/api/v1/graph/subgraph?namespace=other&entity=A", "", http.StatusForbidden},
		{"paths of another namespace", graphReaderSecret, http.MethodGet, "/api/v1/graph/paths?namespace=other&from=A&to=B", "", http.StatusForbidden},
		{"cache clear needs admin", graphReaderSecret, http.MethodPost, "/api/v1/cache/clear", `{"namespace": "books"}`, http.StatusForbidden},
		{"cache clear of another namespace", graphBooksAdmin, http.MethodPost, "/api/v1/cache/clear", `{"namespace": "other"}`, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.call(t, tc.secret, tc.method, tc.target, tc.body).problemDetail(t, tc.status)
		})
	}
	require.Empty(t, e.query.requests(), "refused requests never reach the query service")
}

func TestGraphEndpointsMapQueryServiceErrors(t *testing.T) {
	e := newGraphEdge(t, 50*time.Millisecond)
	tests := []struct {
		name   string
		reply  func(context.Context, *nats.Msg) (*nats.Msg, error)
		status int
		detail string
	}{
		{"not found", answerError("404", `name_or_key: no entity "ADA" in namespace "books"`), http.StatusNotFound, `no entity "ADA"`},
		{"invalid", answerError("422", "depth must be between 1 and 3 (got 9)"), http.StatusUnprocessableEntity, "depth must be"},
		{"not implemented", answerError("501", "the graph store cannot search entities"), http.StatusNotImplemented, "cannot search"},
		{"backend down", answerError("503", "graph store unavailable"), http.StatusServiceUnavailable, "graph store unavailable"},
		{"service timeout", answerError("504", "graph subgraph timed out"), http.StatusGatewayTimeout, "timed out"},
		{"code that is not a status", answerError("abc", "what"), http.StatusBadGateway, ""},
		{"code that is not an error", answerError("200", "fine?"), http.StatusBadGateway, ""},
		{"no responders", func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, nats.ErrNoResponders }, http.StatusServiceUnavailable, "unavailable"},
		{"nats timeout", func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, nats.ErrTimeout }, http.StatusGatewayTimeout, "timed out"},
		{"edge timeout", func(ctx context.Context, _ *nats.Msg) (*nats.Msg, error) {
			<-ctx.Done() // the edge's QueryTimeout
			return nil, ctx.Err()
		}, http.StatusGatewayTimeout, "subgraph timed out"},
		{"connection closed", func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, nats.ErrConnectionClosed }, http.StatusServiceUnavailable, "unreachable"},
		{"other failure", func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, errors.New("boom") }, http.StatusServiceUnavailable, "unreachable"},
		{"unreadable answer", func(context.Context, *nats.Msg) (*nats.Msg, error) { return &nats.Msg{Data: []byte("{")}, nil }, http.StatusBadGateway, "unreadable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.query.answer(tc.reply)
			detail := e.call(t, graphReaderSecret, http.MethodGet, "/api/v1/graph/subgraph?namespace=books&entity=Ada", "").problemDetail(t, tc.status)
			require.Contains(t, detail, tc.detail)
		})
	}
}

func TestGraphOperationsDeclareTheirRoles(t *testing.T) {
	e := newGraphEdge(t, 0)
	paths := e.srv.OpenAPI().Paths
	for _, tc := range []struct {
		path, method, role string
	}{
		{"/api/v1/graph/entities", http.MethodGet, "read"},
		{"/api/v1/graph/entities/{name}", http.MethodGet, "read"},
		{"/api/v1/graph/subgraph", http.MethodGet, "read"},
		{"/api/v1/graph/paths", http.MethodGet, "read"},
		{"/api/v1/stats", http.MethodGet, "read"},
		{"/api/v1/cache/clear", http.MethodPost, "admin"},
	} {
		item := paths[tc.path]
		require.NotNil(t, item, tc.path)
		op := item.Get
		if tc.method == http.MethodPost {
			op = item.Post
		}
		require.NotNil(t, op, tc.method+" "+tc.path)
		require.Equal(t, tc.role, op.Metadata["role"], tc.path)
	}
}
