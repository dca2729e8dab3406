package provenance

import (
	"cmp"
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// MentionSource locates a mention. Rows are aggregated in (docID, index,
// chunkID) order so descriptions and sums come out the same however the
// chunks were merged and however the rows were read.
type MentionSource struct {
	DocID   string
	ChunkID string
	Index   int
}

// EntityRow is one stored entity mention, as a store reads it back.
type EntityRow struct {
	MentionSource
	Name        string
	Type        string
	Description string
}

// RelationRow is one stored relation mention, as a store reads it back.
type RelationRow struct {
	MentionSource
	Description string
	Keywords    []string
	Weight      float64
}

// AggregateEntity derives an entity from all its mention rows; it sorts
// rows.
func AggregateEntity(key string, rows []EntityRow) graph.Entity {
	slices.SortFunc(rows, func(a, b EntityRow) int { return compareSources(a.MentionSource, b.MentionSource) })
	names := make(map[string]int, len(rows))
	types := make(map[string]int, len(rows))
	var descriptions []string
	sources := make([]MentionSource, 0, len(rows))
	for _, r := range rows {
		names[r.Name]++
		if r.Type != graph.UnknownType {
			types[r.Type]++
		}
		descriptions = appendDistinct(descriptions, r.Description)
		sources = append(sources, r.MentionSource)
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

// AggregateRelation derives a relation from all its mention rows; it sorts
// rows.
func AggregateRelation(key RelationKey, rows []RelationRow) graph.Relation {
	slices.SortFunc(rows, func(a, b RelationRow) int { return compareSources(a.MentionSource, b.MentionSource) })
	var (
		descriptions []string
		keywords     []string
		weight       float64
	)
	sources := make([]MentionSource, 0, len(rows))
	for _, r := range rows {
		descriptions = appendDistinct(descriptions, r.Description)
		keywords = append(keywords, r.Keywords...)
		weight += r.Weight
		sources = append(sources, r.MentionSource)
	}
	return graph.Relation{
		Source:      key.Src,
		Target:      key.Dst,
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

func compareSources(a, b MentionSource) int {
	return cmp.Or(cmp.Compare(a.DocID, b.DocID), cmp.Compare(a.Index, b.Index), cmp.Compare(a.ChunkID, b.ChunkID))
}

func chunkIDs(sources []MentionSource) []string {
	ids := make([]string, len(sources))
	for i, s := range sources {
		ids[i] = s.ChunkID
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
