package leiden

import (
	"fmt"
	"math"
)

// Graph is a weighted undirected graph whose nodes are 0..n-1. Build it with
// NewGraph and AddEdge; Leiden and Hierarchical only read it, so several runs
// may share one Graph as long as nobody adds edges meanwhile.
type Graph struct {
	n     int
	edges []edge
}

type edge struct {
	u, v int32
	w    float64
}

// NewGraph returns an empty graph with n isolated nodes.
func NewGraph(n int) *Graph {
	if n < 0 || n > math.MaxInt32 {
		panic(fmt.Sprintf("leiden: node count %d out of range", n))
	}
	return &Graph{n: n}
}

// NumNodes reports the number of nodes.
func (g *Graph) NumNodes() int { return g.n }

// AddEdge adds weight w to the undirected edge {u, v}; repeated calls
// accumulate. u == v adds a self-loop, which counts once towards the total
// edge weight and twice towards the node's strength (the networkx/igraph
// convention). Zero weights are ignored. It panics on a node outside 0..n-1
// or a negative, NaN or infinite weight, like an out-of-range index.
func (g *Graph) AddEdge(u, v int, w float64) {
	if u < 0 || u >= g.n || v < 0 || v >= g.n {
		panic(fmt.Sprintf("leiden: edge {%d, %d} outside nodes 0..%d", u, v, g.n-1))
	}
	if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		panic(fmt.Sprintf("leiden: edge {%d, %d} has invalid weight %v", u, v, w))
	}
	if w == 0 {
		return
	}
	if u > v {
		u, v = v, u
	}
	g.edges = append(g.edges, edge{u: int32(u), v: int32(v), w: w})
}

// network is the compact form the algorithm works on: adjacency in CSR form
// without self-loops (each undirected edge stored in both directions,
// parallel edges merged), self-loop weights kept apart since they never
// affect a move.
type network struct {
	offsets  []int // neighbours of i are adj[offsets[i]:offsets[i+1]]
	adj      []int32
	weights  []float64
	selfLoop []float64 // weight of the self-loop, counted once
	strength []float64 // weighted degree k_i, self-loop counted twice
	total    float64   // m: every edge once, self-loops once
}

func (net *network) numNodes() int { return len(net.selfLoop) }

// compile turns the edge list into a network, merging parallel edges.
func (g *Graph) compile() *network {
	n := g.n
	net := &network{
		offsets:  make([]int, n+1),
		selfLoop: make([]float64, n),
		strength: make([]float64, n),
	}
	for _, e := range g.edges {
		if e.u == e.v {
			continue
		}
		net.offsets[e.u+1]++
		net.offsets[e.v+1]++
	}
	for i := range n {
		net.offsets[i+1] += net.offsets[i]
	}
	adj := make([]int32, net.offsets[n])
	weights := make([]float64, net.offsets[n])
	fill := make([]int, n)
	copy(fill, net.offsets[:n])
	for _, e := range g.edges {
		if e.u == e.v {
			net.selfLoop[e.u] += e.w
			continue
		}
		adj[fill[e.u]], weights[fill[e.u]] = e.v, e.w
		fill[e.u]++
		adj[fill[e.v]], weights[fill[e.v]] = e.u, e.w
		fill[e.v]++
	}
	net.adj, net.weights = mergeParallel(net.offsets, adj, weights, fill)
	net.finish()
	return net
}

// mergeParallel sums the weights of repeated neighbours in place, keeping the
// first occurrence's position, and rewrites offsets. scratch must have one
// int per node.
func mergeParallel(offsets []int, adj []int32, weights []float64, scratch []int) ([]int32, []float64) {
	n := len(offsets) - 1
	slot := scratch // slot[j] = index of j in the current node's merged run, or -1
	for i := range slot {
		slot[i] = -1
	}
	out := 0
	start := 0
	for i := range n {
		end := offsets[i+1]
		runStart := out
		for p := start; p < end; p++ {
			j := adj[p]
			if s := slot[j]; s >= runStart {
				weights[s] += weights[p]
				continue
			}
			slot[j] = out
			adj[out], weights[out] = j, weights[p]
			out++
		}
		offsets[i] = runStart
		start = end
	}
	offsets[n] = out
	return adj[:out:out], weights[:out:out]
}

// finish derives strengths and the total weight from adjacency and loops.
func (net *network) finish() {
	var twice float64
	for i := range net.selfLoop {
		k := 2 * net.selfLoop[i]
		for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
			k += net.weights[p]
		}
		net.strength[i] = k
		twice += k
	}
	net.total = twice / 2
}

// aggregate collapses every community of membership (dense ids 0..k-1) into
// one node; edges inside a community become its self-loop. Strengths and the
// total weight carry over exactly, so quality values stay comparable.
func (net *network) aggregate(membership []int, k int) *network {
	agg := &network{
		offsets:  make([]int, k+1),
		selfLoop: make([]float64, k),
		strength: make([]float64, k),
		total:    net.total,
	}
	members := groupByCommunity(membership, k)
	acc := make([]float64, k)
	touched := make([]int32, 0, 64)
	adj := make([]int32, 0, len(net.adj)/2)
	weights := make([]float64, 0, len(net.adj)/2)
	for c := range k {
		var internal float64
		for _, i := range members.nodes[members.start[c]:members.start[c+1]] {
			agg.selfLoop[c] += net.selfLoop[i]
			agg.strength[c] += net.strength[i]
			for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
				d := membership[net.adj[p]]
				if d == c {
					internal += net.weights[p]
					continue
				}
				if acc[d] == 0 {
					touched = append(touched, int32(d))
				}
				acc[d] += net.weights[p]
			}
		}
		agg.selfLoop[c] += internal / 2 // each internal edge was seen from both ends
		for _, d := range touched {
			adj = append(adj, d)
			weights = append(weights, acc[d])
			acc[d] = 0
		}
		touched = touched[:0]
		agg.offsets[c+1] = len(adj)
	}
	agg.adj, agg.weights = adj, weights
	return agg
}

// induced returns the subnetwork on nodes (ascending original ids), renumbered
// 0..len(nodes)-1 in that order. local must hold -1 for every node; it is
// restored before returning.
func (net *network) induced(nodes []int, local []int32) *network {
	for li, i := range nodes {
		local[i] = int32(li)
	}
	sub := &network{
		offsets:  make([]int, len(nodes)+1),
		selfLoop: make([]float64, len(nodes)),
		strength: make([]float64, len(nodes)),
	}
	for li, i := range nodes {
		sub.selfLoop[li] = net.selfLoop[i]
		for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
			if lj := local[net.adj[p]]; lj >= 0 {
				sub.adj = append(sub.adj, lj)
				sub.weights = append(sub.weights, net.weights[p])
			}
		}
		sub.offsets[li+1] = len(sub.adj)
	}
	for _, i := range nodes {
		local[i] = -1
	}
	sub.finish()
	return sub
}

// communityMembers lists the nodes of community c as nodes[start[c]:start[c+1]],
// each run in ascending node order.
type communityMembers struct {
	start []int
	nodes []int
}

func groupByCommunity(membership []int, k int) communityMembers {
	start := make([]int, k+1)
	for _, c := range membership {
		start[c+1]++
	}
	for c := range k {
		start[c+1] += start[c]
	}
	nodes := make([]int, len(membership))
	fill := make([]int, k)
	copy(fill, start[:k])
	for i, c := range membership {
		nodes[fill[c]] = i
		fill[c]++
	}
	return communityMembers{start: start, nodes: nodes}
}
