package provenance

import (
	"cmp"
	"container/heap"
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

// RankedOrder is the order of ranked edges: highest rank first, then
// highest weight, then by (Source, Target).
func RankedOrder(a, b graph.RankedEdge) int {
	return cmp.Or(cmp.Compare(b.Rank, a.Rank), cmp.Compare(b.Weight, a.Weight),
		cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
}

// TopEdges keeps the best limit ranked edges offered to it (all of them
// when limit <= 0), each relation once, in RankedOrder. Both stores rank
// with it, so they agree on the order and the cut.
type TopEdges struct {
	limit int
	worst edgeHeap // the kept edges, the worst at the root
	kept  map[RelationKey]bool
}

// NewTopEdges returns an empty TopEdges keeping at most limit edges.
func NewTopEdges(limit int) *TopEdges {
	return &TopEdges{limit: limit, kept: map[RelationKey]bool{}}
}

// Offer offers the relation between key, of degree own, and n.
func (t *TopEdges) Offer(key string, own int, n Neighbour) {
	t.OfferEdge(graph.RankedEdge{Source: min(key, n.Key), Target: max(key, n.Key), Weight: n.Weight, Rank: own + n.Degree})
}

// OfferEdge offers a ranked edge whose Source sorts before its Target.
func (t *TopEdges) OfferEdge(e graph.RankedEdge) {
	k := RelationKey{Src: e.Source, Dst: e.Target}
	if t.kept[k] {
		return
	}
	if t.limit > 0 && len(t.worst) == t.limit {
		if RankedOrder(e, t.worst[0]) >= 0 {
			return
		}
		delete(t.kept, RelationKey{Src: t.worst[0].Source, Dst: t.worst[0].Target})
		t.worst[0] = e
		heap.Fix(&t.worst, 0)
	} else {
		heap.Push(&t.worst, e)
	}
	t.kept[k] = true
}

// CanTake reports whether an edge of rank rank could still be kept: false
// once limit edges are kept and the worst of them ranks above rank. A
// store reading neighbours by falling degree stops reading a key there.
func (t *TopEdges) CanTake(rank int) bool {
	return t.limit <= 0 || len(t.worst) < t.limit || rank >= t.worst[0].Rank
}

// Edges returns the kept edges in RankedOrder.
func (t *TopEdges) Edges() []graph.RankedEdge {
	out := slices.Clone([]graph.RankedEdge(t.worst))
	slices.SortFunc(out, RankedOrder)
	return out
}

// edgeHeap is a heap of edges, the last in RankedOrder at the root.
type edgeHeap []graph.RankedEdge

func (h edgeHeap) Len() int           { return len(h) }
func (h edgeHeap) Less(i, j int) bool { return RankedOrder(h[i], h[j]) > 0 }
func (h edgeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *edgeHeap) Push(x any)        { *h = append(*h, x.(graph.RankedEdge)) }
func (h *edgeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
