package graph

import (
	"context"
	"time"
)

// The store contract: what every graph store implements (the embedded
// sqlitegraph and neo4jgraph), checked by the one suite in graphtest.
// Services declare the few methods they use where they use them.

// Store is the knowledge-graph store contract.
type Store interface {
	// MergeChunk replaces the chunk's previous contribution with this one.
	MergeChunk(ctx context.Context, chunk ChunkGraph) (MergeResult, error)
	// DeleteDocument removes the document's chunks and all their mentions.
	DeleteDocument(ctx context.Context, namespace, docID string) error
	// Entities returns the entities with the given keys in key order,
	// skipping missing keys; each described by at most MaxMentionsRead of
	// its mentions, and all of them counted.
	Entities(ctx context.Context, namespace string, keys []string) ([]Entity, error)
	// RelationsOf returns the relations touching any of the keys, highest
	// weight first, then by key; at most limit unless limit <= 0.
	RelationsOf(ctx context.Context, namespace string, keys []string, limit int) ([]Relation, error)
	// RelationsAmong returns the relations both of whose endpoints are
	// among the keys (the subgraph they induce), in (Source, Target)
	// order: what a community's report is written from, read without the
	// members' relations to the rest of the graph, which for a hub are
	// thousands.
	RelationsAmong(ctx context.Context, namespace string, keys []string) ([]Relation, error)
	// Chunks returns the chunks with the given ids in id order, skipping
	// missing ids.
	Chunks(ctx context.Context, namespace string, ids []string) ([]Chunk, error)
	// Degrees returns the number of distinct relations of each key that
	// has any, kept by the store rather than counted from the relations.
	Degrees(ctx context.Context, namespace string, keys []string) (map[string]int, error)
	// TopRelations returns the best limit relations touching any of the
	// keys (all of them when limit <= 0), each once, ranked by the sum of
	// their endpoints' degrees, in provenance.RankedOrder (rank, weight,
	// then Source and Target).
	TopRelations(ctx context.Context, namespace string, keys []string, limit int) ([]RankedEdge, error)
	// RelationsBetween returns the relations between the pairs of keys
	// (either way round), in the order of the pairs, skipping pairs
	// without one.
	RelationsBetween(ctx context.Context, namespace string, pairs [][2]string) ([]Relation, error)
	// ChunkEntities returns the sorted keys of the entities each chunk id
	// mentions; ids that mention nothing are missing.
	ChunkEntities(ctx context.Context, namespace string, ids []string) (map[string][]string, error)
	// SearchEntities finds entities by name: those whose key contains the
	// query normalised like events.EntityKey (so case, surrounding quotes
	// and punctuation, and runs of whitespace do not matter). The entity
	// whose key equals the normalised query comes first, then those whose
	// key starts with it, then the others; within each group the most
	// mentioned first, then by key. An empty query matches every entity.
	// At most limit entities, and never more than MaxSearchLimit
	// (limit <= 0 means that many).
	SearchEntities(ctx context.Context, namespace, query string, limit int) ([]Entity, error)
	Counts(ctx context.Context, namespace string) (Counts, error)
	Snapshot(ctx context.Context, namespace string) (Snapshot, error)
	// EachEdge calls fn with every relation's endpoints and summed weight,
	// once per related pair, in no promised order, and stops at fn's
	// first error, which it returns: the graph a community rebuild
	// clusters, streamed so that the caller need not hold millions of
	// edges as strings, and without the descriptions a snapshot carries.
	EachEdge(ctx context.Context, namespace string, fn func(Edge) error) error
	Close() error
	CommunityStore
}

// CommunityStore is the part of the contract that keeps what GraphRAG
// derives from the graph: a generation counter telling when the graph
// changed, the communities with their reports, and entity description
// summaries.
type CommunityStore interface {
	// Generation increases with every merge or deletion that changes the
	// namespace (a redelivered chunk changes nothing); 0 for a namespace
	// nothing was merged into.
	Generation(ctx context.Context, namespace string) (uint64, error)
	// ReplaceCommunities atomically replaces the namespace's communities and
	// records the generation they were built from.
	ReplaceCommunities(ctx context.Context, namespace string, generation uint64, cs []Community) error
	// Communities returns the communities up to maxLevel (all when
	// maxLevel < 0), sorted by level, then id.
	Communities(ctx context.Context, namespace string, maxLevel int) ([]Community, error)
	// CommunitiesByID returns the stored communities of the level with
	// the given ids, without their member lists, sorted by id, skipping
	// ids not stored: how a rebuild finds the reports it can keep a batch
	// at a time, instead of holding every old report while it writes the
	// new ones.
	CommunitiesByID(ctx context.Context, namespace string, level int, ids []string) ([]Community, error)
	// CommunitiesOf returns the communities up to maxLevel (all when
	// maxLevel < 0) that have any of keys as a member, with how many of
	// the (distinct) keys are members, sorted by level, then id; without
	// their member lists and without their reports' bodies (Summary,
	// RatingExplanation and Findings empty, HasReport set): a local query
	// ranks dozens of them and reads the bodies of the few it packs with
	// CommunitiesByID.
	CommunitiesOf(ctx context.Context, namespace string, keys []string, maxLevel int) ([]CommunityMatch, error)
	// TopCommunities returns at most limit of the communities up to
	// maxLevel (all levels when maxLevel < 0) that have a report (a title
	// or a summary): the best rated first, then the largest, then by id;
	// without their member lists (a global query reads hundreds of
	// reports and needs only their sizes), Matched 0.
	TopCommunities(ctx context.Context, namespace string, maxLevel, limit int) ([]CommunityMatch, error)
	// CommunitiesBuilt is what the last ReplaceCommunities recorded: the
	// generation the communities were built from and when; zero values if
	// there was none.
	CommunitiesBuilt(ctx context.Context, namespace string) (CommunitiesBuild, error)
	// SetSummaries stores entity description summaries; Entities and
	// Snapshot return a summary as the Description while its SourceHash is
	// DescriptionHash of the entity's joined description.
	SetSummaries(ctx context.Context, namespace string, summaries []Summary) error
}

// CommunitiesBuild is what storing a namespace's communities recorded.
type CommunitiesBuild struct {
	// Generation is the graph generation the communities were built
	// from, 0 if they never were.
	Generation uint64
	// At is when they were stored; zero if they never were, or were
	// stored by a version that did not record it.
	At time.Time
}
