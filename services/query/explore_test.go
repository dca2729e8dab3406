package query_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/services/query"
)

// requireStatus checks that err is a *query.Error with the status.
func requireStatus(t *testing.T, err error, status int) {
	t.Helper()
	var qe *query.Error
	require.ErrorAs(t, err, &qe)
	require.Equal(t, status, qe.Status, qe.Msg)
	require.NotEmpty(t, qe.Msg)
}

func TestSearchEntities(t *testing.T) {
	s := newStores(t)
	svc := s.service(query.Config{}, nil)
	ctx := context.Background()

	res, err := svc.SearchEntities(ctx, events.GraphSearchRequest{Namespace: "books", Q: "lovelace"})
	require.NoError(t, err)
	require.Equal(t, events.GraphSearchResponse{Namespace: "books", Entities: []events.GraphEntity{{
		Key: "ADA LOVELACE", Name: "Ada Lovelace", Type: "PERSON", Description: "English mathematician.\nWrote notes on the engine.",
		Mentions: 1, ChunkIDs: []string{chunkAda},
	}}}, res)

	// Babbage and the engine are mentioned twice, the others once.
	res, err = svc.SearchEntities(ctx, events.GraphSearchRequest{Namespace: "books", Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"ANALYTICAL ENGINE", "CHARLES BABBAGE", "ADA LOVELACE"}, entityKeys(res.Entities))

	res, err = svc.SearchEntities(ctx, events.GraphSearchRequest{Namespace: "books", Q: "nobody"})
	require.NoError(t, err)
	require.Equal(t, []events.GraphEntity{}, res.Entities)

	res, err = svc.SearchEntities(ctx, events.GraphSearchRequest{Q: "lovelace"})
	require.NoError(t, err)
	require.Equal(t, events.DefaultNamespace, res.Namespace)
	require.Empty(t, res.Entities)

	invalid := []events.GraphSearchRequest{
		{Namespace: "books", Limit: events.MaxGraphSearchLimit + 1},
		{Namespace: "books", Limit: -1},
		{Namespace: "no.dots"},
		{Namespace: "-leading-dash"},
		{Namespace: strings.Repeat("n", events.MaxNamespaceLen+1)},
		{Namespace: "books", Q: strings.Repeat("q", events.MaxEntityNameLen+1)},
	}
	for _, req := range invalid {
		_, err := svc.SearchEntities(ctx, req)
		requireStatus(t, err, 422)
	}
}

func entityKeys(es []events.GraphEntity) []string {
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

func TestEntity(t *testing.T) {
	s := newStores(t)
	svc := s.service(query.Config{}, nil)
	ctx := context.Background()

	res, err := svc.Entity(ctx, events.GraphEntityRequest{Namespace: "books", NameOrKey: " charles  babbage "})
	require.NoError(t, err)
	require.Equal(t, events.GraphEntityResponse{
		Namespace: "books",
		Entity: events.GraphEntity{Key: "CHARLES BABBAGE", Name: "Charles Babbage", Type: "PERSON",
			Description: "Inventor of calculating machines.", Mentions: 2, ChunkIDs: []string{chunkAda, chunkEngine}},
		Relations: []events.GraphRelation{
			{Source: "ANALYTICAL ENGINE", Target: "CHARLES BABBAGE", Description: "designed", Keywords: []string{},
				Weight: 3, Mentions: 1, ChunkIDs: []string{chunkEngine}},
			{Source: "ADA LOVELACE", Target: "CHARLES BABBAGE", Description: "worked with", Keywords: []string{},
				Weight: 2, Mentions: 1, ChunkIDs: []string{chunkAda}},
		},
		Neighbors: []events.GraphNode{
			{Key: "ANALYTICAL ENGINE", Name: "Analytical Engine", Type: "MACHINE", Mentions: 2, Depth: 1},
			{Key: "ADA LOVELACE", Name: "Ada Lovelace", Type: "PERSON", Mentions: 1, Depth: 1},
		},
	}, res)

	res, err = svc.Entity(ctx, events.GraphEntityRequest{Namespace: "books", NameOrKey: "CHARLES BABBAGE", RelationsLimit: 1})
	require.NoError(t, err)
	require.True(t, res.RelationsTruncated)
	require.Len(t, res.Relations, 1)
	require.Equal(t, "ANALYTICAL ENGINE", res.Relations[0].Source, "the heaviest relation")
	require.Equal(t, []string{"ANALYTICAL ENGINE"}, nodeKeys(res.Neighbors))

	res, err = svc.Entity(ctx, events.GraphEntityRequest{Namespace: "books", NameOrKey: "London", RelationsLimit: 1})
	require.NoError(t, err)
	require.False(t, res.RelationsTruncated, "exactly as many relations as the limit")
	require.Len(t, res.Relations, 1)

	_, err = svc.Entity(ctx, events.GraphEntityRequest{Namespace: "books", NameOrKey: "Fezziwig"})
	requireStatus(t, err, 404)
	_, err = svc.Entity(ctx, events.GraphEntityRequest{NameOrKey: "Charles Babbage"})
	requireStatus(t, err, 404) // not in the default namespace

	for _, req := range []events.GraphEntityRequest{
		{Namespace: "books", NameOrKey: ""},
		{Namespace: "books", NameOrKey: ` "" `},
		{Namespace: "books", NameOrKey: "Ada Lovelace", RelationsLimit: events.MaxRelationsLimit + 1},
		{Namespace: "bad ns", NameOrKey: "Ada Lovelace"},
	} {
		_, err := svc.Entity(ctx, req)
		requireStatus(t, err, 422)
	}
}

func nodeKeys(ns []events.GraphNode) []string {
	keys := make([]string, len(ns))
	for i, n := range ns {
		keys[i] = n.Key
	}
	return keys
}

const pathsNS = "paths"

// pathsGraph is a small graph for subgraphs and paths:
//
//	A -5- B -2- D -1- E -1- F     X -1- Y
//	 \    |    /
//	  3   1   4
//	   \  |  /
//	      C
func pathsGraph(t *testing.T, edges ...events.Relation) *sqlitegraph.Store {
	t.Helper()
	g, err := sqlitegraph.Open(context.Background(), filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Close()) })
	if edges == nil {
		edges = []events.Relation{
			{Source: "A", Target: "B", Weight: 5, Description: "a-b"}, {Source: "A", Target: "C", Weight: 3},
			{Source: "B", Target: "C", Weight: 1}, {Source: "B", Target: "D", Weight: 2}, {Source: "C", Target: "D", Weight: 4},
			{Source: "D", Target: "E", Weight: 1}, {Source: "E", Target: "F", Weight: 1}, {Source: "X", Target: "Y", Weight: 1},
		}
	}
	var es []events.Entity
	for _, r := range edges {
		for _, name := range []string{r.Source, r.Target} {
			if !slices.ContainsFunc(es, func(e events.Entity) bool { return e.Name == name }) {
				es = append(es, events.Entity{Name: name, Type: "NODE"})
			}
		}
	}
	_, err = g.MergeChunk(context.Background(), graph.ChunkGraph{Namespace: pathsNS, DocID: "d", JobID: "j", ChunkID: chunkAda,
		Text: "a graph", Entities: es, Relations: edges})
	require.NoError(t, err)
	return g
}

func pathsService(g query.Graph) *query.Service {
	return query.New(query.Config{}, nil, discardLogger(), nil, nil, g)
}

func edgeKeys(es []events.GraphEdge) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s-%s:%g", e.Source, e.Target, e.Weight)
	}
	return out
}

func nodeDepths(ns []events.GraphNode) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = fmt.Sprintf("%s@%d", n.Key, n.Depth)
	}
	return out
}

func TestSubgraph(t *testing.T) {
	svc := pathsService(pathsGraph(t))
	ctx := context.Background()
	tests := []struct {
		name      string
		req       events.GraphSubgraphRequest
		nodes     []string
		edges     []string
		truncated bool
	}{
		{
			name: "one hop, with the relations among the neighbours",
			req:  events.GraphSubgraphRequest{Entity: "a"},
			// The default depth is 1.
			nodes: []string{"A@0", "B@1", "C@1"},
			edges: []string{"A-B:5", "A-C:3", "B-C:1"},
		},
		{
			name:  "two hops",
			req:   events.GraphSubgraphRequest{Entity: "A", Depth: 2},
			nodes: []string{"A@0", "B@1", "C@1", "D@2"},
			edges: []string{"A-B:5", "C-D:4", "A-C:3", "B-D:2", "B-C:1"},
		},
		{
			name:      "max nodes keeps the nodes of the heaviest relations",
			req:       events.GraphSubgraphRequest{Entity: "D", MaxNodes: 3},
			nodes:     []string{"D@0", "C@1", "B@1"},
			edges:     []string{"C-D:4", "B-D:2", "B-C:1"},
			truncated: true,
		},
		{
			name:  "whole component",
			req:   events.GraphSubgraphRequest{Entity: "F", Depth: 3, MaxNodes: 500},
			nodes: []string{"F@0", "E@1", "D@2", "C@3", "B@3"},
			edges: []string{"C-D:4", "B-D:2", "B-C:1", "D-E:1", "E-F:1"},
		},
		{
			name:  "max nodes exactly reached is not truncation",
			req:   events.GraphSubgraphRequest{Entity: "X", MaxNodes: 2},
			nodes: []string{"X@0", "Y@1"},
			edges: []string{"X-Y:1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Namespace = pathsNS
			res, err := svc.Subgraph(ctx, tc.req)
			require.NoError(t, err)
			require.Equal(t, pathsNS, res.Namespace)
			require.Equal(t, tc.nodes[0][:1], res.Root)
			require.Equal(t, tc.nodes, nodeDepths(res.Nodes))
			require.Equal(t, tc.edges, edgeKeys(res.Edges))
			require.Equal(t, tc.truncated, res.Truncated)
		})
	}

	res, err := svc.Subgraph(ctx, events.GraphSubgraphRequest{Namespace: pathsNS, Entity: "A"})
	require.NoError(t, err)
	require.Equal(t, events.GraphNode{Key: "A", Name: "A", Type: "NODE", Mentions: 1}, res.Nodes[0])
	require.Equal(t, events.GraphEdge{Source: "A", Target: "B", Description: "a-b", Weight: 5, Mentions: 1}, res.Edges[0])

	_, err = svc.Subgraph(ctx, events.GraphSubgraphRequest{Namespace: pathsNS, Entity: "Nobody"})
	requireStatus(t, err, 404)
	for _, req := range []events.GraphSubgraphRequest{
		{Namespace: pathsNS},
		{Namespace: pathsNS, Entity: "A", Depth: events.MaxSubgraphDepth + 1},
		{Namespace: pathsNS, Entity: "A", Depth: -1},
		{Namespace: pathsNS, Entity: "A", MaxNodes: events.MaxSubgraphMaxNodes + 1},
	} {
		_, err := svc.Subgraph(ctx, req)
		requireStatus(t, err, 422)
	}
}

func TestSubgraphCapsNodes(t *testing.T) {
	// A hub with more neighbours than a subgraph may hold.
	var edges []events.Relation
	for i := range events.MaxSubgraphMaxNodes + 10 {
		edges = append(edges, events.Relation{Source: "Hub", Target: fmt.Sprintf("Spoke %03d", i), Weight: float64(i)})
	}
	svc := pathsService(pathsGraph(t, edges...))
	res, err := svc.Subgraph(context.Background(), events.GraphSubgraphRequest{Namespace: pathsNS, Entity: "hub",
		Depth: events.MaxSubgraphDepth, MaxNodes: events.MaxSubgraphMaxNodes})
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.Len(t, res.Nodes, events.MaxSubgraphMaxNodes)
	require.Len(t, res.Edges, events.MaxSubgraphMaxNodes-1)
	// The heaviest spokes are kept.
	require.Equal(t, fmt.Sprintf("SPOKE %03d", events.MaxSubgraphMaxNodes+9), res.Nodes[1].Key)
	require.Equal(t, "SPOKE 011", res.Nodes[len(res.Nodes)-1].Key)
}

func TestSubgraphCapsEdges(t *testing.T) {
	// A clique of 70: 2415 relations among its nodes, more than a subgraph
	// carries.
	const size = 70
	var edges []events.Relation
	for i := range size {
		for j := i + 1; j < size; j++ {
			edges = append(edges, events.Relation{Source: fmt.Sprintf("N%02d", i), Target: fmt.Sprintf("N%02d", j), Weight: float64(i*size + j)})
		}
	}
	require.Greater(t, len(edges), events.MaxSubgraphEdges)
	svc := pathsService(pathsGraph(t, edges...))
	res, err := svc.Subgraph(context.Background(), events.GraphSubgraphRequest{Namespace: pathsNS, Entity: "N00"})
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.Len(t, res.Nodes, size, "every node is within one hop")
	require.Len(t, res.Edges, events.MaxSubgraphEdges)
	require.Equal(t, fmt.Sprintf("N%02d-N%02d:%d", size-2, size-1, (size-2)*size+size-1), edgeKeys(res.Edges[:1])[0], "the heaviest kept")
	require.True(t, slices.IsSortedFunc(res.Edges, func(a, b events.GraphEdge) int { return cmp.Compare(b.Weight, a.Weight) }))
}

// pathKeys renders paths as "A>B>D".
func pathKeys(t *testing.T, paths []events.GraphPath) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		keys := nodeKeys(p.Nodes)
		out[i] = strings.Join(keys, ">")
		require.Len(t, p.Edges, len(p.Nodes)-1)
		for j, e := range p.Edges {
			require.Equal(t, j, p.Nodes[j].Depth)
			pair := []string{keys[j], keys[j+1]}
			slices.Sort(pair)
			require.Equal(t, pair, []string{e.Source, e.Target}, "edge %d of %s", j, out[i])
			require.NotZero(t, e.Weight)
		}
	}
	return out
}

func TestPaths(t *testing.T) {
	svc := pathsService(pathsGraph(t))
	ctx := context.Background()
	tests := []struct {
		name      string
		req       events.GraphPathsRequest
		paths     []string
		truncated bool
	}{
		{"neighbours", events.GraphPathsRequest{From: "a", To: "b"}, []string{"A>B"}, false},
		{"every shortest path", events.GraphPathsRequest{From: "A", To: "D"}, []string{"A>B>D", "A>C>D"}, false},
		{"reversed", events.GraphPathsRequest{From: "D", To: "A"}, []string{"D>B>A", "D>C>A"}, false},
		{"longest within the default depth", events.GraphPathsRequest{From: "A", To: "F"}, []string{"A>B>D>E>F", "A>C>D>E>F"}, false},
		{"max paths", events.GraphPathsRequest{From: "A", To: "F", MaxPaths: 1}, []string{"A>B>D>E>F"}, true},
		{"max paths exactly reached", events.GraphPathsRequest{From: "F", To: "A", MaxPaths: 2}, []string{"F>E>D>B>A", "F>E>D>C>A"}, false},
		{"longer than max depth", events.GraphPathsRequest{From: "A", To: "F", MaxDepth: 3}, []string{}, false},
		{"exactly max depth", events.GraphPathsRequest{From: "B", To: "F", MaxDepth: 3}, []string{"B>D>E>F"}, false},
		{"another component", events.GraphPathsRequest{From: "A", To: "X"}, []string{}, false},
		{"same entity", events.GraphPathsRequest{From: "e", To: "E"}, []string{"E"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Namespace = pathsNS
			res, err := svc.Paths(ctx, tc.req)
			require.NoError(t, err)
			require.Equal(t, events.EntityKey(tc.req.From), res.From)
			require.Equal(t, events.EntityKey(tc.req.To), res.To)
			require.Equal(t, tc.paths, pathKeys(t, res.Paths))
			require.Equal(t, tc.truncated, res.Truncated)
		})
	}

	res, err := svc.Paths(ctx, events.GraphPathsRequest{Namespace: pathsNS, From: "A", To: "B"})
	require.NoError(t, err)
	require.Equal(t, []events.GraphPath{{
		Nodes: []events.GraphNode{{Key: "A", Name: "A", Type: "NODE", Mentions: 1}, {Key: "B", Name: "B", Type: "NODE", Mentions: 1, Depth: 1}},
		Edges: []events.GraphEdge{{Source: "A", Target: "B", Description: "a-b", Weight: 5, Mentions: 1}},
	}}, res.Paths)

	_, err = svc.Paths(ctx, events.GraphPathsRequest{Namespace: pathsNS, From: "A", To: "Nobody"})
	requireStatus(t, err, 404)
	_, err = svc.Paths(ctx, events.GraphPathsRequest{Namespace: pathsNS, From: "Nobody", To: "A"})
	requireStatus(t, err, 404)
	for _, req := range []events.GraphPathsRequest{
		{Namespace: pathsNS, To: "A"},
		{Namespace: pathsNS, From: "A"},
		{Namespace: pathsNS, From: "A", To: "B", MaxDepth: events.MaxPathMaxDepth + 1},
		{Namespace: pathsNS, From: "A", To: "B", MaxPaths: events.MaxMaxPaths + 1},
		{Namespace: pathsNS, From: "A", To: "B", MaxPaths: -3},
	} {
		_, err := svc.Paths(ctx, req)
		requireStatus(t, err, 422)
	}
}

func TestPathsManyShortest(t *testing.T) {
	// Two layers of 4 between S and T: 16 shortest paths of 3 edges.
	var edges []events.Relation
	for i := range 4 {
		for j := range 4 {
			edges = append(edges, events.Relation{Source: fmt.Sprintf("L%d", i), Target: fmt.Sprintf("M%d", j), Weight: 1})
		}
		edges = append(edges, events.Relation{Source: "S", Target: fmt.Sprintf("L%d", i), Weight: 1},
			events.Relation{Source: fmt.Sprintf("M%d", i), Target: "T", Weight: 1})
	}
	svc := pathsService(pathsGraph(t, edges...))
	res, err := svc.Paths(context.Background(), events.GraphPathsRequest{Namespace: pathsNS, From: "S", To: "T", MaxPaths: events.MaxMaxPaths})
	require.NoError(t, err)
	require.True(t, res.Truncated)
	got := pathKeys(t, res.Paths)
	require.Len(t, got, events.MaxMaxPaths)
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), events.MaxMaxPaths, "distinct paths")
	for _, p := range got {
		require.Regexp(t, `^S>L\d>M\d>T$`, p)
	}
}

// countingGraph counts RelationsOf calls and the keys they expand.
type countingGraph struct {
	query.Graph
	calls, keys int
}

func (g *countingGraph) RelationsOf(ctx context.Context, ns string, keys []string, limit int) ([]graph.Relation, error) {
	g.calls++
	g.keys += len(keys)
	return g.Graph.RelationsOf(ctx, ns, keys, limit)
}

func TestPathsExpandTheSmallerSide(t *testing.T) {
	// A hub with 300 spokes, one of which leads on to a chain: searching
	// from the chain's end, the hub side is never expanded beyond the hub.
	edges := []events.Relation{{Source: "Spoke 000", Target: "C1", Weight: 1}, {Source: "C1", Target: "C2", Weight: 1}}
	for i := range 300 {
		edges = append(edges, events.Relation{Source: "Hub", Target: fmt.Sprintf("Spoke %03d", i), Weight: 1})
	}
	g := &countingGraph{Graph: pathsGraph(t, edges...)}
	res, err := pathsService(g).Paths(context.Background(), events.GraphPathsRequest{Namespace: pathsNS, From: "Hub", To: "C2"})
	require.NoError(t, err)
	require.Equal(t, []string{"HUB>SPOKE 000>C1>C2"}, pathKeys(t, res.Paths))
	require.Equal(t, 3, g.calls)
	require.Equal(t, 3, g.keys, "the hub's 300 spokes are never a frontier")
}

func TestStats(t *testing.T) {
	s := newStores(t)
	ctx := context.Background()
	svc := pathsService(s.graph)

	gen, err := s.graph.Generation(ctx, "books")
	require.NoError(t, err)
	require.NotZero(t, gen)
	res, err := svc.Stats(ctx, events.GraphStatsRequest{Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.GraphStatsResponse{Namespace: "books", Documents: 2, Chunks: 3, Entities: 5, Relations: 4,
		Generation: gen, CommunitiesStale: true}, res, "never built: stale, no build time")

	// Communities of every level count; a merge since they were built
	// shows as a newer generation.
	before := time.Now().Truncate(time.Millisecond)
	require.NoError(t, s.graph.ReplaceCommunities(ctx, "books", gen, []graph.Community{
		{ID: "c0", Keys: []string{"LONDON", "THAMES"}}, {ID: "c1", Level: 1, Parent: "c0", Keys: []string{"THAMES"}},
	}))
	res, err = svc.Stats(ctx, events.GraphStatsRequest{Namespace: "books"})
	require.NoError(t, err)
	require.False(t, res.CommunitiesStale, "built from the graph as it is")
	require.NotNil(t, res.CommunitiesBuiltAt)
	builtAt := *res.CommunitiesBuiltAt
	require.WithinRange(t, builtAt, before, time.Now())
	_, err = s.graph.MergeChunk(ctx, graph.ChunkGraph{Namespace: "books", DocID: "more", JobID: "j", ChunkID: chunkAda,
		Text: "Paris.", Entities: []events.Entity{{Name: "Paris", Type: "PLACE"}}})
	require.NoError(t, err)
	res, err = svc.Stats(ctx, events.GraphStatsRequest{Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.GraphStatsResponse{Namespace: "books", Documents: 3, Chunks: 4, Entities: 6, Relations: 4,
		Communities: 2, Generation: gen + 1, CommunitiesGeneration: gen, CommunitiesStale: true, CommunitiesBuiltAt: &builtAt}, res)

	res, err = svc.Stats(ctx, events.GraphStatsRequest{})
	require.NoError(t, err)
	require.Equal(t, events.GraphStatsResponse{Namespace: events.DefaultNamespace}, res)

	_, err = svc.Stats(ctx, events.GraphStatsRequest{Namespace: "a/b"})
	requireStatus(t, err, 422)
}

// Keys and Delete make memCache a cache the service can clear.
func (c *memCache) Keys(_ context.Context, prefix string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (c *memCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

func (c *memCache) keys() []string {
	keys, _ := c.Keys(context.Background(), "")
	return keys
}

// getPutCache hides Keys and Delete.
type getPutCache struct{ query.Cache }

// failingDeleteCache fails deletes.
type failingDeleteCache struct{ *memCache }

func (failingDeleteCache) Delete(context.Context, string) error { return errors.New("bucket gone") }

func TestClearCache(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	chat := newFakeChat()
	cache := newMemCache()
	svc := llmService(g, s, searcher, chat, query.WithCache(cache))
	ctx := context.Background()
	ask := func(t *testing.T, ns, question string) events.QueryResponse {
		t.Helper()
		res, err := svc.Answer(ctx, events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: ns})
		require.NoError(t, err)
		return res
	}
	ask(t, "books", "What did Babbage build?")
	ask(t, "books", "Who was Ada?")
	ask(t, "books-2", "What did Babbage build?")
	keys := cache.keys()
	require.Len(t, keys, 3)
	for _, k := range keys {
		require.Regexp(t, `^v2\.books(-2)?\.[0-9a-f]{64}$`, k)
	}
	require.True(t, ask(t, "books", "What did Babbage build?").Cached)

	res, err := svc.ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.QueryCacheClearResponse{Namespace: "books", Deleted: 2}, res)
	require.Len(t, cache.keys(), 1, "another namespace, even one whose name starts the same, keeps its answers")
	require.True(t, strings.HasPrefix(cache.keys()[0], "v2.books-2."))

	calls := len(chat.recorded())
	require.False(t, ask(t, "books", "What did Babbage build?").Cached)
	require.Len(t, chat.recorded(), calls+1)
	require.True(t, ask(t, "books-2", "What did Babbage build?").Cached)

	res, err = svc.ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, 1, res.Deleted)
	res, err = svc.ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
	require.NoError(t, err)
	require.Zero(t, res.Deleted)
	res, err = svc.ClearCache(ctx, events.QueryCacheClearRequest{})
	require.NoError(t, err)
	require.Equal(t, events.QueryCacheClearResponse{Namespace: events.DefaultNamespace}, res)

	_, err = svc.ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books.*"})
	requireStatus(t, err, 422)

	t.Run("a namespace that cannot be a key token is not cached", func(t *testing.T) {
		before := cache.size()
		ask(t, "books.x", "What did Babbage build?")
		require.Equal(t, before, cache.size())
	})

	t.Run("no cache", func(t *testing.T) {
		res, err := llmService(g, s, searcher, chat).ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
		require.NoError(t, err)
		require.Equal(t, events.QueryCacheClearResponse{Namespace: "books"}, res)
	})

	t.Run("a cache that cannot list keys", func(t *testing.T) {
		_, err := llmService(g, s, searcher, chat, query.WithCache(getPutCache{cache})).
			ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
		requireStatus(t, err, 501)
	})

	t.Run("a failing cache", func(t *testing.T) {
		ask(t, "books", "What did Babbage build?")
		_, err := llmService(g, s, searcher, chat, query.WithCache(failingDeleteCache{cache})).
			ClearCache(ctx, events.QueryCacheClearRequest{Namespace: "books"})
		requireStatus(t, err, 503)
	})
}

// askSubject sends a request to subject and returns the micro error code
// ("" for an answer) and the data or error description. The graph
// endpoints are added just after the query endpoint run waits for, hence
// the retry on no responders.
func askSubject(t *testing.T, nc *nats.Conn, subject string, req any) (code, body string) {
	t.Helper()
	data, ok := req.([]byte)
	if !ok {
		var err error
		data, err = json.Marshal(req)
		require.NoError(t, err)
	}
	var m *nats.Msg
	// No responders only means the service has not subscribed yet; any
	// other error fails the test at once, from the test's goroutine.
	var fatal error
	require.Eventually(t, func() bool {
		var err error
		m, err = nc.Request(subject, data, 10*time.Second)
		if err != nil && !errors.Is(err, nats.ErrNoResponders) {
			fatal = err
		}
		return err == nil || fatal != nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, fatal, "request")
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		return code, m.Header.Get(micro.ErrorHeader)
	}
	return "", string(m.Data)
}

func TestExploreOverNATS(t *testing.T) {
	env := startNATS(t)
	s := newStores(t)
	cache := newMemCache()
	require.NoError(t, func() error { _, err := cache.Put(context.Background(), "v2.books.cafe", []byte("{}")); return err }())
	gen, err := s.graph.Generation(context.Background(), "books")
	require.NoError(t, err)
	require.NoError(t, s.graph.ReplaceCommunities(context.Background(), "books", gen, []graph.Community{{ID: "c0", Keys: []string{"THAMES"}}}))
	run(t, env, query.New(query.Config{}, env.nc, discardLogger(), s.embed, s.vectors, s.graph, query.WithCache(cache)))

	decode := func(t *testing.T, body string, v any) {
		t.Helper()
		require.NoError(t, json.Unmarshal([]byte(body), v), body)
	}
	code, body := askSubject(t, env.nc, events.GraphSearchSubject, events.GraphSearchRequest{Namespace: "books", Q: "babbage"})
	require.Empty(t, code, body)
	var search events.GraphSearchResponse
	decode(t, body, &search)
	require.Equal(t, []string{"CHARLES BABBAGE"}, entityKeys(search.Entities))
	require.Contains(t, body, `"chunk_ids":[`)

	code, body = askSubject(t, env.nc, events.GraphEntitySubject, events.GraphEntityRequest{Namespace: "books", NameOrKey: "Thames"})
	require.Empty(t, code, body)
	var entity events.GraphEntityResponse
	decode(t, body, &entity)
	require.Equal(t, "THAMES", entity.Entity.Key)
	require.Equal(t, []string{"LONDON"}, nodeKeys(entity.Neighbors))

	code, body = askSubject(t, env.nc, events.GraphSubgraphSubject, events.GraphSubgraphRequest{Namespace: "books", Entity: "Thames"})
	require.Empty(t, code, body)
	var sub events.GraphSubgraphResponse
	decode(t, body, &sub)
	require.Equal(t, []string{"THAMES@0", "LONDON@1"}, nodeDepths(sub.Nodes))

	code, body = askSubject(t, env.nc, events.GraphPathsSubject, events.GraphPathsRequest{Namespace: "books", From: "Ada Lovelace", To: "Analytical Engine"})
	require.Empty(t, code, body)
	var paths events.GraphPathsResponse
	decode(t, body, &paths)
	require.Equal(t, []string{"ADA LOVELACE>ANALYTICAL ENGINE"}, pathKeys(t, paths.Paths))

	code, body = askSubject(t, env.nc, events.GraphStatsSubject, events.GraphStatsRequest{Namespace: "books"})
	require.Empty(t, code, body)
	var stats events.GraphStatsResponse
	decode(t, body, &stats)
	require.NotNil(t, stats.CommunitiesBuiltAt)
	stats.CommunitiesBuiltAt = nil
	require.Equal(t, events.GraphStatsResponse{Namespace: "books", Documents: 2, Chunks: 3, Entities: 5, Relations: 4,
		Communities: 1, Generation: gen, CommunitiesGeneration: gen}, stats)

	code, body = askSubject(t, env.nc, events.QueryCacheClearSubject, events.QueryCacheClearRequest{Namespace: "books"})
	require.Empty(t, code, body)
	require.JSONEq(t, `{"namespace": "books", "deleted": 1}`, body)

	errorCases := []struct {
		name    string
		subject string
		req     any
		code    string
	}{
		{"malformed", events.GraphSearchSubject, []byte(`{"q":`), "400"},
		{"wrong type", events.GraphEntitySubject, []byte(`{"name_or_key": 7}`), "400"},
		{"unknown entity", events.GraphEntitySubject, events.GraphEntityRequest{Namespace: "books", NameOrKey: "Fezziwig"}, "404"},
		{"unknown root", events.GraphSubgraphSubject, events.GraphSubgraphRequest{Namespace: "books", Entity: "Fezziwig"}, "404"},
		{"unknown endpoint", events.GraphPathsSubject, events.GraphPathsRequest{Namespace: "books", From: "Thames", To: "Fezziwig"}, "404"},
		{"limit", events.GraphSearchSubject, events.GraphSearchRequest{Limit: 1000}, "422"},
		{"depth", events.GraphSubgraphSubject, events.GraphSubgraphRequest{Namespace: "books", Entity: "Thames", Depth: 4}, "422"},
		{"max_depth", events.GraphPathsSubject, events.GraphPathsRequest{From: "a", To: "b", MaxDepth: 7}, "422"},
		{"namespace", events.GraphStatsSubject, events.GraphStatsRequest{Namespace: "x.>"}, "422"},
		{"cache namespace", events.QueryCacheClearSubject, events.QueryCacheClearRequest{Namespace: "*"}, "422"},
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			code, desc := askSubject(t, env.nc, c.subject, c.req)
			require.Equal(t, c.code, code, desc)
			require.NotEmpty(t, desc)
		})
	}
}
