package neo4jgraph

import (
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
)

// This file and aggregate.go are sqlitegraph's, word for word: both stores
// must combine a chunk's mentions and aggregate them identically, which the
// graphtest suite checks. (They would be shared from libs/graph if they were
// exported there.)

// entityMention is one chunk's combined contribution to one entity.
type entityMention struct {
	key         string
	name        string
	typ         string
	description string
}

// relationMention is one chunk's combined contribution to one undirected
// relation; src < dst.
type relationMention struct {
	src         string
	dst         string
	description string
	keywords    []string
	weight      float64
}

type relationKey struct{ src, dst string }

// contribution is what one chunk adds to the graph, with duplicate mentions
// inside the chunk already combined, in order of first appearance.
type contribution struct {
	entities  []entityMention
	relations []relationMention
}

// contributionOf combines a chunk's extracted entities and relations into one
// mention per entity key and one per relation key.
func contributionOf(chunk graph.ChunkGraph) contribution {
	var c contribution
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
			entityAt[key] = len(c.entities)
			c.entities = append(c.entities, entityMention{key: key, name: name, typ: typ})
			entityDescriptions = append(entityDescriptions, appendDistinct(nil, description))
			return
		}
		if c.entities[i].typ == graph.UnknownType {
			c.entities[i].typ = typ
		}
		entityDescriptions[i] = appendDistinct(entityDescriptions[i], description)
	}
	for _, e := range chunk.Entities {
		addEntity(e.Name, e.Type, e.Description)
	}

	relationAt := make(map[relationKey]int, len(chunk.Relations))
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
		k := relationKey{src, dst}
		i, seen := relationAt[k]
		if !seen {
			i = len(c.relations)
			relationAt[k] = i
			c.relations = append(c.relations, relationMention{src: src, dst: dst})
			relationDescriptions = append(relationDescriptions, nil)
		}
		c.relations[i].weight += r.Weight
		c.relations[i].keywords = append(c.relations[i].keywords, r.Keywords...)
		relationDescriptions[i] = appendDistinct(relationDescriptions[i], r.Description)
	}

	for i := range c.entities {
		c.entities[i].description = strings.Join(entityDescriptions[i], "\n")
	}
	for i := range c.relations {
		c.relations[i].description = strings.Join(relationDescriptions[i], "\n")
		c.relations[i].keywords = normalizeKeywords(c.relations[i].keywords)
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
