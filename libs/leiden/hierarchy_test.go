package leiden

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireHierarchy checks the structural invariants of a hierarchy and
// returns the leaves larger than maxSize.
func requireHierarchy(t *testing.T, g *testGraph, communities []Community, maxSize int) []Community {
	t.Helper()
	var oversized []Community
	level0 := make([]int, g.NumNodes())
	for i := range level0 {
		level0[i] = -1
	}
	lastLevel := 0
	adj := g.neighbours()
	for id, c := range communities {
		require.Equal(t, id, c.ID)
		require.NotEmpty(t, c.Nodes, "community %d", id)
		require.True(t, slices.IsSorted(c.Nodes), "community %d nodes unsorted", id)
		require.GreaterOrEqual(t, c.Level, lastLevel, "community %d breaks breadth-first order", id)
		lastLevel = c.Level
		if c.Level == 0 {
			require.Equal(t, -1, c.Parent)
			for _, n := range c.Nodes {
				require.Equal(t, -1, level0[n], "node %d in two level-0 communities", n)
				level0[n] = id
			}
		} else {
			require.GreaterOrEqual(t, c.Parent, 0)
			require.Less(t, c.Parent, id)
			parent := communities[c.Parent]
			require.Equal(t, parent.Level+1, c.Level)
			require.Contains(t, parent.Children, id)
		}
		require.Truef(t, connectedSet(adj, c.Nodes), "community %d is not connected", id)

		if len(c.Children) == 0 {
			require.Nil(t, c.Children)
			if len(c.Nodes) > maxSize {
				oversized = append(oversized, c)
			}
			continue
		}
		require.Greater(t, len(c.Nodes), maxSize, "community %d split although small enough", id)
		require.GreaterOrEqual(t, len(c.Children), 2, "community %d has a single child", id)
		require.True(t, slices.IsSorted(c.Children))
		var union []int
		for _, child := range c.Children {
			require.Equal(t, id, communities[child].Parent)
			union = append(union, communities[child].Nodes...)
		}
		slices.Sort(union)
		require.Equal(t, c.Nodes, union, "children of %d do not partition it", id)
	}
	for n, c := range level0 {
		require.NotEqual(t, -1, c, "node %d missing from level 0", n)
	}
	return oversized
}

func TestHierarchicalSplitsUntilSmall(t *testing.T) {
	tests := []struct {
		name    string
		graph   *testGraph
		maxSize int
	}{
		{"planted n=2000 groups=50, max 10", planted(2000, 50, 10000, 0.6, 1), 10},
		{"planted n=500 groups=100, max 10", planted(500, 100, 3000, 0.7, 2), 10},
		{"ER n=1000 m=4000, max 25", erdosRenyi(1000, 4000, 3), 25},
		{"karate, max 6", karate(), 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			communities := Hierarchical(tc.graph.Graph, HierOptions{Options: Options{Seed: 9}, MaxClusterSize: tc.maxSize})
			oversized := requireHierarchy(t, tc.graph, communities, tc.maxSize)
			require.Empty(t, oversized, "every community here can be split")
			depth := communities[len(communities)-1].Level
			require.Positive(t, depth, "expected a split below level 0")
			require.Equal(t, communities, Hierarchical(tc.graph.Graph, HierOptions{Options: Options{Seed: 9}, MaxClusterSize: tc.maxSize}))
			t.Logf("%d communities over %d levels", len(communities), depth+1)
		})
	}
}

func TestHierarchicalLevelZeroIsLeiden(t *testing.T) {
	g := planted(800, 40, 4000, 0.6, 4)
	opt := Options{Seed: 4}
	membership := Leiden(g.Graph, opt)
	communities := Hierarchical(g.Graph, HierOptions{Options: opt})
	for _, c := range communities {
		if c.Level != 0 {
			break
		}
		for _, n := range c.Nodes {
			require.Equal(t, c.ID, membership[n])
		}
	}
}

func TestHierarchicalStopsAtUnsplittableCommunities(t *testing.T) {
	// K6 cliques: splitting a clique always lowers modularity.
	g := cliqueRing(12, 6)
	communities := Hierarchical(g.Graph, HierOptions{MaxClusterSize: 5})
	oversized := requireHierarchy(t, g, communities, 5)
	require.Len(t, communities, 12)
	require.Len(t, oversized, 12)
	for _, c := range communities {
		require.Equal(t, 0, c.Level)
		require.Len(t, c.Nodes, 6)
	}

	single := newTestGraph(20)
	for i := range 20 {
		for j := i + 1; j < 20; j++ {
			single.add(i, j, 1)
		}
	}
	communities = Hierarchical(single.Graph, HierOptions{})
	require.Len(t, communities, 1)
	require.Len(t, communities[0].Nodes, 20)
}

func TestHierarchicalDefaultsToMaxTen(t *testing.T) {
	g := planted(1000, 50, 5000, 0.6, 6)
	communities := Hierarchical(g.Graph, HierOptions{Options: Options{Seed: 2}})
	require.Empty(t, requireHierarchy(t, g, communities, DefaultMaxClusterSize))
	for _, c := range communities {
		if c.Children == nil {
			require.LessOrEqual(t, len(c.Nodes), 10)
		}
	}
}

func TestHierarchicalSeeds(t *testing.T) {
	g := planted(600, 30, 3000, 0.6, 8)
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			opt := HierOptions{Options: Options{Seed: seed}, MaxClusterSize: 8}
			communities := Hierarchical(g.Graph, opt)
			require.Empty(t, requireHierarchy(t, g, communities, 8))
			require.Equal(t, communities, Hierarchical(g.Graph, opt))
		})
	}
}

func TestHierarchicalKeys(t *testing.T) {
	var edges []Edge
	for _, side := range []string{"A", "B"} {
		for i := range 5 {
			for j := i + 1; j < 5; j++ {
				edges = append(edges, Edge{Source: fmt.Sprint(side, i), Target: fmt.Sprint(side, j), Weight: 1})
			}
		}
	}
	edges = append(edges, Edge{Source: "A0", Target: "B0", Weight: 1}, Edge{Source: "B3", Target: "B3", Weight: 0.5})
	nodes := []string{"LONER", "A1"}

	communities, err := HierarchicalKeys(nodes, edges, HierOptions{Options: Options{Seed: 1}})
	require.NoError(t, err)
	require.Equal(t, []KeyedCommunity{
		{ID: 0, Level: 0, Parent: -1, Keys: []string{"A0", "A1", "A2", "A3", "A4"}},
		{ID: 1, Level: 0, Parent: -1, Keys: []string{"B0", "B1", "B2", "B3", "B4"}},
		{ID: 2, Level: 0, Parent: -1, Keys: []string{"LONER"}},
	}, communities)

	// Input order does not matter.
	reversed := slices.Clone(edges)
	slices.Reverse(reversed)
	for i := range reversed {
		if i%2 == 0 {
			reversed[i].Source, reversed[i].Target = reversed[i].Target, reversed[i].Source
		}
	}
	again, err := HierarchicalKeys([]string{"A1", "LONER", "LONER"}, reversed, HierOptions{Options: Options{Seed: 1}})
	require.NoError(t, err)
	require.Equal(t, communities, again)

	_, err = HierarchicalKeys(nil, []Edge{{Source: "A", Target: "B", Weight: math.NaN()}}, HierOptions{})
	require.ErrorContains(t, err, "invalid weight")
	_, err = HierarchicalKeys(nil, []Edge{{Source: "A", Target: "B", Weight: -1}}, HierOptions{})
	require.Error(t, err)
	_, err = HierarchicalKeys(nil, edges, HierOptions{Options: Options{Resolution: math.Inf(1)}})
	require.ErrorContains(t, err, "invalid resolution")

	empty, err := HierarchicalKeys(nil, nil, HierOptions{})
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestHierarchicalKeysOrderIndependentOnLargerGraph(t *testing.T) {
	g := planted(400, 40, 2000, 0.6, 12)
	edges := make([]Edge, len(g.edges))
	for i, e := range g.edges {
		edges[i] = Edge{Source: fmt.Sprintf("E%03d", int(e[0])), Target: fmt.Sprintf("E%03d", int(e[1])), Weight: e[2]}
	}
	opt := HierOptions{Options: Options{Seed: 5}, MaxClusterSize: 10}
	first, err := HierarchicalKeys(nil, edges, opt)
	require.NoError(t, err)
	shuffled := slices.Clone(edges)
	testRand(99).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	second, err := HierarchicalKeys(nil, shuffled, opt)
	require.NoError(t, err)
	require.Equal(t, first, second)
	for _, c := range first {
		if c.Children == nil {
			require.LessOrEqual(t, len(c.Keys), 10)
		}
	}
}

// connectedSet reports whether nodes induce a connected subgraph of adj.
func connectedSet(adj [][]int, nodes []int) bool {
	in := make(map[int]bool, len(nodes))
	for _, n := range nodes {
		in[n] = true
	}
	seen := map[int]bool{nodes[0]: true}
	queue := []int{nodes[0]}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range adj[u] {
			if in[v] && !seen[v] {
				seen[v] = true
				queue = append(queue, v)
			}
		}
	}
	return len(seen) == len(nodes)
}
