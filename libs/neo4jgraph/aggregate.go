package neo4jgraph

import (
	"cmp"
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// mentionSource locates a mention. Rows are aggregated in (docID, index,
// chunkID) order so descriptions and sums come out the same however the
// chunks were merged and however the rows were read.
type mentionSource struct {
	docID   string
	chunkID string
	index   int
}

type entityRow struct {
	mentionSource
	name        string
	typ         string
	description string
}

type relationRow struct {
	mentionSource
	description string
	keywords    []string
	weight      float64
}

// aggregateEntity derives an entity from all its mention rows; it sorts
// rows.
func aggregateEntity(key string, rows []entityRow) graph.Entity {
	slices.SortFunc(rows, func(a, b entityRow) int { return compareSources(a.mentionSource, b.mentionSource) })
	names := make(map[string]int, len(rows))
	types := make(map[string]int, len(rows))
	var descriptions []string
	sources := make([]mentionSource, 0, len(rows))
	for _, r := range rows {
		names[r.name]++
		if r.typ != graph.UnknownType {
			types[r.typ]++
		}
		descriptions = appendDistinct(descriptions, r.description)
		sources = append(sources, r.mentionSource)
	}
	typ := mostFrequent(types)
	if typ == "" {
		typ = graph.UnknownType
	}
	return graph.Entity{
		Key:         key,
		Name:        mostFrequent(names),
		Type:        typ,
		Description: strings.Join(descriptions, "\n"),
		Mentions:    len(rows),
		ChunkIDs:    chunkIDs(sources),
	}
}

// aggregateRelation derives a relation from all its mention rows; it sorts
// rows.
func aggregateRelation(key relationKey, rows []relationRow) graph.Relation {
	slices.SortFunc(rows, func(a, b relationRow) int { return compareSources(a.mentionSource, b.mentionSource) })
	var (
		descriptions []string
		keywords     []string
		weight       float64
	)
	sources := make([]mentionSource, 0, len(rows))
	for _, r := range rows {
		descriptions = appendDistinct(descriptions, r.description)
		keywords = append(keywords, r.keywords...)
		weight += r.weight
		sources = append(sources, r.mentionSource)
	}
	return graph.Relation{
		Source:      key.src,
		Target:      key.dst,
		Description: strings.Join(descriptions, "\n"),
		Keywords:    normalizeKeywords(keywords),
		Weight:      weight,
		Mentions:    len(rows),
		ChunkIDs:    chunkIDs(sources),
	}
}

// mostFrequent returns the value counted most often, the smallest on ties,
// "" for no values.
func mostFrequent(counts map[string]int) string {
	best, bestCount := "", 0
	for value, count := range counts {
		if count > bestCount || (count == bestCount && value < best) {
			best, bestCount = value, count
		}
	}
	return best
}

func compareSources(a, b mentionSource) int {
	return cmp.Or(cmp.Compare(a.docID, b.docID), cmp.Compare(a.index, b.index), cmp.Compare(a.chunkID, b.chunkID))
}

func chunkIDs(sources []mentionSource) []string {
	ids := make([]string, len(sources))
	for i, s := range sources {
		ids[i] = s.chunkID
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
