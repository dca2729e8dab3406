// Package community turns a namespace's graph into GraphRAG communities:
// hierarchical Leiden clustering with stable ids and content hashes, the
// report input tables as nano-graphrag packs them, the tolerant parse of an
// LLM's report, and an extractive report for when there is no LLM.
package community

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"

	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/leiden"
)

// minEdgeWeight is the clustering weight of a relation of weight 0: it
// still relates its entities, where an edge of weight 0 would leave them in
// communities of their own.
const minEdgeWeight = 0.01

// Options tune the clustering.
type Options struct {
	// MaxClusterSize is the size above which a community is split into
	// sub-communities at the next level.
	MaxClusterSize int
	// Seed makes the clustering deterministic.
	Seed uint64
}

// Community is one detected community and the part of the graph its report
// is written from.
type Community struct {
	// Community has the ID, Level, Parent and Keys; the report fields are
	// empty, and Hash is left to the caller (see ContentHash).
	graph.Community
	// Children index the sub-communities in the slice Detect returns.
	Children []int
	// Entities are the members, in key order.
	Entities []graph.Entity
	// Relations are the relations between members, in (Source, Target)
	// order.
	Relations []graph.Relation
	// ContentHash is the hex SHA-256 of the members, their names, types and
	// descriptions, and the relations between them with their descriptions
	// and weights: everything a report is written from.
	ContentHash string
}

// Cluster clusters the entities by their relations, weighted by relation
// weight, and returns the communities with their ids, levels, members,
// parents and children, but no content (see Fill). Entities without
// relations belong to no community (as in GraphRAG, which clusters the
// connected part of the graph): a report of a lone entity would only repeat
// its description. The result is ordered by level, then as leiden numbers
// the communities.
//
// eachEdge streams the edges (as graph.Store's EachEdge does, in any
// order): they are held compactly as they arrive, each distinct key once,
// so clustering millions of relations does not hold them as strings.
func Cluster(eachEdge func(fn func(graph.Edge) error) error, opt Options) ([]Community, error) {
	g := leiden.NewKeyedGraph()
	err := eachEdge(func(e graph.Edge) error {
		return g.AddEdge(leiden.Edge{Source: e.Source, Target: e.Target, Weight: max(e.Weight, minEdgeWeight)})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster entities: %w", err)
	}
	clusters, err := g.Hierarchical(leiden.HierOptions{
		Options:        leiden.Options{Seed: opt.Seed},
		MaxClusterSize: opt.MaxClusterSize,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster entities: %w", err)
	}
	out := make([]Community, len(clusters))
	for i, kc := range clusters {
		c := Community{Children: kc.Children}
		c.ID = ID(kc.Level, kc.Keys)
		c.Level = kc.Level
		c.Keys = kc.Keys
		out[i] = c
	}
	for i, kc := range clusters {
		if kc.Parent >= 0 {
			out[i].Parent = out[kc.Parent].ID
		}
	}
	return out, nil
}

// Fill sets the communities' Entities (from entities, by key), their
// Relations (those of relations between two members) and ContentHash.
// entities and relations may hold more than the communities need.
func Fill(cs []*Community, entities map[string]graph.Entity, relations []graph.Relation) {
	// An entity is in at most one of the communities of a level, so a
	// relation is in the communities both its endpoints share: found from
	// the endpoints' communities in one pass over the relations, not one
	// per community.
	clustersOf := map[string][]int{}
	for i, c := range cs {
		for _, k := range c.Keys {
			clustersOf[k] = append(clustersOf[k], i)
		}
	}
	for _, c := range cs {
		c.Entities, c.Relations = nil, nil
	}
	for _, r := range relations {
		for _, i := range clustersOf[r.Source] {
			if slices.Contains(clustersOf[r.Target], i) {
				cs[i].Relations = append(cs[i].Relations, r)
			}
		}
	}
	for _, c := range cs {
		for _, k := range c.Keys {
			e, ok := entities[k]
			if !ok {
				// A relation endpoint is always an entity in a consistent
				// graph; stand in its key rather than fail the build.
				e = graph.Entity{Key: k, Name: k, Type: graph.UnknownType}
			}
			c.Entities = append(c.Entities, e)
		}
		slices.SortFunc(c.Relations, func(a, b graph.Relation) int {
			return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
		})
		c.ContentHash = contentHash(c.Entities, c.Relations)
	}
}

// Detect clusters a whole snapshot and fills every community's content:
// Cluster and Fill in one, for a graph held in memory.
func Detect(snap graph.Snapshot, opt Options) ([]Community, error) {
	cs, err := Cluster(func(fn func(graph.Edge) error) error {
		for _, r := range snap.Relations {
			if err := fn(graph.Edge{Source: r.Source, Target: r.Target, Weight: r.Weight}); err != nil {
				return err
			}
		}
		return nil
	}, opt)
	if err != nil {
		return nil, err
	}
	entities := make(map[string]graph.Entity, len(snap.Entities))
	for _, e := range snap.Entities {
		entities[e.Key] = e
	}
	ptrs := make([]*Community, len(cs))
	for i := range cs {
		ptrs[i] = &cs[i]
	}
	Fill(ptrs, entities, snap.Relations)
	return cs, nil
}

// ID is a community's id: its level and the first 12 hex digits of the
// SHA-256 of its sorted member keys, so the same members at the same level
// keep their id from one build to the next.
func ID(level int, sortedKeys []string) string {
	h := sha256.New()
	for _, k := range sortedKeys {
		writeField(h, k)
	}
	return fmt.Sprintf("c%d-%s", level, hex.EncodeToString(h.Sum(nil))[:12])
}

func contentHash(entities []graph.Entity, relations []graph.Relation) string {
	h := sha256.New()
	writeField(h, "entities")
	for _, e := range entities {
		writeField(h, e.Key)
		writeField(h, e.Name)
		writeField(h, e.Type)
		writeField(h, e.Description)
	}
	writeField(h, "relations")
	for _, r := range relations {
		writeField(h, r.Source)
		writeField(h, r.Target)
		writeField(h, r.Description)
		writeField(h, strconv.FormatFloat(r.Weight, 'g', -1, 64))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeField writes a length-prefixed field, so that no two sequences of
// fields hash alike.
func writeField(h hash.Hash, s string) {
	h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
}

// degrees counts, per member key, the relations between members touching
// it.
func degrees(relations []graph.Relation) map[string]int {
	d := make(map[string]int)
	for _, r := range relations {
		d[r.Source]++
		d[r.Target]++
	}
	return d
}

// byDegree returns the members, highest degree first, then by key.
func byDegree(entities []graph.Entity, degree map[string]int) []graph.Entity {
	out := slices.Clone(entities)
	slices.SortStableFunc(out, func(a, b graph.Entity) int {
		return cmp.Or(cmp.Compare(degree[b.Key], degree[a.Key]), cmp.Compare(a.Key, b.Key))
	})
	return out
}
