package provenance

import (
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// EntityMention is one chunk's combined contribution to one entity.
type EntityMention struct {
	Key         string
	Name        string
	Type        string
	Description string
}

// RelationMention is one chunk's combined contribution to one undirected
// relation; src < dst.
type RelationMention struct {
	Src         string
	Dst         string
	Description string
	Keywords    []string
	Weight      float64
}

// RelationKey identifies an undirected relation: Src < Dst.
type RelationKey struct{ Src, Dst string }

// Contribution is what one chunk adds to the graph, with duplicate mentions
// inside the chunk already combined, in order of first appearance.
type Contribution struct {
	Entities  []EntityMention
	Relations []RelationMention
}

// ContributionOf combines a chunk's extracted entities and relations into one
// mention per entity key and one per relation key.
func ContributionOf(chunk graph.ChunkGraph) Contribution {
	var c Contribution
	entityAt := make(map[string]int, len(chunk.Entities))
	entityDescriptions := make([][]string, 0, len(chunk.Entities))
	addEntity := func(name, typ, description string) {
		key := events.EntityKey(name)
		if key == "" {
			return
		}
		if typ == "" {
			typ = graph.UnknownType
		}
		i, seen := entityAt[key]
		if !seen {
			entityAt[key] = len(c.Entities)
			c.Entities = append(c.Entities, EntityMention{Key: key, Name: name, Type: typ})
			entityDescriptions = append(entityDescriptions, appendDistinct(nil, description))
			return
		}
		if c.Entities[i].Type == graph.UnknownType {
			c.Entities[i].Type = typ
		}
		entityDescriptions[i] = appendDistinct(entityDescriptions[i], description)
	}
	for _, e := range chunk.Entities {
		addEntity(e.Name, e.Type, e.Description)
	}

	relationAt := make(map[RelationKey]int, len(chunk.Relations))
	relationDescriptions := make([][]string, 0, len(chunk.Relations))
	for _, r := range chunk.Relations {
		src, dst := events.EntityKey(r.Source), events.EntityKey(r.Target)
		if src == "" || dst == "" || src == dst {
			continue
		}
		// Endpoints the extractor did not list as entities still become
		// entities, as nano-graphrag does, so every relation has both ends.
		for _, endpoint := range []string{r.Source, r.Target} {
			if _, listed := entityAt[events.EntityKey(endpoint)]; !listed {
				addEntity(endpoint, graph.UnknownType, "")
			}
		}
		if dst < src {
			src, dst = dst, src
		}
		k := RelationKey{src, dst}
		i, seen := relationAt[k]
		if !seen {
			i = len(c.Relations)
			relationAt[k] = i
			c.Relations = append(c.Relations, RelationMention{Src: src, Dst: dst})
			relationDescriptions = append(relationDescriptions, nil)
		}
		c.Relations[i].Weight += r.Weight
		c.Relations[i].Keywords = append(c.Relations[i].Keywords, r.Keywords...)
		relationDescriptions[i] = appendDistinct(relationDescriptions[i], r.Description)
	}

	for i := range c.Entities {
		c.Entities[i].Description = strings.Join(entityDescriptions[i], "\n")
	}
	for i := range c.Relations {
		c.Relations[i].Description = strings.Join(relationDescriptions[i], "\n")
		c.Relations[i].Keywords = normalizeKeywords(c.Relations[i].Keywords)
	}
	return c
}

// appendDistinct appends a description unless it is blank or already there.
func appendDistinct(descriptions []string, description string) []string {
	if strings.TrimSpace(description) == "" || slices.Contains(descriptions, description) {
		return descriptions
	}
	return append(descriptions, description)
}

// normalizeKeywords returns the sorted distinct non-blank keywords, nil if
// there are none.
func normalizeKeywords(keywords []string) []string {
	out := slices.DeleteFunc(slices.Clone(keywords), func(k string) bool { return strings.TrimSpace(k) == "" })
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}
