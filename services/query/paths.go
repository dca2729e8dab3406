package query

import (
	"context"
	"fmt"
	"slices"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// maxPathVisited bounds a path search: once both searches together have
// reached this many entities without meeting, it gives up (truncated), as a
// graph that dense around the endpoints would take too long to search.
const maxPathVisited = 20_000

// bfsSide is one of the two breadth-first searches of a path search.
type bfsSide struct {
	// dist is the distance from the root of every entity reached.
	dist map[string]int
	// parents are every neighbour one step closer to the root, so all
	// shortest paths can be walked back.
	parents  map[string][]string
	frontier []string
	depth    int
}

func newBFSSide(root string) *bfsSide {
	return &bfsSide{dist: map[string]int{root: 0}, parents: map[string][]string{}, frontier: []string{root}}
}

// expand takes the search one level further along rels (the relations of
// the frontier) and returns the entities it reached first.
func (b *bfsSide) expand(rels []graph.Relation) []string {
	var next []string
	for _, r := range rels {
		for _, e := range [][2]string{{r.Source, r.Target}, {r.Target, r.Source}} {
			from, to := e[0], e[1]
			if d, ok := b.dist[from]; !ok || d != b.depth {
				continue // from is not on the frontier
			}
			switch d, ok := b.dist[to]; {
			case !ok:
				b.dist[to] = b.depth + 1
				b.parents[to] = []string{from}
				next = append(next, to)
			case d == b.depth+1:
				b.parents[to] = append(b.parents[to], from)
			}
		}
	}
	b.depth++
	b.frontier = next
	return next
}

// walk calls yield with every path from key back to the root (key first),
// in the order of the sorted parents, until yield returns false; path is
// reused between calls.
func (b *bfsSide) walk(key string, path []string, yield func([]string) bool) bool {
	path = append(path, key)
	parents := b.parents[key]
	if len(parents) == 0 {
		return yield(path)
	}
	slices.Sort(parents)
	for _, p := range parents {
		if !b.walk(p, path, yield) {
			return false
		}
	}
	return true
}

// Paths returns the shortest paths between two entities, found by a
// bidirectional breadth-first search: each step expands the smaller
// frontier by one level (one RelationsOf), so the searches meet after
// reaching far fewer entities than one search from either end would.
func (s *Service) Paths(ctx context.Context, req events.GraphPathsRequest) (events.GraphPathsResponse, error) {
	ns, err := namespaceOf(req.Namespace)
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	from, err := entityKeyOf("from", req.From)
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	to, err := entityKeyOf("to", req.To)
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	maxDepth, err := bounded("max_depth", req.MaxDepth, events.DefaultPathMaxDepth, events.MaxPathMaxDepth)
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	maxPaths, err := bounded("max_paths", req.MaxPaths, events.DefaultMaxPaths, events.MaxMaxPaths)
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	if _, err := s.entity(ctx, ns, "from", from); err != nil {
		return events.GraphPathsResponse{}, err
	}
	if _, err := s.entity(ctx, ns, "to", to); err != nil {
		return events.GraphPathsResponse{}, err
	}
	res := events.GraphPathsResponse{Namespace: ns, From: from, To: to, Paths: []events.GraphPath{}}
	if from == to {
		return s.pathsOf(ctx, res, [][]string{{from}}, nil)
	}

	fw, bw := newBFSSide(from), newBFSSide(to)
	seen := map[[2]string]graph.Relation{}
	var meet []string
	for fw.depth+bw.depth < maxDepth && len(fw.frontier) > 0 && len(bw.frontier) > 0 {
		side, other := fw, bw
		if len(bw.frontier) < len(fw.frontier) {
			side, other = bw, fw
		}
		rels, err := s.graph.RelationsOf(ctx, ns, side.frontier, 0)
		if err != nil {
			return events.GraphPathsResponse{}, fmt.Errorf("expand %d entities: %w", len(side.frontier), err)
		}
		for _, r := range rels {
			seen[[2]string{r.Source, r.Target}] = r
		}
		for _, key := range side.expand(rels) {
			if _, ok := other.dist[key]; ok {
				meet = append(meet, key)
			}
		}
		if len(meet) > 0 {
			break
		}
		if len(fw.dist)+len(bw.dist) > maxPathVisited {
			res.Truncated = true
			return res, nil
		}
	}
	if len(meet) == 0 {
		return res, nil // no path of at most max_depth edges
	}

	// The searches met at the first level where they touch, so every
	// shortest path runs through exactly one of the entities they met at:
	// each path is a walk back to from joined to a walk on to to.
	slices.Sort(meet)
	var paths [][]string
	enough := func() bool { return len(paths) > maxPaths }
	for _, m := range meet {
		fw.walk(m, nil, func(back []string) bool {
			head := slices.Clone(back)
			slices.Reverse(head) // from ... m
			bw.walk(m, nil, func(tail []string) bool {
				paths = append(paths, append(slices.Clone(head), tail[1:]...))
				return !enough()
			})
			return !enough()
		})
		if enough() {
			break
		}
	}
	if len(paths) > maxPaths {
		paths, res.Truncated = paths[:maxPaths], true
	}
	return s.pathsOf(ctx, res, paths, seen)
}

// pathsOf fills res with the paths (of keys) as nodes and edges.
func (s *Service) pathsOf(ctx context.Context, res events.GraphPathsResponse, paths [][]string, rels map[[2]string]graph.Relation) (events.GraphPathsResponse, error) {
	var keys []string
	for _, p := range paths {
		keys = append(keys, p...)
	}
	nodes, err := s.nodes(ctx, res.Namespace, keys, func(string) int { return 0 })
	if err != nil {
		return events.GraphPathsResponse{}, err
	}
	byKey := make(map[string]events.GraphNode, len(nodes))
	for _, n := range nodes {
		byKey[n.Key] = n
	}
	for _, p := range paths {
		path := events.GraphPath{Nodes: make([]events.GraphNode, 0, len(p)), Edges: make([]events.GraphEdge, 0, len(p)-1)}
		complete := true
		for i, key := range p {
			n, ok := byKey[key]
			if !ok { // deleted while searching
				complete = false
				break
			}
			n.Depth = i
			path.Nodes = append(path.Nodes, n)
			if i > 0 {
				pair := [2]string{min(p[i-1], key), max(p[i-1], key)}
				path.Edges = append(path.Edges, graphEdge(rels[pair]))
			}
		}
		if complete {
			res.Paths = append(res.Paths, path)
		}
	}
	return res, nil
}
