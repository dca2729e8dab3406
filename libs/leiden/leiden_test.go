package leiden

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLeidenFindsPlantedCliques(t *testing.T) {
	twoCliques := newTestGraph(12)
	for c := range 2 {
		for i := range 6 {
			for j := i + 1; j < 6; j++ {
				twoCliques.add(6*c+i, 6*c+j, 1)
			}
		}
	}
	twoCliques.add(5, 6, 1)

	tests := []struct {
		name       string
		graph      *testGraph
		cliqueSize int
		resolution float64
	}{
		{name: "two K6 joined by one edge", graph: twoCliques, cliqueSize: 6, resolution: 1},
		// With 30 cliques of 6 (m = 480) merging two neighbours would change
		// modularity by (1 − 32·32·2/4m)/m < 0, so cliques are optimal at γ=1.
		{name: "ring of 30 K6", graph: cliqueRing(30, 6), cliqueSize: 6, resolution: 1},
		// 30 K5 hit the resolution limit at γ=1 (see below); γ=2 recovers them.
		{name: "ring of 30 K5 at γ=2", graph: cliqueRing(30, 5), cliqueSize: 5, resolution: 2},
		{name: "ring of 20 K5", graph: cliqueRing(20, 5), cliqueSize: 5, resolution: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(5) {
				membership := Leiden(tc.graph.Graph, Options{Resolution: tc.resolution, Seed: seed})
				want := make([]int, tc.graph.NumNodes())
				for i := range want {
					want[i] = i / tc.cliqueSize
				}
				require.Equal(t, want, membership, "seed %d", seed)
			}
		})
	}
}

func TestLeidenShowsResolutionLimitOnRingOfK5(t *testing.T) {
	g := cliqueRing(30, 5)
	cliques := make([]int, g.NumNodes())
	for i := range cliques {
		cliques[i] = i / 5
	}
	cliqueQ := Modularity(g.Graph, cliques, 1)

	membership := Leiden(g.Graph, Options{Seed: 7})
	// Every community is one clique or two neighbouring cliques, never a
	// fragment: merging a third clique or splitting one loses modularity.
	cliquesOf := map[int]map[int]bool{}
	for i, c := range membership {
		if cliquesOf[c] == nil {
			cliquesOf[c] = map[int]bool{}
		}
		cliquesOf[c][i/5] = true
		require.Equal(t, membership[(i/5)*5], c, "clique %d split", i/5)
	}
	merged := 0
	for c, set := range cliquesOf {
		require.LessOrEqual(t, len(set), 2, "community %d", c)
		if len(set) == 2 {
			merged++
			var pair []int
			for q := range set {
				pair = append(pair, q)
			}
			gap := (pair[0] - pair[1] + 30) % 30
			require.True(t, gap == 1 || gap == 29, "community %d joins non-adjacent cliques %v", c, pair)
		}
	}
	require.Positive(t, merged, "at γ=1 merging neighbouring K5s raises modularity")
	require.Greater(t, Modularity(g.Graph, membership, 1), cliqueQ)
	t.Logf("30×K5 at γ=1: %d communities, Q=%.4f vs %.4f for the cliques", len(cliquesOf), Modularity(g.Graph, membership, 1), cliqueQ)
}

func TestLeidenKarateClub(t *testing.T) {
	g := karate()
	require.Len(t, karateEdges, 78)
	for seed := range uint64(10) {
		membership := Leiden(g.Graph, Options{Seed: seed})
		k := requireDense(t, g.NumNodes(), membership)
		q := Modularity(g.Graph, membership, 1)
		require.Equal(t, 4, k, "seed %d", seed)
		require.GreaterOrEqual(t, q, 0.4197, "seed %d", seed) // optimum is 0.41979
		requireConnectedCommunities(t, g, membership)
		if seed == 0 {
			t.Logf("karate: %d communities, Q=%.5f", k, q)
		}
	}
	// Known optimal split: the instructor's (0) and president's (33) sides
	// each break into two.
	membership := Leiden(g.Graph, Options{})
	require.Equal(t, membership[0], membership[1])
	require.Equal(t, membership[4], membership[16])
	require.NotEqual(t, membership[0], membership[4])
	require.Equal(t, membership[32], membership[33])
	require.Equal(t, membership[24], membership[31])
	require.NotEqual(t, membership[33], membership[24])
}

// randomGraphs are the sparse graphs where Louvain is known to produce
// disconnected communities, plus denser and planted ones.
func randomGraphs() []struct {
	name  string
	build func(seed uint64) *testGraph
} {
	return []struct {
		name  string
		build func(seed uint64) *testGraph
	}{
		{"ER n=200 m=400", func(s uint64) *testGraph { return erdosRenyi(200, 400, s) }},
		{"ER n=2000 m=3000", func(s uint64) *testGraph { return erdosRenyi(2000, 3000, s) }},
		{"ER n=1000 m=5000", func(s uint64) *testGraph { return erdosRenyi(1000, 5000, s) }},
		{"planted n=500 groups=25", func(s uint64) *testGraph { return planted(500, 25, 1500, 0.5, s) }},
		{"planted n=2000 groups=50", func(s uint64) *testGraph { return planted(2000, 50, 10000, 0.6, s) }},
	}
}

func TestLeidenCommunitiesAreConnected(t *testing.T) {
	for _, tc := range randomGraphs() {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(8) {
				g := tc.build(seed)
				for _, gamma := range []float64{0.5, 1, 2} {
					membership := Leiden(g.Graph, Options{Seed: seed, Resolution: gamma})
					requireDense(t, g.NumNodes(), membership)
					requireConnectedCommunities(t, g, membership)
				}
			}
		})
	}
}

// The connectivity check is not vacuous: on the same kind of graph the
// unrefined algorithm does leave communities in pieces.
func TestLouvainBaselineBreaksConnectivity(t *testing.T) {
	disconnected := 0
	for seed := range uint64(20) {
		g := erdosRenyi(2000, 3000, seed)
		if len(disconnectedCommunities(g, louvain(g.Graph, seed, 5))) > 0 {
			disconnected++
		}
		require.Empty(t, disconnectedCommunities(g, Leiden(g.Graph, Options{Seed: seed})), "seed %d", seed)
	}
	require.Positive(t, disconnected, "Louvain baseline never disconnected a community")
	t.Logf("Louvain left disconnected communities on %d of 20 graphs, Leiden on none", disconnected)
}

func TestLeidenIsDeterministicPerSeed(t *testing.T) {
	for _, tc := range randomGraphs() {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.build(3)
			first := Leiden(g.Graph, Options{Seed: 11})
			require.Equal(t, first, Leiden(g.Graph, Options{Seed: 11}))
			for seed := range uint64(4) {
				other := Leiden(g.Graph, Options{Seed: seed})
				requireDense(t, g.NumNodes(), other)
				requireConnectedCommunities(t, g, other)
				require.Greater(t, Modularity(g.Graph, other, 1), 0.25)
			}
		})
	}
}

func TestLeidenBeatsBaselines(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := planted(2000, 40, 12000, 0.55, seed)
			net := g.compile()
			singletons := make([]int, g.NumNodes())
			for i := range singletons {
				singletons[i] = i
			}
			localMoving := append([]int(nil), singletons...)
			o := newOptimizer(Options{}.withDefaults(), seed)
			o.reserve(net.numNodes())
			o.moveNodes(net, localMoving)

			leiden := Leiden(g.Graph, Options{Seed: seed})
			qLeiden := Modularity(g.Graph, leiden, 1)
			qLocal := Modularity(g.Graph, localMoving, 1)
			qLouvain := Modularity(g.Graph, louvain(g.Graph, seed, 5), 1)
			require.Greater(t, qLocal, Modularity(g.Graph, singletons, 1))
			require.Greater(t, qLeiden, qLocal)
			require.GreaterOrEqual(t, qLeiden, qLouvain)
			if seed == 0 {
				t.Logf("planted n=2000: Q leiden=%.4f louvain=%.4f local moving=%.4f", qLeiden, qLouvain, qLocal)
			}
		})
	}
}

func TestLeidenMaxIterationsOneIsValid(t *testing.T) {
	g := planted(1000, 25, 5000, 0.6, 1)
	one := Leiden(g.Graph, Options{Seed: 1, MaxIterations: 1})
	stable := Leiden(g.Graph, Options{Seed: 1})
	requireDense(t, g.NumNodes(), one)
	requireConnectedCommunities(t, g, one)
	require.GreaterOrEqual(t, Modularity(g.Graph, stable, 1), Modularity(g.Graph, one, 1))
}

func TestModularity(t *testing.T) {
	twoTriangles := NewGraph(6)
	for _, e := range [][2]int{{0, 1}, {1, 2}, {0, 2}, {3, 4}, {4, 5}, {3, 5}, {2, 3}} {
		twoTriangles.AddEdge(e[0], e[1], 1)
	}
	loop := NewGraph(2)
	loop.AddEdge(0, 1, 1)
	loop.AddEdge(0, 0, 1)
	parallel := NewGraph(2)
	parallel.AddEdge(0, 1, 0.5)
	parallel.AddEdge(1, 0, 1.5)

	tests := []struct {
		name       string
		graph      *Graph
		membership []int
		resolution float64
		want       float64
	}{
		// networkx.community.modularity gives the same values.
		{"two triangles split", twoTriangles, []int{0, 0, 0, 1, 1, 1}, 1, 2.5 / 7},
		{"two triangles, arbitrary ids", twoTriangles, []int{9, 9, 9, -3, -3, -3}, 1, 2.5 / 7},
		{"two triangles at γ=2", twoTriangles, []int{0, 0, 0, 1, 1, 1}, 2, (2 * (3 - 2*49.0/28)) / 7},
		{"one community", twoTriangles, []int{0, 0, 0, 0, 0, 0}, 1, 0},
		{"self-loop apart", loop, []int{0, 1}, 1, -0.125},
		{"self-loop together", loop, []int{0, 0}, 1, 0},
		{"parallel edges accumulate", parallel, []int{0, 1}, 1, -0.5},
		{"no edges", NewGraph(3), []int{0, 1, 2}, 1, 0},
		{"empty graph", NewGraph(0), nil, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, Modularity(tc.graph, tc.membership, tc.resolution), 1e-12)
		})
	}
	require.Panics(t, func() { Modularity(twoTriangles, []int{0}, 1) })
}

func TestLeidenFollowsWeights(t *testing.T) {
	// A 4-cycle with two opposite edges made heavy: each heavy pair groups.
	tests := []struct {
		name  string
		heavy [][2]int
		want  []int
	}{
		{"heavy 0-1 and 2-3", [][2]int{{0, 1}, {2, 3}}, []int{0, 0, 1, 1}},
		{"heavy 1-2 and 3-0", [][2]int{{1, 2}, {3, 0}}, []int{0, 1, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGraph(4)
			for i := range 4 {
				g.AddEdge(i, (i+1)%4, 1)
			}
			for _, e := range tc.heavy {
				g.AddEdge(e[0], e[1], 9) // accumulates onto the ring edge
			}
			require.Equal(t, tc.want, Leiden(g, Options{Seed: 3}))
		})
	}
}

func TestLeidenDegenerateGraphs(t *testing.T) {
	selfLoops := NewGraph(3)
	selfLoops.AddEdge(0, 0, 2)
	selfLoops.AddEdge(2, 2, 1)
	zeroWeights := NewGraph(4)
	zeroWeights.AddEdge(0, 1, 0)
	zeroWeights.AddEdge(2, 3, 0)
	mixed := NewGraph(7) // triangle 0-2 with a loop, isolated 3, pair 4-5 with a zero edge to 6
	mixed.AddEdge(0, 1, 1)
	mixed.AddEdge(1, 2, 1)
	mixed.AddEdge(0, 2, 1)
	mixed.AddEdge(1, 1, 1)
	mixed.AddEdge(4, 5, 2)
	mixed.AddEdge(5, 6, 0)
	pair := NewGraph(2)
	pair.AddEdge(0, 1, 1)

	tests := []struct {
		name  string
		graph *Graph
		want  []int
	}{
		{"empty", NewGraph(0), []int{}},
		{"single node", NewGraph(1), []int{0}},
		{"isolated nodes", NewGraph(4), []int{0, 1, 2, 3}},
		{"only self-loops", selfLoops, []int{0, 1, 2}},
		{"zero-weight edges", zeroWeights, []int{0, 1, 2, 3}},
		{"single edge", pair, []int{0, 0}},
		{"mixed", mixed, []int{0, 0, 0, 1, 2, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Leiden(tc.graph, Options{Seed: 1}))
			communities := Hierarchical(tc.graph, HierOptions{MaxClusterSize: 1})
			covered := 0
			for _, c := range communities {
				if c.Level == 0 {
					covered += len(c.Nodes)
				}
			}
			require.Equal(t, tc.graph.NumNodes(), covered)
		})
	}
}

func TestGraphRejectsInvalidInput(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"negative node count", func() { NewGraph(-1) }},
		{"node out of range", func() { NewGraph(2).AddEdge(0, 2, 1) }},
		{"negative node", func() { NewGraph(2).AddEdge(-1, 0, 1) }},
		{"negative weight", func() { NewGraph(2).AddEdge(0, 1, -1) }},
		{"NaN weight", func() { NewGraph(2).AddEdge(0, 1, math.NaN()) }},
		{"infinite weight", func() { NewGraph(2).AddEdge(0, 1, math.Inf(1)) }},
		{"negative resolution", func() { Leiden(NewGraph(2), Options{Resolution: -1}) }},
		{"negative randomness", func() { Leiden(NewGraph(2), Options{Randomness: -1}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { require.Panics(t, tc.call) })
	}
}

func TestRefineKeepsSubcommunitiesInsideCommunities(t *testing.T) {
	g := planted(600, 30, 3000, 0.6, 5)
	net := g.compile()
	o := newOptimizer(Options{}.withDefaults(), 5)
	o.reserve(net.numNodes())
	communities := make([]int, net.numNodes())
	for i := range communities {
		communities[i] = i
	}
	o.moveNodes(net, communities)
	k := renumber(communities, o.scratch)
	refined, refinedK := o.refine(net, communities)
	require.Greater(t, refinedK, k, "refinement should split some communities")
	require.Less(t, refinedK, net.numNodes(), "refinement should merge some nodes")
	parent := make(map[int]int)
	for i, r := range refined {
		if p, ok := parent[r]; ok {
			require.Equal(t, p, communities[i], "sub-community %d straddles communities", r)
		}
		parent[r] = communities[i]
	}
	requireConnectedCommunities(t, g, refined)
}
