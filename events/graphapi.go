package events

// The graph exploration contract: the REST edge asks the query service over
// NATS request/reply (core NATS, like QuerySubject) with one of the requests
// below, in JSON, and gets the matching response, or a NATS service error
// whose code (Nats-Service-Error-Code) is an HTTP status and whose
// description (Nats-Service-Error) is the message for the client:
//
//	400  the request is not valid JSON
//	404  an entity named by the request does not exist in the namespace
//	422  a field is invalid (the message names it by its JSON name)
//	501  the response cache cannot do it (no cache configured)
//	503  a backend failed, or the service is stopping; retry
//	504  the request took longer than the service's timeout
//
// A zero numeric field takes its default; an empty namespace is
// DefaultNamespace. Entities are named by name or key alike: the service
// looks up EntityKey of what it is given.

import "time"

// Subjects of the graph exploration and cache endpoints.
const (
	GraphSearchSubject     = "kgraph.svc.graph.search"
	GraphEntitySubject     = "kgraph.svc.graph.entity"
	GraphSubgraphSubject   = "kgraph.svc.graph.subgraph"
	GraphPathsSubject      = "kgraph.svc.graph.paths"
	GraphStatsSubject      = "kgraph.svc.graph.stats"
	QueryCacheClearSubject = "kgraph.svc.query.cache.clear"
)

// Defaults and limits of the request fields.
const (
	DefaultGraphSearchLimit = 20
	MaxGraphSearchLimit     = 100

	DefaultRelationsLimit = 50
	MaxRelationsLimit     = 500

	DefaultSubgraphDepth    = 1
	MaxSubgraphDepth        = 3
	DefaultSubgraphMaxNodes = 100
	MaxSubgraphMaxNodes     = 500
	// MaxSubgraphEdges caps the edges of a subgraph, the heaviest kept.
	MaxSubgraphEdges = 2000

	DefaultPathMaxDepth = 4
	MaxPathMaxDepth     = 6
	DefaultMaxPaths     = 3
	MaxMaxPaths         = 10

	// MaxEntityNameLen bounds the names and keys requests name entities by.
	MaxEntityNameLen = 1000
)

// GraphEntity is an entity with everything the graph knows of it.
type GraphEntity struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Description is the entity's summary, or its descriptions joined
	// with newlines.
	Description string `json:"description"`
	// Mentions is the number of chunks mentioning the entity.
	Mentions int      `json:"mentions"`
	ChunkIDs []string `json:"chunk_ids"`
}

// GraphRelation is an undirected relation between two entities, by key
// (Source < Target), with everything the graph knows of it.
type GraphRelation struct {
	Source      string   `json:"source"`
	Target      string   `json:"target"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
	Weight      float64  `json:"weight"`
	Mentions    int      `json:"mentions"`
	ChunkIDs    []string `json:"chunk_ids"`
}

// GraphNode is an entity as a node of a subgraph or a path.
type GraphNode struct {
	Key      string `json:"key"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Mentions int    `json:"mentions"`
	// Depth is the node's distance in edges from the subgraph's root
	// (0 for the root), or its position on a path.
	Depth int `json:"depth"`
}

// GraphEdge is a relation as an edge of a subgraph or a path: undirected,
// by key (Source < Target).
type GraphEdge struct {
	Source      string  `json:"source"`
	Target      string  `json:"target"`
	Description string  `json:"description"`
	Weight      float64 `json:"weight"`
	Mentions    int     `json:"mentions"`
}

// GraphSearchRequest finds entities by name: those whose key contains
// EntityKey(Q) (a case-insensitive substring match on the name), the exact
// match first, then names starting with Q, then the others, the most
// mentioned first within each. An empty Q lists the most mentioned
// entities.
type GraphSearchRequest struct {
	Namespace string `json:"namespace"`
	Q         string `json:"q"`
	// Limit is 1 to MaxGraphSearchLimit (default DefaultGraphSearchLimit).
	Limit int `json:"limit,omitempty"`
}

// GraphSearchResponse lists the entities found, best first.
type GraphSearchResponse struct {
	Namespace string        `json:"namespace"`
	Entities  []GraphEntity `json:"entities"`
}

// GraphEntityRequest asks for one entity and its relations.
type GraphEntityRequest struct {
	Namespace string `json:"namespace"`
	NameOrKey string `json:"name_or_key"`
	// RelationsLimit is 1 to MaxRelationsLimit (default
	// DefaultRelationsLimit).
	RelationsLimit int `json:"relations_limit,omitempty"`
}

// GraphEntityResponse is an entity, its heaviest relations and the
// entities at their other ends.
type GraphEntityResponse struct {
	Namespace string      `json:"namespace"`
	Entity    GraphEntity `json:"entity"`
	// Relations touch the entity, the heaviest first.
	Relations []GraphRelation `json:"relations"`
	// RelationsTruncated says the entity has more relations than
	// relations_limit.
	RelationsTruncated bool `json:"relations_truncated"`
	// Neighbors are the other ends of Relations, in the same order, each
	// once, at depth 1.
	Neighbors []GraphNode `json:"neighbors"`
}

// GraphSubgraphRequest asks for the neighbourhood of an entity.
type GraphSubgraphRequest struct {
	Namespace string `json:"namespace"`
	Entity    string `json:"entity"`
	// Depth is 1 to MaxSubgraphDepth hops (default DefaultSubgraphDepth).
	Depth int `json:"depth,omitempty"`
	// MaxNodes is 1 to MaxSubgraphMaxNodes (default
	// DefaultSubgraphMaxNodes), the root included.
	MaxNodes int `json:"max_nodes,omitempty"`
}

// GraphSubgraphResponse is the entities within depth hops of the root,
// found breadth first along the heaviest relations first, and every
// relation among them.
type GraphSubgraphResponse struct {
	Namespace string `json:"namespace"`
	// Root is the root entity's key; it is Nodes[0].
	Root string `json:"root"`
	// Nodes are sorted by depth, then as found.
	Nodes []GraphNode `json:"nodes"`
	// Edges are the relations among Nodes, the heaviest first.
	Edges []GraphEdge `json:"edges"`
	// Truncated says entities within depth were left out for max_nodes,
	// or relations among the nodes for MaxSubgraphEdges.
	Truncated bool `json:"truncated"`
}

// GraphPathsRequest asks for the shortest paths between two entities.
type GraphPathsRequest struct {
	Namespace string `json:"namespace"`
	From      string `json:"from"`
	To        string `json:"to"`
	// MaxDepth is 1 to MaxPathMaxDepth edges (default
	// DefaultPathMaxDepth): longer paths are not looked for.
	MaxDepth int `json:"max_depth,omitempty"`
	// MaxPaths is 1 to MaxMaxPaths (default DefaultMaxPaths).
	MaxPaths int `json:"max_paths,omitempty"`
}

// GraphPathsResponse lists shortest paths between two entities: all of the
// same, smallest, length. None when no path of at most max_depth edges
// exists; one path of one node when From and To are the same entity.
type GraphPathsResponse struct {
	Namespace string `json:"namespace"`
	// From and To are the endpoints' keys.
	From  string      `json:"from"`
	To    string      `json:"to"`
	Paths []GraphPath `json:"paths"`
	// Truncated says paths may be missing: there are more shortest paths
	// than max_paths, or the search stopped at its work bound (a graph
	// too dense around the endpoints to search to max_depth).
	Truncated bool `json:"truncated"`
}

// GraphPath is a path: Edges[i] joins Nodes[i] and Nodes[i+1]; node depths
// count from the path's start.
type GraphPath struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// GraphStatsRequest asks for the size of a namespace.
type GraphStatsRequest struct {
	Namespace string `json:"namespace"`
}

// GraphStatsResponse sizes a namespace; a namespace nothing was merged into
// has all zeros.
type GraphStatsResponse struct {
	Namespace   string `json:"namespace"`
	Documents   int    `json:"documents"`
	Chunks      int    `json:"chunks"`
	Entities    int    `json:"entities"`
	Relations   int    `json:"relations"`
	Communities int    `json:"communities"`
	// Generation changes whenever the namespace's graph changes;
	// CommunitiesGeneration is the generation the communities were built
	// from, when the store records it. Communities are up to date when
	// the two are equal.
	Generation            uint64 `json:"generation"`
	CommunitiesGeneration uint64 `json:"communities_generation"`
	// CommunitiesStale: the graph changed since the communities and their
	// reports were built (a rebuild waits for the namespace to be quiet;
	// KG_COMMUNITY_QUIET_PERIOD). CommunitiesBuiltAt is when they were
	// last built, absent if never (or before kgraph recorded it).
	CommunitiesStale   bool       `json:"communities_stale"`
	CommunitiesBuiltAt *time.Time `json:"communities_built_at,omitempty"`
}

// QueryCacheClearRequest deletes a namespace's cached answers.
type QueryCacheClearRequest struct {
	Namespace string `json:"namespace"`
}

// QueryCacheClearResponse says how many cached answers were deleted.
type QueryCacheClearResponse struct {
	Namespace string `json:"namespace"`
	Deleted   int    `json:"deleted"`
}
