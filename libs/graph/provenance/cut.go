package provenance

import (
	"cmp"
	"container/heap"
	"slices"
)

// RankCut finds the candidates for the best limit ranked edges from ranks
// alone: every relation offered whose rank is at least the limit-th best
// rank offered (all of them when limit <= 0). Any edge TopEdges would keep
// of the same offers is a candidate, since weight only orders edges of
// equal rank; a store can so read an edge's rank cheaply, read the summed
// weights of the candidates only, and rank those with TopEdges.
type RankCut struct {
	limit      int
	best       rankHeap // the best limit ranks, the lowest at the root
	candidates map[RelationKey]int
}

// NewRankCut returns an empty RankCut for the best limit edges.
func NewRankCut(limit int) *RankCut {
	return &RankCut{limit: limit, candidates: map[RelationKey]int{}}
}

// Offer offers the relation between key, of degree own, and other, of
// degree degree.
func (c *RankCut) Offer(key string, own int, other string, degree int) {
	k := RelationKey{Src: min(key, other), Dst: max(key, other)}
	if _, ok := c.candidates[k]; ok {
		return
	}
	rank := own + degree
	if !c.CanTake(rank) {
		return
	}
	c.candidates[k] = rank
	switch {
	case c.limit <= 0:
	case len(c.best) < c.limit:
		heap.Push(&c.best, rank)
	case rank > c.best[0]:
		c.best[0] = rank
		heap.Fix(&c.best, 0)
	}
}

// CanTake reports whether an edge of rank rank would be a candidate: false
// once limit edges were offered and the limit-th best of them ranks above
// rank. A store reading neighbours by falling degree stops reading a key
// there.
func (c *RankCut) CanTake(rank int) bool {
	return c.limit <= 0 || len(c.best) < c.limit || rank >= c.best[0]
}

// Candidates returns the candidate relations with their ranks, sorted by
// key.
func (c *RankCut) Candidates() []RankedKey {
	out := make([]RankedKey, 0, len(c.candidates))
	for k, rank := range c.candidates {
		if c.CanTake(rank) {
			out = append(out, RankedKey{RelationKey: k, Rank: rank})
		}
	}
	slices.SortFunc(out, func(a, b RankedKey) int { return cmp.Or(cmp.Compare(a.Src, b.Src), cmp.Compare(a.Dst, b.Dst)) })
	return out
}

// RankedKey is a relation with its rank.
type RankedKey struct {
	RelationKey
	Rank int
}

// rankHeap is a min-heap of ranks.
type rankHeap []int

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *rankHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
