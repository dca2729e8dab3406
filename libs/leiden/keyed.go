package leiden

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Edge is a weighted undirected edge between two string-keyed nodes, such as
// a relation between two entity keys. Source == Target is a self-loop.
type Edge struct {
	Source, Target string
	Weight         float64
}

// KeyedCommunity is a Community whose members are keys instead of node ids.
type KeyedCommunity struct {
	ID       int
	Level    int
	Parent   int // -1 at level 0
	Children []int
	Keys     []string // ascending
}

// KeyedGraph builds a graph from string-keyed edges as they stream in, for
// graphs too large to hold as a slice of Edge: it keeps every distinct key
// once and every edge as two int32 node ids and a weight (16 bytes), so a
// caller reading edges from a store never holds them all as strings. Use it
// once: Hierarchical hands its memory to the clustering.
type KeyedGraph struct {
	ids   map[string]int32
	keys  []string // by id, in order of first appearance
	edges []edge   // ids in order of first appearance
}

// NewKeyedGraph returns an empty KeyedGraph.
func NewKeyedGraph() *KeyedGraph {
	return &KeyedGraph{ids: map[string]int32{}}
}

// AddNode adds key as a node, isolated unless an edge names it too.
func (k *KeyedGraph) AddNode(key string) error {
	_, err := k.id(key)
	return err
}

// AddEdge adds e; parallel edges accumulate. It refuses a negative, NaN or
// infinite weight.
func (k *KeyedGraph) AddEdge(e Edge) error {
	if e.Weight < 0 || math.IsNaN(e.Weight) || math.IsInf(e.Weight, 0) {
		return fmt.Errorf("leiden: edge %q–%q: invalid weight %v", e.Source, e.Target, e.Weight)
	}
	u, err := k.id(e.Source)
	if err != nil {
		return err
	}
	v, err := k.id(e.Target)
	if err != nil {
		return err
	}
	if e.Weight != 0 {
		k.edges = append(k.edges, edge{u: u, v: v, w: e.Weight})
	}
	return nil
}

func (k *KeyedGraph) id(key string) (int32, error) {
	if id, ok := k.ids[key]; ok {
		return id, nil
	}
	if len(k.keys) == math.MaxInt32 {
		return 0, fmt.Errorf("leiden: more than %d nodes", math.MaxInt32)
	}
	id := int32(len(k.keys))
	k.ids[key] = id
	k.keys = append(k.keys, key)
	return id, nil
}

// Hierarchical runs Hierarchical on the graph built so far. Keys are
// numbered in sorted order and edges summed in sorted order, so the result
// depends only on the set of keys and edges, not on the order they were
// added in. The KeyedGraph is empty afterwards.
func (k *KeyedGraph) Hierarchical(opt HierOptions) ([]KeyedCommunity, error) {
	if err := opt.Options.withDefaults().check(); err != nil {
		return nil, err
	}
	keys, edges := k.keys, k.edges
	k.ids, k.keys, k.edges = map[string]int32{}, nil, nil

	// Renumber in key order, in place: rank[first-appearance id] = sorted id.
	order := make([]int32, len(keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(keys[a], keys[b]) })
	rank := make([]int32, len(keys))
	for sorted, first := range order {
		rank[first] = int32(sorted)
	}
	sortedKeys := make([]string, len(keys))
	for first, sorted := range rank {
		sortedKeys[sorted] = keys[first]
	}
	for i, e := range edges {
		u, v := rank[e.u], rank[e.v]
		edges[i] = edge{u: min(u, v), v: max(u, v), w: e.w}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		return cmp.Or(cmp.Compare(a.u, b.u), cmp.Compare(a.v, b.v), cmp.Compare(a.w, b.w))
	})

	// Nothing refers to the edge list once it is compiled (keys, rank and
	// edges are dead from here on), so the clustering holds only the
	// compact network.
	g := &Graph{n: len(sortedKeys), edges: edges}
	net := g.compile()
	communities := hierarchical(net, opt)
	out := make([]KeyedCommunity, len(communities))
	for i, c := range communities {
		members := make([]string, len(c.Nodes))
		for j, n := range c.Nodes {
			members[j] = sortedKeys[n]
		}
		out[i] = KeyedCommunity{ID: c.ID, Level: c.Level, Parent: c.Parent, Children: c.Children, Keys: members}
	}
	return out, nil
}

// HierarchicalKeys runs Hierarchical on the graph made of edges plus the
// given nodes (which may repeat keys from edges; keys only in nodes become
// isolated nodes, each a community of its own). Parallel edges accumulate.
// Keys are numbered in sorted order and edges summed in sorted order, so the
// result depends only on the set of keys and edges, not on slice order.
func HierarchicalKeys(nodes []string, edges []Edge, opt HierOptions) ([]KeyedCommunity, error) {
	k := NewKeyedGraph()
	for _, n := range nodes {
		if err := k.AddNode(n); err != nil {
			return nil, err
		}
	}
	for _, e := range edges {
		if err := k.AddEdge(e); err != nil {
			return nil, err
		}
	}
	return k.Hierarchical(opt)
}
