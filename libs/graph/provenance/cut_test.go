package provenance_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
)

// TestRankCutKeepsEveryEdgeTopEdgesKeeps offers the same random edges (many
// of equal rank, where only the weight decides) to a RankCut and to a
// TopEdges, and ranks the cut's candidates with their weights: the result
// must be TopEdges', for every limit.
func TestRankCutKeepsEveryEdgeTopEdgesKeeps(t *testing.T) {
	type offer struct {
		key, other  string
		own, degree int
		weight      float64
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var offers []offer
	weights := map[provenance.RelationKey]float64{}
	// A relation's rank is its endpoints' degrees, whichever end offers it.
	degrees := make([]int, 60)
	for i := range degrees {
		degrees[i] = 1 + rng.IntN(5)
	}
	for range 400 {
		key, other := rng.IntN(20), rng.IntN(60)
		o := offer{key: fmt.Sprint("k", key), other: fmt.Sprint("k", other), own: degrees[key], degree: degrees[other]}
		if o.key == o.other {
			continue
		}
		k := provenance.RelationKey{Src: min(o.key, o.other), Dst: max(o.key, o.other)}
		if _, ok := weights[k]; !ok {
			weights[k] = float64(rng.IntN(4))
		}
		o.weight = weights[k]
		offers = append(offers, o)
	}
	for _, limit := range []int{0, 1, 3, 10, 50, 1000} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			top := provenance.NewTopEdges(limit)
			cut := provenance.NewRankCut(limit)
			for _, o := range offers {
				top.Offer(o.key, o.own, provenance.Neighbour{Key: o.other, Degree: o.degree, Weight: o.weight})
				cut.Offer(o.key, o.own, o.other, o.degree)
			}
			fromCut := provenance.NewTopEdges(limit)
			candidates := cut.Candidates()
			for _, c := range candidates {
				fromCut.OfferEdge(graph.RankedEdge{Source: c.Src, Target: c.Dst, Rank: c.Rank, Weight: weights[c.RelationKey]})
			}
			require.Equal(t, top.Edges(), fromCut.Edges())
			if limit > 0 && limit < len(weights) {
				require.Less(t, len(candidates), len(weights), "the cut keeps fewer than all relations")
			}
		})
	}
}

func TestRankCutCanTake(t *testing.T) {
	cut := provenance.NewRankCut(2)
	require.True(t, cut.CanTake(0), "takes anything until limit edges were offered")
	cut.Offer("a", 3, "b", 2) // rank 5
	cut.Offer("a", 3, "c", 4) // rank 7
	require.True(t, cut.CanTake(5), "an edge of the limit-th best rank may still win on weight")
	require.False(t, cut.CanTake(4))
	cut.Offer("b", 2, "a", 3) // the same relation again changes nothing
	cut.Offer("c", 4, "d", 4) // rank 8: the limit-th best is now 7
	require.False(t, cut.CanTake(5))
	require.Equal(t, []provenance.RankedKey{
		{RelationKey: provenance.RelationKey{Src: "a", Dst: "c"}, Rank: 7},
		{RelationKey: provenance.RelationKey{Src: "c", Dst: "d"}, Rank: 8},
	}, cut.Candidates())
}
