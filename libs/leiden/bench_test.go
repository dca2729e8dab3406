package leiden

import (
	"fmt"
	"testing"
)

// benchGraph has an average degree of 10: either a planted partition
// (groups of 50, 70% of edges inside), standing in for an entity graph, or a
// structureless Erdős–Rényi graph, where Leiden works hardest.
func benchGraph(kind string, nodes int) *testGraph {
	if kind == "ER" {
		return erdosRenyi(nodes, 5*nodes, 1)
	}
	return planted(nodes, 50, 5*nodes, 0.7, 1)
}

func BenchmarkLeiden(b *testing.B) {
	tests := []struct {
		kind       string
		nodes      int
		iterations int // 0: until stable
	}{
		{"planted", 10_000, 0},
		{"planted", 10_000, 2},
		{"ER", 10_000, 0},
		{"planted", 100_000, 0},
		{"planted", 100_000, 2},
		{"ER", 100_000, 2},
	}
	for _, tc := range tests {
		g := benchGraph(tc.kind, tc.nodes)
		iterations := "stable"
		if tc.iterations > 0 {
			iterations = fmt.Sprint(tc.iterations)
		}
		b.Run(fmt.Sprintf("%s/n=%d/m=%d/iterations=%s", tc.kind, tc.nodes, 5*tc.nodes, iterations), func(b *testing.B) {
			var membership []int
			b.ReportAllocs()
			for b.Loop() {
				membership = Leiden(g.Graph, Options{Seed: 1, MaxIterations: tc.iterations})
			}
			k := 0
			for _, c := range membership {
				k = max(k, c+1)
			}
			b.ReportMetric(Modularity(g.Graph, membership, 1), "modularity")
			b.ReportMetric(float64(k), "communities")
		})
	}
}

func BenchmarkHierarchical(b *testing.B) {
	for _, nodes := range []int{10_000, 100_000} {
		g := benchGraph("planted", nodes)
		b.Run(fmt.Sprintf("planted/n=%d/m=%d/max=10", nodes, 5*nodes), func(b *testing.B) {
			var communities []Community
			b.ReportAllocs()
			for b.Loop() {
				communities = Hierarchical(g.Graph, HierOptions{Options: Options{Seed: 1}})
			}
			b.ReportMetric(float64(len(communities)), "communities")
			b.ReportMetric(float64(communities[len(communities)-1].Level+1), "levels")
		})
	}
}
