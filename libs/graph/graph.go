// Package graph holds the domain types shared by the knowledge-graph stores
// and their users: what one chunk's extraction contributes, and the
// aggregated entities and relations the stores derive from all contributions.
//
// Stores keep each chunk's contribution separately (per-chunk provenance) and
// aggregate at read time, so re-merging a chunk is idempotent and deleting a
// document subtracts exactly what it added.
package graph

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"

	"github.com/kgraph-dev/kgraph/events"
)

// UnknownType is the type of an entity mention that only appears as a
// relation endpoint; aggregation prefers any other type over it.
const UnknownType = "UNKNOWN"

// ChunkGraph is one chunk's extraction result, the unit of merging. A chunk
// is identified by (Namespace, DocID, ChunkID).
type ChunkGraph struct {
	Namespace string
	DocID     string
	JobID     string
	ChunkID   string
	Index     int
	Text      string
	Tokens    int
	Entities  []events.Entity
	Relations []events.Relation
}

// MergeResult reports what one merge left in the store: Entities and
// Relations count the distinct entities and relations the merged chunk
// contributes, DocEntities and DocRelations those its whole document
// contributes after the merge.
type MergeResult struct {
	Entities     int
	Relations    int
	DocEntities  int
	DocRelations int
}

// Entity is the aggregated view of every mention of one entity key in a
// namespace.
type Entity struct {
	// Key is events.EntityKey of the names the entity was mentioned by.
	Key string
	// Name is the most frequent name as written (ties: the smallest).
	Name string
	// Type is the most frequent type other than UnknownType, if there is
	// one (ties: the smallest).
	Type string
	// Description joins the distinct non-empty descriptions with "\n",
	// ordered by document id and chunk index, unless a Summary of exactly
	// that joined description is stored: then it is the summary's text.
	Description string
	// Mentions is the number of chunks mentioning the entity.
	Mentions int
	// ChunkIDs are the mentioning chunks, sorted.
	ChunkIDs []string
}

// MaxMentionsRead bounds the mentions a store reads for one entity
// (Entities): an entity named in thousands of chunks is described by the
// first MaxMentionsRead of them in (document id, chunk id) order — its
// Name, Type, Description and ChunkIDs — while Mentions still counts them
// all. A read of a hub then costs what a read of any entity costs, and a
// description stays as long as MaxMentionsRead mentions can make it.
const MaxMentionsRead = 128

// Relation is the aggregated view of an undirected relation between two
// entities in a namespace.
type Relation struct {
	// Source and Target are entity keys, Source < Target.
	Source string
	Target string
	// Description joins the distinct non-empty descriptions with "\n",
	// ordered by document id and chunk index.
	Description string
	// Keywords is the sorted union of the keywords of all mentions.
	Keywords []string
	// Weight is the sum of the weights of all mentions.
	Weight float64
	// Mentions is the number of chunks mentioning the relation.
	Mentions int
	// ChunkIDs are the mentioning chunks, sorted.
	ChunkIDs []string
}

// Chunk is a merged chunk's text and position.
type Chunk struct {
	ID     string
	DocID  string
	Index  int
	Text   string
	Tokens int
}

// MaxSearchLimit caps the entities one entity search returns.
const MaxSearchLimit = 100

// Counts sizes a namespace.
type Counts struct {
	Documents int
	Chunks    int
	Entities  int
	Relations int
	// Communities counts every level's communities.
	Communities int
}

// Snapshot is everything a namespace holds, entities sorted by key and
// relations by (Source, Target), so two stores can be compared for equality.
type Snapshot struct {
	Entities  []Entity
	Relations []Relation
}

// Edge is a relation as clustering sees it: its endpoints and its summed
// weight.
type Edge struct {
	Source, Target string
	Weight         float64
}

// RankedEdge is a relation ranked as a local query ranks it: Rank is the sum
// of its endpoints' degrees (nano-graphrag's edge degree).
type RankedEdge struct {
	Source, Target string
	Weight         float64
	Rank           int
}

// Community is one community of the hierarchical Leiden clustering of a
// namespace's entity graph, with its report (GraphRAG's community report).
type Community struct {
	// ID is stable for the same members at the same level.
	ID     string
	Level  int
	Parent string // "" at level 0
	// Keys are the member entity keys, sorted.
	Keys []string
	// Report fields, in GraphRAG's JSON shape.
	Title             string
	Summary           string
	Rating            float64
	RatingExplanation string
	Findings          []Finding
	// Hash covers the members and their descriptions and relations: a
	// report is regenerated only when it changes.
	Hash string
}

// CommunityMatch is a community that some of the entities asked about
// belong to, with its report but without its member list, which a large
// community makes long.
type CommunityMatch struct {
	Community // Keys empty
	// Members is how many entities the community has, Matched how many of
	// those asked about.
	Members int
	Matched int
	// HasReport is whether the community's report has been written (it
	// has a title or a summary), also when the match is read without the
	// report's body.
	HasReport bool
}

// ByLevelAndID orders communities by level, then id: the order of every
// listing of communities.
func ByLevelAndID(a, b Community) int {
	return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.ID, b.ID))
}

// ByRating orders communities read without their member lists the best
// rated first, then the largest, then by id: the order of TopCommunities.
func ByRating(a, b CommunityMatch) int {
	return cmp.Or(cmp.Compare(b.Rating, a.Rating), cmp.Compare(b.Members, a.Members), cmp.Compare(a.ID, b.ID))
}

// Finding is one finding of a community report.
type Finding struct {
	Summary     string `json:"summary"`
	Explanation string `json:"explanation"`
}

// Summary is an LLM summary of an entity's descriptions. Stores return it
// as the entity's Description only while the joined descriptions still hash
// to SourceHash, so a summary goes stale by itself when a merge or a
// deletion changes what it summarised.
type Summary struct {
	Key string
	// SourceHash is DescriptionHash of the joined description summarised.
	SourceHash string
	Text       string
}

// DescriptionHash identifies a joined entity description (hex SHA-256).
func DescriptionHash(description string) string {
	sum := sha256.Sum256([]byte(description))
	return hex.EncodeToString(sum[:])
}
