package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// endpoint is one request/reply endpoint of the micro service besides the
// query endpoints.
type endpoint struct {
	name    string
	subject string
	serve   func(context.Context, micro.Request)
}

// exploreEndpoints are the graph exploration and cache endpoints (see
// events/graphapi.go).
func (s *Service) exploreEndpoints() []endpoint {
	return []endpoint{
		{"graph-search", events.GraphSearchSubject, serveJSON(s, "graph search", s.SearchEntities)},
		{"graph-entity", events.GraphEntitySubject, serveJSON(s, "graph entity", s.Entity)},
		{"graph-subgraph", events.GraphSubgraphSubject, serveJSON(s, "graph subgraph", s.Subgraph)},
		{"graph-paths", events.GraphPathsSubject, serveJSON(s, "graph paths", s.Paths)},
		{"graph-stats", events.GraphStatsSubject, serveJSON(s, "graph stats", s.Stats)},
		{"cache-clear", events.QueryCacheClearSubject, serveJSON(s, "cache clear", s.ClearCache)},
	}
}

// serveJSON decodes a request, answers it with handle and replies with the
// JSON answer or a service error.
func serveJSON[Req, Res any](s *Service, what string, handle func(context.Context, Req) (Res, error)) func(context.Context, micro.Request) {
	return func(ctx context.Context, r micro.Request) {
		var req Req
		if err := json.Unmarshal(r.Data(), &req); err != nil {
			s.replyError(r, &Error{Status: http.StatusBadRequest, Msg: what + " request is not valid JSON"})
			return
		}
		res, err := handle(ctx, req)
		if err != nil {
			s.replyError(r, s.exploreError(err, what))
			return
		}
		data, err := json.Marshal(res)
		if err != nil {
			s.log.Error("encode answer", "err", err, "endpoint", what)
			s.replyError(r, &Error{Status: http.StatusInternalServerError, Msg: what + " answer could not be encoded"})
			return
		}
		if qe := s.tooLarge(data); qe != nil {
			s.replyError(r, qe)
			return
		}
		s.reply(r, &nats.Msg{Data: data})
	}
}

// exploreError turns any failure into the *Error a client is told about;
// details of backend failures stay in the log.
func (s *Service) exploreError(err error, what string) *Error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	s.log.Error(what+" failed", "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Msg: what + " timed out"}
	}
	return &Error{Status: http.StatusServiceUnavailable, Msg: "graph store unavailable"}
}

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Msg: fmt.Sprintf(format, args...)}
}

// validNamespace reports whether ns matches events.NamespacePattern and
// events.MaxNamespaceLen, so it is safe as a KV key token.
func validNamespace(ns string) bool {
	if ns == "" || len(ns) > events.MaxNamespaceLen {
		return false
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// namespaceOf validates a request's namespace; empty is the default one.
func namespaceOf(ns string) (string, error) {
	if ns == "" {
		return events.DefaultNamespace, nil
	}
	if !validNamespace(ns) {
		return "", invalid("namespace %q is invalid (letters, digits, '_' and '-', at most %d)", ns, events.MaxNamespaceLen)
	}
	return ns, nil
}

// bounded validates an optional numeric field: 0 takes def, else it must
// lie in [1, most].
func bounded(field string, v, def, most int) (int, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 1 || v > most:
		return 0, invalid("%s must be between 1 and %d (got %d)", field, most, v)
	}
	return v, nil
}

// entityKeyOf validates a field naming an entity and returns its key.
func entityKeyOf(field, name string) (string, error) {
	if len(name) > events.MaxEntityNameLen {
		return "", invalid("%s is longer than %d bytes", field, events.MaxEntityNameLen)
	}
	key := events.EntityKey(name)
	if key == "" {
		return "", invalid("%s must name an entity", field)
	}
	return key, nil
}

// entity reads one entity, or answers 404.
func (s *Service) entity(ctx context.Context, ns, field, key string) (graph.Entity, error) {
	es, err := s.graph.Entities(ctx, ns, []string{key})
	if err != nil {
		return graph.Entity{}, fmt.Errorf("read entity %s: %w", key, err)
	}
	if len(es) == 0 {
		return graph.Entity{}, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("%s: no entity %q in namespace %q", field, key, ns)}
	}
	return es[0], nil
}

// SearchEntities finds entities by name.
func (s *Service) SearchEntities(ctx context.Context, req events.GraphSearchRequest) (events.GraphSearchResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.GraphSearchResponse{}, err
	}
	limit, err := bounded("limit", req.Limit, events.DefaultGraphSearchLimit, events.MaxGraphSearchLimit)
	if err != nil {
		return events.GraphSearchResponse{}, err
	}
	if len(req.Q) > events.MaxEntityNameLen {
		return events.GraphSearchResponse{}, invalid("q is longer than %d bytes", events.MaxEntityNameLen)
	}
	found, err := s.graph.SearchEntities(ctx, ns, req.Q, limit)
	if err != nil {
		return events.GraphSearchResponse{}, err
	}
	res := events.GraphSearchResponse{Namespace: ns, Entities: make([]events.GraphEntity, len(found))}
	for i, e := range found {
		res.Entities[i] = graphEntity(e)
	}
	return res, nil
}

// Entity returns an entity, its heaviest relations and its neighbours.
func (s *Service) Entity(ctx context.Context, req events.GraphEntityRequest) (events.GraphEntityResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.GraphEntityResponse{}, err
	}
	key, err := entityKeyOf("name_or_key", req.NameOrKey)
	if err != nil {
		return events.GraphEntityResponse{}, err
	}
	limit, err := bounded("relations_limit", req.RelationsLimit, events.DefaultRelationsLimit, events.MaxRelationsLimit)
	if err != nil {
		return events.GraphEntityResponse{}, err
	}
	e, err := s.entity(ctx, ns, "name_or_key", key)
	if err != nil {
		return events.GraphEntityResponse{}, err
	}
	// One more than asked tells whether there are more.
	rels, err := s.graph.RelationsOf(ctx, ns, []string{key}, limit+1)
	if err != nil {
		return events.GraphEntityResponse{}, fmt.Errorf("read relations of %s: %w", key, err)
	}
	res := events.GraphEntityResponse{Namespace: ns, Entity: graphEntity(e), Relations: []events.GraphRelation{}}
	if len(rels) > limit {
		rels, res.RelationsTruncated = rels[:limit], true
	}
	var others []string
	for _, r := range rels {
		res.Relations = append(res.Relations, graphRelation(r))
		others = append(others, otherEnd(r, key))
	}
	nodes, err := s.nodes(ctx, ns, others, func(string) int { return 1 })
	if err != nil {
		return events.GraphEntityResponse{}, err
	}
	res.Neighbors = nodes
	return res, nil
}

// nodes reads the entities of keys (repeats dropped) as nodes at depth(key),
// in the order of keys; keys nothing mentions any more are skipped.
func (s *Service) nodes(ctx context.Context, ns string, keys []string, depth func(string) int) ([]events.GraphNode, error) {
	out := []events.GraphNode{}
	if len(keys) == 0 {
		return out, nil
	}
	es, err := s.graph.Entities(ctx, ns, keys)
	if err != nil {
		return nil, fmt.Errorf("read %d entities: %w", len(keys), err)
	}
	for _, e := range es {
		out = append(out, events.GraphNode{Key: e.Key, Name: e.Name, Type: e.Type, Mentions: e.Mentions, Depth: depth(e.Key)})
	}
	return out, nil
}

// Subgraph returns the entities within depth hops of an entity, found
// breadth first, and the relations among them. Every node reached is
// expanded once (one RelationsOf per level), so the work is bounded by the
// relations of at most max_nodes entities.
func (s *Service) Subgraph(ctx context.Context, req events.GraphSubgraphRequest) (events.GraphSubgraphResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.GraphSubgraphResponse{}, err
	}
	root, err := entityKeyOf("entity", req.Entity)
	if err != nil {
		return events.GraphSubgraphResponse{}, err
	}
	depth, err := bounded("depth", req.Depth, events.DefaultSubgraphDepth, events.MaxSubgraphDepth)
	if err != nil {
		return events.GraphSubgraphResponse{}, err
	}
	maxNodes, err := bounded("max_nodes", req.MaxNodes, events.DefaultSubgraphMaxNodes, events.MaxSubgraphMaxNodes)
	if err != nil {
		return events.GraphSubgraphResponse{}, err
	}
	if _, err := s.entity(ctx, ns, "entity", root); err != nil {
		return events.GraphSubgraphResponse{}, err
	}

	res := events.GraphSubgraphResponse{Namespace: ns, Root: root}
	depthOf := map[string]int{root: 0}
	order := []string{root}
	edges := map[[2]string]graph.Relation{}
	frontier := []string{root}
	// Each pass expands the nodes found by the one before. The pass after
	// the last level adds no nodes, only the relations among the nodes of
	// the last level.
	for level := 1; len(frontier) > 0; level++ {
		rels, err := s.graph.RelationsOf(ctx, ns, frontier, 0)
		if err != nil {
			return events.GraphSubgraphResponse{}, fmt.Errorf("expand %d entities at depth %d: %w", len(frontier), level-1, err)
		}
		var next []string
		for _, r := range rels { // heaviest first: those keep their nodes when max_nodes cuts
			for _, end := range []string{r.Source, r.Target} {
				if _, ok := depthOf[end]; ok {
					continue
				}
				if level > depth {
					continue // beyond the last level: not a node, not truncation
				}
				if len(order) >= maxNodes {
					res.Truncated = true
					continue
				}
				depthOf[end] = level
				order = append(order, end)
				next = append(next, end)
			}
			_, hasSource := depthOf[r.Source]
			_, hasTarget := depthOf[r.Target]
			if hasSource && hasTarget {
				edges[[2]string{r.Source, r.Target}] = r
			}
		}
		if level > depth {
			break
		}
		frontier = next
	}

	if res.Nodes, err = s.nodes(ctx, ns, order, func(k string) int { return depthOf[k] }); err != nil {
		return events.GraphSubgraphResponse{}, err
	}
	rels := make([]graph.Relation, 0, len(edges))
	for _, r := range edges {
		rels = append(rels, r)
	}
	slices.SortFunc(rels, heaviestFirst)
	if len(rels) > events.MaxSubgraphEdges {
		rels, res.Truncated = rels[:events.MaxSubgraphEdges], true
	}
	res.Edges = make([]events.GraphEdge, len(rels))
	for i, r := range rels {
		res.Edges[i] = graphEdge(r)
	}
	return res, nil
}

func heaviestFirst(a, b graph.Relation) int {
	return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
}

// Stats sizes a namespace.
func (s *Service) Stats(ctx context.Context, req events.GraphStatsRequest) (events.GraphStatsResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.GraphStatsResponse{}, err
	}
	c, err := s.graph.Counts(ctx, ns)
	if err != nil {
		return events.GraphStatsResponse{}, err
	}
	res := events.GraphStatsResponse{Namespace: ns, Documents: c.Documents, Chunks: c.Chunks, Entities: c.Entities,
		Relations: c.Relations, Communities: c.Communities}
	if res.Generation, err = s.graph.Generation(ctx, ns); err != nil {
		return events.GraphStatsResponse{}, fmt.Errorf("read generation: %w", err)
	}
	built, err := s.graph.CommunitiesBuilt(ctx, ns)
	if err != nil {
		return events.GraphStatsResponse{}, fmt.Errorf("read communities build: %w", err)
	}
	res.CommunitiesGeneration = built.Generation
	res.CommunitiesStale = res.Generation != built.Generation
	if !built.At.IsZero() {
		at := built.At.UTC()
		res.CommunitiesBuiltAt = &at
	}
	return res, nil
}

func graphEntity(e graph.Entity) events.GraphEntity {
	return events.GraphEntity{Key: e.Key, Name: e.Name, Type: e.Type, Description: e.Description, Mentions: e.Mentions,
		ChunkIDs: nonNil(e.ChunkIDs)}
}

func graphRelation(r graph.Relation) events.GraphRelation {
	return events.GraphRelation{Source: r.Source, Target: r.Target, Description: r.Description, Keywords: nonNil(r.Keywords),
		Weight: r.Weight, Mentions: r.Mentions, ChunkIDs: nonNil(r.ChunkIDs)}
}

func graphEdge(r graph.Relation) events.GraphEdge {
	return events.GraphEdge{Source: r.Source, Target: r.Target, Description: r.Description, Weight: r.Weight, Mentions: r.Mentions}
}

// nonNil makes an absent list encode as [] rather than null.
func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// otherEnd returns the end of r that is not key.
func otherEnd(r graph.Relation, key string) string {
	if r.Source == key {
		return r.Target
	}
	return r.Source
}
