package leiden

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// testEdge keeps the edges a test graph was built from, so checks can work on
// an adjacency independent of the package's own CSR code.
type testGraph struct {
	*Graph
	edges [][3]float64
}

func newTestGraph(n int) *testGraph { return &testGraph{Graph: NewGraph(n)} }

func (g *testGraph) add(u, v int, w float64) {
	g.AddEdge(u, v, w)
	g.edges = append(g.edges, [3]float64{float64(u), float64(v), w})
}

func (g *testGraph) neighbours() [][]int {
	adj := make([][]int, g.NumNodes())
	for _, e := range g.edges {
		u, v := int(e[0]), int(e[1])
		if e[2] == 0 || u == v {
			continue
		}
		adj[u] = append(adj[u], v)
		adj[v] = append(adj[v], u)
	}
	return adj
}

// cliqueRing is count cliques of size nodes each, clique c on nodes
// c*size..c*size+size-1, with one edge from the last node of each clique to
// the first node of the next, closing a ring.
func cliqueRing(count, size int) *testGraph {
	g := newTestGraph(count * size)
	for c := range count {
		base := c * size
		for i := range size {
			for j := i + 1; j < size; j++ {
				g.add(base+i, base+j, 1)
			}
		}
		if count > 1 {
			g.add(base+size-1, ((c+1)%count)*size, 1)
		}
	}
	return g
}

// karateEdges is Zachary's karate club (networkx numbering).
var karateEdges = [][2]int{
	{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {0, 7}, {0, 8}, {0, 10}, {0, 11}, {0, 12}, {0, 13}, {0, 17}, {0, 19}, {0, 21}, {0, 31},
	{1, 2}, {1, 3}, {1, 7}, {1, 13}, {1, 17}, {1, 19}, {1, 21}, {1, 30},
	{2, 3}, {2, 7}, {2, 8}, {2, 9}, {2, 13}, {2, 27}, {2, 28}, {2, 32},
	{3, 7}, {3, 12}, {3, 13},
	{4, 6}, {4, 10},
	{5, 6}, {5, 10}, {5, 16},
	{6, 16},
	{8, 30}, {8, 32}, {8, 33},
	{9, 33},
	{13, 33},
	{14, 32}, {14, 33},
	{15, 32}, {15, 33},
	{18, 32}, {18, 33},
	{19, 33},
	{20, 32}, {20, 33},
	{22, 32}, {22, 33},
	{23, 25}, {23, 27}, {23, 29}, {23, 32}, {23, 33},
	{24, 25}, {24, 27}, {24, 31},
	{25, 31},
	{26, 29}, {26, 33},
	{27, 33},
	{28, 31}, {28, 33},
	{29, 32}, {29, 33},
	{30, 32}, {30, 33},
	{31, 32}, {31, 33},
	{32, 33},
}

func karate() *testGraph {
	g := newTestGraph(34)
	for _, e := range karateEdges {
		g.add(e[0], e[1], 1)
	}
	return g
}

func testRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

// erdosRenyi draws edges uniformly at random (G(n, m), repeats accumulate).
func erdosRenyi(n, edges int, seed uint64) *testGraph {
	rng := testRand(seed)
	g := newTestGraph(n)
	for range edges {
		u, v := rng.IntN(n), rng.IntN(n)
		if u != v {
			g.add(u, v, 1)
		}
	}
	return g
}

// planted is a planted-partition graph: nodes in groups of groupSize
// (node i in group i/groupSize); each of the edges joins two nodes of one
// group with probability inside, else two random nodes. Weights are 1..3.
func planted(n, groupSize, edges int, inside float64, seed uint64) *testGraph {
	rng := testRand(seed)
	g := newTestGraph(n)
	for range edges {
		u := rng.IntN(n)
		var v int
		if rng.Float64() < inside {
			group := u / groupSize
			size := min(groupSize, n-group*groupSize)
			v = group*groupSize + rng.IntN(size)
		} else {
			v = rng.IntN(n)
		}
		if u != v {
			g.add(u, v, float64(1+rng.IntN(3)))
		}
	}
	return g
}

// requireConnectedCommunities checks with BFS that every community of
// membership induces a connected subgraph of g.
func requireConnectedCommunities(t *testing.T, g *testGraph, membership []int) {
	t.Helper()
	require.Empty(t, disconnectedCommunities(g, membership), "communities in more than one piece")
}

// disconnectedCommunities returns the communities whose induced subgraph
// has more than one connected component.
func disconnectedCommunities(g *testGraph, membership []int) []int {
	adj := g.neighbours()
	seen := make([]bool, len(membership))
	started := make(map[int]bool)
	var broken []int
	for s := range membership {
		if seen[s] {
			continue
		}
		c := membership[s]
		if started[c] {
			broken = append(broken, c)
		}
		started[c] = true
		seen[s] = true
		queue := []int{s}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, v := range adj[u] {
				if !seen[v] && membership[v] == c {
					seen[v] = true
					queue = append(queue, v)
				}
			}
		}
	}
	return broken
}

// requireDense checks one id per node, ids 0..k-1 all used, numbered by each
// community's smallest node, and returns k.
func requireDense(t *testing.T, n int, membership []int) int {
	t.Helper()
	require.Len(t, membership, n)
	next := 0
	for i, c := range membership {
		require.LessOrEqualf(t, c, next, "node %d: id %d skips ahead of %d", i, c, next)
		require.GreaterOrEqual(t, c, 0)
		if c == next {
			next++
		}
	}
	return next
}

// louvain is the same local moving and aggregation without refinement,
// iterated from its previous result like Leiden: the baseline whose
// communities may fall apart.
func louvain(g *Graph, seed uint64, iterations int) []int {
	net := g.compile()
	o := newOptimizer(Options{}.withDefaults(), seed)
	n := net.numNodes()
	o.reserve(n)
	membership := make([]int, n)
	for i := range membership {
		membership[i] = i
	}
	for range iterations {
		level := net
		communities := append([]int(nil), membership...)
		toLevel := make([]int, n)
		for i := range toLevel {
			toLevel[i] = i
		}
		for {
			o.moveNodes(level, communities)
			k := renumber(communities, o.scratch)
			if k == level.numNodes() {
				break
			}
			for i, v := range toLevel {
				toLevel[i] = communities[v]
			}
			level = level.aggregate(communities, k)
			communities = make([]int, k)
			for c := range communities {
				communities[c] = c
			}
		}
		for i, v := range toLevel {
			membership[i] = communities[v]
		}
		renumber(membership, o.scratch)
	}
	return membership
}
