package community

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// BenchmarkDetect clusters a random graph of 20,000 entities and 100,000
// relations in 200 loose groups.
func BenchmarkDetect(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, m, groups = 20_000, 100_000, 200
	var snap graph.Snapshot
	for i := range n {
		k := fmt.Sprintf("E%06d", i)
		snap.Entities = append(snap.Entities, graph.Entity{Key: k, Name: k, Type: "T", Description: "d"})
	}
	seen := map[[2]int]bool{}
	for len(snap.Relations) < m {
		a := rng.IntN(n)
		bb := (a/groups)*groups + rng.IntN(groups)
		if rng.IntN(10) == 0 {
			bb = rng.IntN(n)
		}
		if a == bb || seen[[2]int{min(a, bb), max(a, bb)}] {
			continue
		}
		seen[[2]int{min(a, bb), max(a, bb)}] = true
		snap.Relations = append(snap.Relations, graph.Relation{Source: snap.Entities[min(a, bb)].Key, Target: snap.Entities[max(a, bb)].Key, Weight: 1})
	}
	for b.Loop() {
		cs, err := Detect(snap, Options{MaxClusterSize: 10, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(cs)), "communities")
	}
}
