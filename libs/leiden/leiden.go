// Package leiden finds communities in weighted undirected graphs with the
// Leiden algorithm (Traag, Waltman & van Eck, "From Louvain to Leiden:
// guaranteeing well-connected communities", Sci. Rep. 9, 5233, 2019),
// optimising modularity with a resolution parameter, and builds
// GraphRAG-style hierarchies of communities bounded in size.
//
// One Leiden iteration repeats, level by level:
//
//  1. fast local moving: nodes taken from a queue (initially all nodes in
//     random order) move to the neighbouring community, or an empty one, with
//     the largest strictly positive modularity gain; when a node moves, its
//     neighbours outside its new community are queued again;
//  2. refinement: inside every community S, starting from singletons, each
//     node v that is still a singleton and well connected to S
//     (E(v, S−v) ≥ γ·k_v·(K_S−k_v)/2m) joins a sub-community C of S that is
//     itself well connected to S, or stays alone, chosen at random with
//     Pr(C) ∝ exp(ΔH/θ) among the moves with ΔH ≥ 0 — the randomised variant of
//     the paper, not the greedy one. ΔH is in edge-weight units
//     (w(v,C) − γ·k_v·K_C/2m), as in the authors' reference implementation and
//     igraph, so θ = 0.01 makes the choice close to greedy with random tie
//     breaks. Sub-communities only ever grow along edges, so each is connected;
//  3. aggregation: every refined sub-community becomes a node, and the
//     unrefined partition is the initial assignment of the aggregate nodes;
//
// until local moving leaves every node of the current level in its own
// community. The final communities are then aggregate nodes, that is refined
// sub-communities, so every community induces a connected subgraph. If
// refinement merges nothing (possible when no node is well connected), the
// level is aggregated by the connected components of each community instead,
// which keeps that guarantee, where igraph would aggregate by the unrefined
// partition.
//
// Iterations repeat from the previous result until the partition stops
// changing or improving noticeably (see Options.MaxIterations).
package leiden

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Defaults applied to zero-valued options.
const (
	DefaultResolution     = 1.0
	DefaultRandomness     = 0.01
	DefaultMaxClusterSize = 10
)

// StableImprovement is the modularity gain below which an iteration counts as
// converged when Options.MaxIterations is zero. Each iteration re-refines at
// random, so large or structureless graphs keep yielding gains of 1e-5 to
// 1e-4 per iteration for a long time: on an Erdős–Rényi graph with 100k nodes
// going on to 1e-5 costs four times as long for +0.004 modularity, and on a
// planted partition of that size 40 iterations add only +0.0005.
const StableImprovement = 1e-4

// Options tunes a Leiden run. The zero value means modularity at γ = 1, seed
// 0, iterations until stable and θ = 0.01.
type Options struct {
	// Resolution is γ in Q = 1/2m Σ_ij (A_ij − γ k_i k_j / 2m) δ(c_i, c_j);
	// higher values give more, smaller communities. Zero means 1.0.
	Resolution float64
	// Seed drives every random choice: the same seed, graph and options give
	// the same membership.
	Seed uint64
	// MaxIterations bounds the number of Leiden iterations, each starting
	// from the previous partition; a run also ends early once an iteration
	// changes nothing. Zero or negative means until stable: until an
	// iteration changes nothing or gains less than StableImprovement
	// modularity. igraph and leidenalg default to 2 iterations.
	MaxIterations int
	// Randomness is θ, the temperature of the random choice in refinement.
	// Zero means 0.01.
	Randomness float64
}

func (o Options) withDefaults() Options {
	if o.Resolution == 0 {
		o.Resolution = DefaultResolution
	}
	if o.Randomness == 0 {
		o.Randomness = DefaultRandomness
	}
	return o
}

func (o Options) check() error {
	if o.Resolution < 0 || math.IsNaN(o.Resolution) || math.IsInf(o.Resolution, 0) {
		return fmt.Errorf("leiden: invalid resolution %v", o.Resolution)
	}
	if o.Randomness < 0 || math.IsNaN(o.Randomness) || math.IsInf(o.Randomness, 0) {
		return fmt.Errorf("leiden: invalid randomness %v", o.Randomness)
	}
	return nil
}

func (o Options) mustCheck() {
	if err := o.check(); err != nil {
		panic(err.Error())
	}
}

// Leiden partitions g and returns the community of every node. Ids are dense,
// 0..k-1, numbered in order of each community's smallest node. Isolated nodes
// get communities of their own. It panics on a negative, NaN or infinite
// Resolution or Randomness.
func Leiden(g *Graph, opt Options) []int {
	opt = opt.withDefaults()
	opt.mustCheck()
	return newOptimizer(opt, opt.Seed).run(g.compile())
}

// Modularity is the modularity of membership on g at the given resolution:
// 1/m Σ_c (E_c − γ K_c²/4m), where E_c is the weight of the edges inside c
// (self-loops once) and K_c the summed strength of its nodes. Community ids
// may be any integers. A graph without edges has modularity 0. It panics if
// membership does not have one entry per node.
func Modularity(g *Graph, membership []int, resolution float64) float64 {
	if len(membership) != g.n {
		panic(fmt.Sprintf("leiden: membership has %d entries for %d nodes", len(membership), g.n))
	}
	dense, k := canonical(membership)
	return g.compile().modularity(dense, k, resolution)
}

// modularity expects dense community ids 0..k-1.
func (net *network) modularity(membership []int, k int, resolution float64) float64 {
	if net.total == 0 {
		return 0
	}
	internal := make([]float64, k)
	strength := make([]float64, k)
	for i, c := range membership {
		internal[c] += 2 * net.selfLoop[i]
		strength[c] += net.strength[i]
		for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
			if membership[net.adj[p]] == c {
				internal[c] += net.weights[p]
			}
		}
	}
	// internal holds 2·E_c: edges from both ends, self-loops doubled.
	var q float64
	for c := range k {
		q += internal[c]/2 - resolution*strength[c]*strength[c]/(4*net.total)
	}
	return q / net.total
}

// canonical renumbers community ids densely in order of first appearance.
func canonical(membership []int) ([]int, int) {
	ids := make(map[int]int)
	out := make([]int, len(membership))
	for i, c := range membership {
		id, ok := ids[c]
		if !ok {
			id = len(ids)
			ids[c] = id
		}
		out[i] = id
	}
	return out, len(ids)
}

// renumber rewrites ids in 0..len(membership)-1 densely in order of first
// appearance, in place, and returns the community count. scratch needs one
// int per node.
func renumber(membership, scratch []int) int {
	for i := range membership {
		scratch[i] = -1
	}
	k := 0
	for i, c := range membership {
		if scratch[c] < 0 {
			scratch[c] = k
			k++
		}
		membership[i] = scratch[c]
	}
	return k
}

// optimizer carries the random source and scratch space of one run; the
// slices are sized for the largest (first) level and reused below it.
type optimizer struct {
	opt Options
	rng *rand.Rand

	clusterWeight []float64
	clusterSize   []int
	edgeWeight    []float64 // weight from the current node to each cluster
	external      []float64 // refinement: E(C, S−C) per sub-community
	neighbours    []int
	gains         []float64
	queued        []bool
	queue         []int
	unused        []int
	joined        []bool
	scratch       []int
}

func newOptimizer(opt Options, seed uint64) *optimizer {
	return &optimizer{
		opt: opt,
		// The second PCG word is fixed so that only Seed selects the stream.
		rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
	}
}

func (o *optimizer) reserve(n int) {
	if cap(o.clusterWeight) >= n {
		return
	}
	o.clusterWeight = make([]float64, n)
	o.clusterSize = make([]int, n)
	o.edgeWeight = make([]float64, n)
	o.external = make([]float64, n)
	o.neighbours = make([]int, 0, n)
	o.gains = make([]float64, 0, n)
	o.queued = make([]bool, n)
	o.queue = make([]int, n)
	o.unused = make([]int, 0, n)
	o.joined = make([]bool, n)
	o.scratch = make([]int, n)
}

// run iterates Leiden from singletons until stable (or MaxIterations) and
// returns canonical community ids.
func (o *optimizer) run(net *network) []int {
	n := net.numNodes()
	o.reserve(n)
	membership := make([]int, n)
	for i := range membership {
		membership[i] = i
	}
	if n == 0 {
		return membership
	}
	quality := net.modularity(membership, n, o.opt.Resolution)
	for it := 0; o.opt.MaxIterations <= 0 || it < o.opt.MaxIterations; it++ {
		next := o.iterate(net, membership)
		nextK := renumber(next, o.scratch)
		if slices.Equal(next, membership) {
			break
		}
		nextQuality := net.modularity(next, nextK, o.opt.Resolution)
		if nextQuality <= quality {
			// Only float noise can change the partition without improving
			// it; stop rather than wander.
			break
		}
		improvement := nextQuality - quality
		membership, quality = next, nextQuality
		if o.opt.MaxIterations <= 0 && improvement < StableImprovement {
			break
		}
	}
	return membership
}

// iterate performs one Leiden iteration on net starting from membership
// (ids in 0..n-1) and returns the new membership of net's nodes.
func (o *optimizer) iterate(net *network, start []int) []int {
	n := net.numNodes()
	level := net
	communities := slices.Clone(start) // community of each node of level
	toLevel := make([]int, n)          // node of net -> node of level
	for i := range toLevel {
		toLevel[i] = i
	}
	for {
		o.moveNodes(level, communities)
		nodes := level.numNodes()
		k := renumber(communities, o.scratch)
		if k == nodes {
			break
		}
		refined, refinedK := o.refine(level, communities)
		if refinedK == nodes {
			refined, refinedK = components(level, communities)
			if refinedK == nodes {
				// No community has an internal edge: singletons are at least
				// as good and keep every community connected.
				copy(communities, refined)
				break
			}
		}
		next := make([]int, refinedK)
		for v, r := range refined {
			next[r] = communities[v]
		}
		for i, v := range toLevel {
			toLevel[i] = refined[v]
		}
		level = level.aggregate(refined, refinedK)
		communities = next
	}
	out := make([]int, n)
	for i, v := range toLevel {
		out[i] = communities[v]
	}
	return out
}

// moveNodes is the queue-based fast local moving phase: it moves nodes between
// communities while some move strictly increases modularity.
func (o *optimizer) moveNodes(net *network, membership []int) {
	n := net.numNodes()
	if net.total == 0 {
		return
	}
	res := o.opt.Resolution / (2 * net.total)
	clusterWeight := o.clusterWeight[:n]
	clusterSize := o.clusterSize[:n]
	edgeWeight := o.edgeWeight[:n]
	queued := o.queued[:n]
	clear(clusterWeight)
	clear(clusterSize)
	for i, c := range membership {
		clusterWeight[c] += net.strength[i]
		clusterSize[c]++
	}
	unused := o.unused[:0]
	for c := n - 1; c >= 0; c-- {
		if clusterSize[c] == 0 {
			unused = append(unused, c)
		}
	}
	queue := o.queue[:n]
	for i := range queue {
		queue[i] = i
	}
	o.rng.Shuffle(n, func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })
	for i := range queued {
		queued[i] = true
	}
	head, pending := 0, n
	for pending > 0 {
		j := queue[head]
		head++
		if head == n {
			head = 0
		}
		pending--
		queued[j] = false

		current := membership[j]
		kj := net.strength[j]
		clusterWeight[current] -= kj
		clusterSize[current]--
		if clusterSize[current] == 0 {
			unused = append(unused, current)
		}
		empty := unused[len(unused)-1]
		candidates := append(o.neighbours[:0], empty)
		for p := net.offsets[j]; p < net.offsets[j+1]; p++ {
			c := membership[net.adj[p]]
			if edgeWeight[c] == 0 {
				candidates = append(candidates, c)
			}
			edgeWeight[c] += net.weights[p]
		}
		// Staying wins ties, so nodes do not drift between equal communities.
		best := current
		bestGain := edgeWeight[current] - kj*clusterWeight[current]*res
		for _, c := range candidates {
			if gain := edgeWeight[c] - kj*clusterWeight[c]*res; gain > bestGain {
				best, bestGain = c, gain
			}
			edgeWeight[c] = 0
		}
		edgeWeight[current] = 0
		o.neighbours = candidates

		clusterWeight[best] += kj
		clusterSize[best]++
		if best == unused[len(unused)-1] {
			unused = unused[:len(unused)-1]
		}
		if best == current {
			continue
		}
		membership[j] = best
		for p := net.offsets[j]; p < net.offsets[j+1]; p++ {
			if l := net.adj[p]; !queued[l] && membership[l] != best {
				queued[l] = true
				tail := head + pending
				if tail >= n {
					tail -= n
				}
				queue[tail] = int(l)
				pending++
			}
		}
	}
	o.unused = unused
}

// refine splits every community of membership (ids in 0..n-1) into
// well-connected sub-communities by merging singletons (MergeNodesSubset in
// the paper) and returns dense sub-community ids.
func (o *optimizer) refine(net *network, membership []int) ([]int, int) {
	n := net.numNodes()
	res := o.opt.Resolution / (2 * net.total)
	theta := o.opt.Randomness
	totalOfSubset := make([]float64, n)
	for i, c := range membership {
		totalOfSubset[c] += net.strength[i]
	}
	refined := make([]int, n)
	clusterWeight := o.clusterWeight[:n]
	external := o.external[:n]
	edgeWeight := o.edgeWeight[:n]
	joined := o.joined[:n]
	for i := range n {
		refined[i] = i
		clusterWeight[i] = net.strength[i]
		joined[i] = false
		var ext float64
		for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
			if membership[net.adj[p]] == membership[i] {
				ext += net.weights[p]
			}
		}
		external[i] = ext
	}
	order := o.queue[:n]
	for i := range order {
		order[i] = i
	}
	o.rng.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })

	for _, j := range order {
		if joined[j] {
			continue // someone already merged into j's sub-community
		}
		subset := membership[j]
		total := totalOfSubset[subset]
		kj := net.strength[j]
		if external[j] < kj*(total-kj)*res {
			continue // j is not well connected to its community
		}
		clusterWeight[j] = 0
		external[j] = 0

		candidates := append(o.neighbours[:0], j)
		for p := net.offsets[j]; p < net.offsets[j+1]; p++ {
			l := net.adj[p]
			if membership[l] != subset {
				continue
			}
			c := refined[l]
			if edgeWeight[c] == 0 {
				candidates = append(candidates, c)
			}
			edgeWeight[c] += net.weights[p]
		}
		gains := append(o.gains[:0], 0) // staying alone: ΔH = 0
		best, bestGain := j, 0.0
		for _, c := range candidates[1:] {
			gain := math.Inf(-1)
			w := clusterWeight[c]
			if external[c] >= w*(total-w)*res {
				gain = edgeWeight[c] - kj*w*res
			}
			gains = append(gains, gain)
			if gain > bestGain {
				best, bestGain = c, gain
			}
			edgeWeight[c] = 0
		}
		chosen := best
		if theta > 0 {
			chosen = candidates[o.pick(gains, bestGain, theta)]
		}
		o.neighbours, o.gains = candidates, gains

		clusterWeight[chosen] += kj
		for p := net.offsets[j]; p < net.offsets[j+1]; p++ {
			l := net.adj[p]
			if membership[l] != subset {
				continue
			}
			if refined[l] == chosen {
				external[chosen] -= net.weights[p]
			} else {
				external[chosen] += net.weights[p]
			}
		}
		if chosen != j {
			refined[j] = chosen
			joined[chosen] = true
		}
	}
	k := renumber(refined, o.scratch)
	return refined, k
}

// pick draws index i with probability ∝ exp((gains[i]−max)/θ) over the
// non-negative gains; subtracting the maximum keeps exp finite.
func (o *optimizer) pick(gains []float64, max, theta float64) int {
	var sum float64
	for _, g := range gains {
		if g >= 0 {
			sum += math.Exp((g - max) / theta)
		}
	}
	r := o.rng.Float64() * sum
	last := 0
	for i, g := range gains {
		if g < 0 {
			continue
		}
		last = i
		r -= math.Exp((g - max) / theta)
		if r < 0 {
			return i
		}
	}
	return last // rounding left r ≥ 0 after the last term
}

// components numbers the connected components of each community's induced
// subgraph, densely.
func components(net *network, membership []int) ([]int, int) {
	n := net.numNodes()
	comp := make([]int, n)
	for i := range comp {
		comp[i] = -1
	}
	stack := make([]int, 0, 64)
	k := 0
	for s := range n {
		if comp[s] >= 0 {
			continue
		}
		comp[s] = k
		stack = append(stack[:0], s)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for p := net.offsets[i]; p < net.offsets[i+1]; p++ {
				l := int(net.adj[p])
				if comp[l] < 0 && membership[l] == membership[i] {
					comp[l] = k
					stack = append(stack, l)
				}
			}
		}
		k++
	}
	return comp, k
}
