package provenance

import (
	"cmp"
	"slices"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// Neighbour is one relation of an entity as a store reads it for ranking:
// the other endpoint, the relation's summed weight and the other
// endpoint's degree.
type Neighbour struct {
	Key    string
	Weight float64
	Degree int
}

// RankNeighbours orders key's neighbours by degree, then weight, then key,
// keeps at most perKey of them (all when perKey <= 0), and appends their
// relations to out as ranked edges (rank: degree plus key's own degree),
// skipping relations already in seen, which it updates. Both stores rank
// with it, so they agree on the order and the cut.
func RankNeighbours(out []graph.RankedEdge, seen map[RelationKey]bool, key string, own int, neighbours []Neighbour, perKey int) []graph.RankedEdge {
	slices.SortFunc(neighbours, func(a, b Neighbour) int {
		return cmp.Or(cmp.Compare(b.Degree, a.Degree), cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Key, b.Key))
	})
	if perKey > 0 && len(neighbours) > perKey {
		neighbours = neighbours[:perKey]
	}
	for _, n := range neighbours {
		k := RelationKey{Src: min(key, n.Key), Dst: max(key, n.Key)}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, graph.RankedEdge{Source: k.Src, Target: k.Dst, Weight: n.Weight, Rank: own + n.Degree})
	}
	return out
}
