package leiden

// Community is one community of a hierarchy. Level-0 communities partition
// the graph; the children of a community (Level+1) partition its Nodes.
type Community struct {
	ID       int   // index in the slice Hierarchical returns
	Level    int   // 0 for the communities of the whole graph
	Parent   int   // ID of the enclosing community, -1 at level 0
	Children []int // IDs of the sub-communities, ascending; nil for a leaf
	Nodes    []int // original node ids, ascending
}

// HierOptions tunes Hierarchical.
type HierOptions struct {
	Options
	// MaxClusterSize is the size above which a community is split again.
	// Zero or negative means 10, graspologic's default.
	MaxClusterSize int
}

// Hierarchical runs Leiden on the whole graph (level 0), then again on the
// subgraph induced by every community with more than MaxClusterSize nodes,
// giving its children at the next level, recursively, like graspologic's
// hierarchical_leiden. A community Leiden keeps whole stays a leaf even if it
// is too large. Resolution applies to each subgraph's own modularity.
//
// Communities are numbered breadth first: all of level 0, then the children
// of community 0, of community 1, and so on; siblings are ordered by their
// smallest node. Each split is seeded from Seed and the community's ID, so the
// result is deterministic for a seed. It panics on invalid options, as Leiden
// does.
func Hierarchical(g *Graph, opt HierOptions) []Community {
	return hierarchical(g.compile(), opt)
}

// hierarchical is Hierarchical on a compiled graph.
func hierarchical(net *network, opt HierOptions) []Community {
	opts := opt.Options.withDefaults()
	opts.mustCheck()
	maxSize := opt.MaxClusterSize
	if maxSize <= 0 {
		maxSize = DefaultMaxClusterSize
	}
	if net.numNodes() == 0 {
		return nil
	}
	var communities []Community
	appendPartition := func(membership []int, nodes []int, level, parent int) {
		k := 0
		for _, c := range membership {
			k = max(k, c+1)
		}
		first := len(communities)
		for c := range k {
			communities = append(communities, Community{ID: first + c, Level: level, Parent: parent})
		}
		for li, c := range membership {
			node := li
			if nodes != nil {
				node = nodes[li]
			}
			communities[first+c].Nodes = append(communities[first+c].Nodes, node)
		}
		if parent >= 0 {
			for c := range k {
				communities[parent].Children = append(communities[parent].Children, first+c)
			}
		}
	}

	appendPartition(newOptimizer(opts, opts.Seed).run(net), nil, 0, -1)

	local := make([]int32, net.numNodes())
	for i := range local {
		local[i] = -1
	}
	// communities grows while we walk it: that is the breadth-first queue.
	for id := 0; id < len(communities); id++ {
		c := communities[id]
		if len(c.Nodes) <= maxSize {
			continue
		}
		sub := net.induced(c.Nodes, local)
		membership := newOptimizer(opts, splitSeed(opts.Seed, id)).run(sub)
		if !splits(membership) {
			continue
		}
		appendPartition(membership, c.Nodes, c.Level+1, id)
	}
	return communities
}

func splits(membership []int) bool {
	for _, c := range membership {
		if c != 0 {
			return true
		}
	}
	return false
}

// splitSeed derives the seed for splitting community id (SplitMix64 finaliser),
// so sibling runs use unrelated random streams.
func splitSeed(seed uint64, id int) uint64 {
	z := seed + uint64(id+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
