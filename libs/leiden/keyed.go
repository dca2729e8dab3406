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

// HierarchicalKeys runs Hierarchical on the graph made of edges plus the
// given nodes (which may repeat keys from edges; keys only in nodes become
// isolated nodes, each a community of its own). Parallel edges accumulate.
// Keys are numbered in sorted order and edges summed in sorted order, so the
// result depends only on the set of keys and edges, not on slice order.
func HierarchicalKeys(nodes []string, edges []Edge, opt HierOptions) ([]KeyedCommunity, error) {
	if err := opt.Options.withDefaults().check(); err != nil {
		return nil, err
	}
	for _, e := range edges {
		if e.Weight < 0 || math.IsNaN(e.Weight) || math.IsInf(e.Weight, 0) {
			return nil, fmt.Errorf("leiden: edge %q–%q: invalid weight %v", e.Source, e.Target, e.Weight)
		}
	}
	keys := make([]string, 0, len(nodes)+2*len(edges))
	keys = append(keys, nodes...)
	for _, e := range edges {
		keys = append(keys, e.Source, e.Target)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	id := make(map[string]int, len(keys))
	for i, k := range keys {
		id[k] = i
	}

	type idEdge struct {
		u, v int
		w    float64
	}
	byID := make([]idEdge, len(edges))
	for i, e := range edges {
		u, v := id[e.Source], id[e.Target]
		byID[i] = idEdge{u: min(u, v), v: max(u, v), w: e.Weight}
	}
	slices.SortFunc(byID, func(a, b idEdge) int {
		return cmp.Or(cmp.Compare(a.u, b.u), cmp.Compare(a.v, b.v), cmp.Compare(a.w, b.w))
	})
	g := NewGraph(len(keys))
	for _, e := range byID {
		g.AddEdge(e.u, e.v, e.w)
	}

	communities := Hierarchical(g, opt)
	out := make([]KeyedCommunity, len(communities))
	for i, c := range communities {
		members := make([]string, len(c.Nodes))
		for j, n := range c.Nodes {
			members[j] = keys[n]
		}
		out[i] = KeyedCommunity{ID: c.ID, Level: c.Level, Parent: c.Parent, Children: c.Children, Keys: members}
	}
	return out, nil
}
