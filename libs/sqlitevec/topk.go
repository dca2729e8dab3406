package sqlitevec

import (
	"cmp"
	"container/heap"
)

// ranked is an item with the score and id it is ranked by.
type ranked[T any] struct {
	score float32
	id    string
	item  T
}

// topK keeps the k best items offered: a higher score wins, and on equal
// scores the smaller id, so results are deterministic.
type topK[T any] struct {
	k    int
	heap rankedHeap[T]
}

func newTopK[T any](k int) *topK[T] {
	return &topK[T]{k: k, heap: make(rankedHeap[T], 0, min(k, 1024))}
}

// offer considers an item; item is called only for one that is kept, so
// that most rows are never copied out of the driver's buffers.
func (t *topK[T]) offer(score float32, id []byte, item func() T) {
	if len(t.heap) == t.k {
		worst := t.heap[0]
		if score < worst.score || (score == worst.score && string(id) >= worst.id) {
			return
		}
	}
	r := ranked[T]{score: score, id: string(id), item: item()}
	if len(t.heap) < t.k {
		heap.Push(&t.heap, r)
		return
	}
	t.heap[0] = r
	heap.Fix(&t.heap, 0)
}

// sorted returns the items kept, best first, and empties t.
func (t *topK[T]) sorted() []ranked[T] {
	out := make([]ranked[T], len(t.heap))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&t.heap).(ranked[T])
	}
	return out
}

// rankedHeap is a min-heap whose root is the worst item kept so far.
type rankedHeap[T any] []ranked[T]

func (h rankedHeap[T]) Len() int { return len(h) }
func (h rankedHeap[T]) Less(i, j int) bool {
	if c := cmp.Compare(h[i].score, h[j].score); c != 0 {
		return c < 0
	}
	return h[i].id > h[j].id
}
func (h rankedHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rankedHeap[T]) Push(x any)   { *h = append(*h, x.(ranked[T])) }
func (h *rankedHeap[T]) Pop() any {
	old := *h
	last := old[len(old)-1]
	*h = old[:len(old)-1]
	return last
}
