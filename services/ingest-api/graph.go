package ingestapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
)

// The graph exploration endpoints forward to the query service over NATS
// (events/graphapi.go) and answer with its replies as they are. The limits
// in the tags are the events package's (MaxGraphSearchLimit and the rest);
// the query service checks them again.

// GraphSearchInput finds entities by name.
type GraphSearchInput struct {
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
	Q         string `query:"q" maxLength:"1000" doc:"Part of the entity's name, in any case; empty lists the most mentioned entities."`
	Limit     int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Entities returned."`
}

// GraphEntityInput names an entity.
type GraphEntityInput struct {
	Name           string `path:"name" minLength:"1" maxLength:"1000" doc:"The entity's name or key, in any case (URL-escaped)."`
	Namespace      string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
	RelationsLimit int    `query:"relations_limit" minimum:"1" maximum:"500" default:"50" doc:"Relations returned, the heaviest first."`
}

// GraphSubgraphInput asks for an entity's neighbourhood.
type GraphSubgraphInput struct {
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
	Entity    string `query:"entity" required:"true" minLength:"1" maxLength:"1000" doc:"The root entity's name or key."`
	Depth     int    `query:"depth" minimum:"1" maximum:"3" default:"1" doc:"Hops from the root."`
	MaxNodes  int    `query:"max_nodes" minimum:"1" maximum:"500" default:"100" doc:"Entities returned, the root included; the heaviest relations are followed first."`
}

// GraphPathsInput asks for the shortest paths between two entities.
type GraphPathsInput struct {
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
	From      string `query:"from" required:"true" minLength:"1" maxLength:"1000" doc:"Name or key of the entity the paths start at."`
	To        string `query:"to" required:"true" minLength:"1" maxLength:"1000" doc:"Name or key of the entity the paths end at."`
	MaxDepth  int    `query:"max_depth" minimum:"1" maximum:"6" default:"4" doc:"Longest path looked for, in edges."`
	MaxPaths  int    `query:"max_paths" minimum:"1" maximum:"10" default:"3" doc:"Paths returned."`
}

// StatsInput names a namespace.
type StatsInput struct {
	Namespace string `query:"namespace" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
}

// CacheClearBody names the namespace whose cached answers go.
type CacheClearBody struct {
	Namespace string `json:"namespace,omitempty" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]*$" doc:"Namespace; default \"default\"."`
}

// CacheClearInput is the optional body of a cache clear.
type CacheClearInput struct {
	Body *CacheClearBody
}

// graphRoutes registers the graph exploration, stats and cache endpoints.
func (s *Server) graphRoutes() {
	errs := []int{http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	withNotFound := append([]int{http.StatusNotFound}, errs...)
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "search-entities", Method: http.MethodGet, Path: "/api/v1/graph/entities", Tags: []string{"graph"},
		Summary:     "Search entities by name",
		Description: "Entities whose name contains q (case-insensitively): the exact match first, then names starting with q, then the others, the most mentioned first within each.",
		Errors:      errs,
	}, RoleRead), func(ctx context.Context, in *GraphSearchInput) (*replyOf[events.GraphSearchResponse], error) {
		ns := nsOrDefault(in.Namespace)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return forward[events.GraphSearchResponse](ctx, s, events.GraphSearchSubject, "entity search",
			events.GraphSearchRequest{Namespace: ns, Q: in.Q, Limit: in.Limit})
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-entity", Method: http.MethodGet, Path: "/api/v1/graph/entities/{name}", Tags: []string{"graph"},
		Summary:     "Get an entity, its relations and its neighbours",
		Description: "The entity named (by name or key, in any case), its heaviest relations and the entities at their other ends.",
		Errors:      withNotFound,
	}, RoleRead), func(ctx context.Context, in *GraphEntityInput) (*replyOf[events.GraphEntityResponse], error) {
		ns := nsOrDefault(in.Namespace)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return forward[events.GraphEntityResponse](ctx, s, events.GraphEntitySubject, "entity lookup",
			events.GraphEntityRequest{Namespace: ns, NameOrKey: in.Name, RelationsLimit: in.RelationsLimit})
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-subgraph", Method: http.MethodGet, Path: "/api/v1/graph/subgraph", Tags: []string{"graph"},
		Summary:     "Get the neighbourhood of an entity",
		Description: "The entities within depth hops of the root, found breadth first along the heaviest relations first, and every relation among them; truncated says max_nodes (or the edge cap) left some out.",
		Errors:      withNotFound,
	}, RoleRead), func(ctx context.Context, in *GraphSubgraphInput) (*replyOf[events.GraphSubgraphResponse], error) {
		ns := nsOrDefault(in.Namespace)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return forward[events.GraphSubgraphResponse](ctx, s, events.GraphSubgraphSubject, "subgraph",
			events.GraphSubgraphRequest{Namespace: ns, Entity: in.Entity, Depth: in.Depth, MaxNodes: in.MaxNodes})
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "find-paths", Method: http.MethodGet, Path: "/api/v1/graph/paths", Tags: []string{"graph"},
		Summary:     "Find the shortest paths between two entities",
		Description: "Every shortest path of at most max_depth edges (up to max_paths of them); none when there is no such path. truncated says paths may be missing.",
		Errors:      withNotFound,
	}, RoleRead), func(ctx context.Context, in *GraphPathsInput) (*replyOf[events.GraphPathsResponse], error) {
		ns := nsOrDefault(in.Namespace)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return forward[events.GraphPathsResponse](ctx, s, events.GraphPathsSubject, "path search",
			events.GraphPathsRequest{Namespace: ns, From: in.From, To: in.To, MaxDepth: in.MaxDepth, MaxPaths: in.MaxPaths})
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "get-stats", Method: http.MethodGet, Path: "/api/v1/stats", Tags: []string{"graph"},
		Summary:     "Size of a namespace",
		Description: "Documents, chunks, entities, relations and communities of the namespace, and the graph's generation: the communities are up to date when communities_generation equals it.",
		Errors:      errs,
	}, RoleRead), func(ctx context.Context, in *StatsInput) (*replyOf[events.GraphStatsResponse], error) {
		ns := nsOrDefault(in.Namespace)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		return forward[events.GraphStatsResponse](ctx, s, events.GraphStatsSubject, "stats",
			events.GraphStatsRequest{Namespace: ns})
	})
	huma.Register(s.api, withRole(huma.Operation{
		OperationID: "clear-query-cache", Method: http.MethodPost, Path: "/api/v1/cache/clear", Tags: []string{"admin"},
		Summary:      "Clear a namespace's cached answers",
		Description:  "Deletes every cached query answer of the namespace; the next queries are answered afresh.",
		MaxBodyBytes: humaBodyLimit(4 << 10), Errors: errs,
	}, RoleAdmin), func(ctx context.Context, in *CacheClearInput) (*replyOf[events.QueryCacheClearResponse], error) {
		var ns string
		if in.Body != nil {
			ns = in.Body.Namespace
		}
		ns = nsOrDefault(ns)
		if err := s.allowNamespace(ctx, ns); err != nil {
			return nil, err
		}
		s.answers.invalidate(ns) // this replica's answers too
		return forward[events.QueryCacheClearResponse](ctx, s, events.QueryCacheClearSubject, "cache clear",
			events.QueryCacheClearRequest{Namespace: ns})
	})
}

// replyOf is the output of an operation answering with a Res.
type replyOf[Res any] struct {
	Body Res
}

// forward asks the query service and wraps its answer as huma's output.
func forward[Res any](ctx context.Context, s *Server, subject, what string, req any) (*replyOf[Res], error) {
	out := &replyOf[Res]{}
	if err := s.askQueryService(ctx, subject, what, req, &out.Body); err != nil {
		return nil, err
	}
	return out, nil
}

// askQueryService sends req to the query service on subject and decodes
// its answer into out. Failures of the request and error replies are huma
// errors (the statuses of query's); what names the request in their
// messages.
func (s *Server) askQueryService(ctx context.Context, subject, what string, req, out any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", what, err)
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	resp, err := s.deps.Query.RequestMsgWithContext(qctx, &nats.Msg{Subject: subject, Data: data})
	if err != nil {
		return queryRequestError(err, what)
	}
	if err := queryErrorReply(resp); err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return huma.Error502BadGateway(fmt.Sprintf("the query service sent an unreadable %s answer", what))
	}
	return nil
}

// queryRequestError maps a failed NATS request to the query service: 504
// past the timeout, 503 otherwise.
func queryRequestError(err error, what string) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return huma.Error504GatewayTimeout(what + " timed out")
	case errors.Is(err, nats.ErrNoResponders):
		return huma.Error503ServiceUnavailable("query service unavailable")
	default:
		return huma.Error503ServiceUnavailable("query service unreachable")
	}
}

// queryErrorReply returns the error a query service reply carries as a NATS
// service error: its code is the HTTP status (502 when it is not an error
// status), its description the message.
func queryErrorReply(resp *nats.Msg) error {
	code := resp.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	status, err := strconv.Atoi(code)
	return huma.NewError(upstreamStatus(status, err), resp.Header.Get(micro.ErrorHeader))
}
