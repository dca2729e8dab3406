package neo4jgraph

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// rowsPerQuery caps the rows one UNWIND query writes, so a large
// replacement is several moderate messages within its one transaction.
const rowsPerQuery = 1000

const (
	readGeneration = `
UNWIND $shards AS uid
MATCH (g:GenerationShard {uid: uid})
RETURN sum(g.generation) AS generation`

	readCommunitiesBuild = `
OPTIONAL MATCH (n:Namespace {uid: $namespaceUID})
RETURN coalesce(n.communities_generation, 0) AS generation, coalesce(n.communities_built_at, 0) AS built_at`

	// recordCommunitiesBuild also write-locks the namespace's node
	// first, which serialises replacements of the namespace's communities.
	recordCommunitiesBuild = `
MERGE (n:Namespace {uid: $namespaceUID})
  ON CREATE SET n.scope = $scope, n.namespace = $namespace
SET n.communities_generation = $generation, n.communities_built_at = $builtAt`

	deleteCommunities = `
MATCH (c:Community {scope: $scope})
DETACH DELETE c`

	createCommunities = `
UNWIND $rows AS row
CREATE (c:Community {uid: row.uid, scope: $scope, namespace: $namespace, community_id: row.id, level: row.level,
  parent: row.parent, keys: row.keys, title: row.title, summary: row.summary, rating: row.rating,
  rating_explanation: row.ratingExplanation, findings: row.findings, hash: row.hash})
WITH c, row
UNWIND row.members AS uid
MATCH (e:Entity {uid: uid})
CREATE (e)-[:IN_COMMUNITY]->(c)`

	// communitiesOfUIDs leaves the member lists on the server.
	communitiesOfUIDs = `
UNWIND $uids AS uid
MATCH (:Entity {uid: uid})-[:IN_COMMUNITY]->(c:Community)
WHERE $maxLevel < 0 OR c.level <= $maxLevel
WITH c, count(*) AS matched
RETURN c.community_id AS id, c.level AS level, c.parent AS parent, [] AS keys, c.title AS title,
  '' AS summary, c.rating AS rating, '' AS rating_explanation, '[]' AS findings, c.hash AS hash,
  size(c.keys) AS members, matched, c.title <> '' OR c.summary <> '' AS has_report`

	topCommunitiesOfScope = `
MATCH (c:Community {scope: $scope})
WHERE ($maxLevel < 0 OR c.level <= $maxLevel) AND (c.title <> '' OR c.summary <> '')
WITH c ORDER BY c.rating DESC, size(c.keys) DESC, c.community_id LIMIT $limit
RETURN c.community_id AS id, c.level AS level, c.parent AS parent, [] AS keys, c.title AS title,
  c.summary AS summary, c.rating AS rating, c.rating_explanation AS rating_explanation,
  c.findings AS findings, c.hash AS hash, size(c.keys) AS members`

	communitiesOfScope = `
MATCH (c:Community {scope: $scope})
WHERE $maxLevel < 0 OR c.level <= $maxLevel
RETURN c.community_id AS id, c.level AS level, c.parent AS parent, c.keys AS keys, c.title AS title,
  c.summary AS summary, c.rating AS rating, c.rating_explanation AS rating_explanation,
  c.findings AS findings, c.hash AS hash`

	upsertSummaries = `
UNWIND $rows AS row
MERGE (s:EntitySummary {uid: row.uid})
  ON CREATE SET s.scope = $scope, s.namespace = $namespace, s.key = row.key
SET s.source_hash = row.sourceHash, s.text = row.text`

	summaryColumns = `s.key AS key, s.source_hash AS source_hash, s.text AS text`

	summariesOfUIDs = `
UNWIND $uids AS uid
MATCH (s:EntitySummary {uid: uid})
RETURN ` + summaryColumns

	summariesOfScope = `
MATCH (s:EntitySummary {scope: $scope})
RETURN ` + summaryColumns
)

// Generation returns the namespace's generation: a counter that every merge
// or deletion that changes the namespace increases, 0 for a namespace
// nothing was ever merged into.
func (s *Store) Generation(ctx context.Context, namespace string) (uint64, error) {
	if err := checkNamespace(namespace); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	gen, err := s.readCounter(ctx, readGeneration, map[string]any{"shards": s.generationShardUIDs(namespace)})
	if err != nil {
		return 0, fmt.Errorf("read generation of %s: %w", namespace, err)
	}
	return gen, nil
}

// CommunitiesBuilt returns the generation the namespace's communities were
// built from and when they were stored (see ReplaceCommunities); zero
// values if they never were.
func (s *Store) CommunitiesBuilt(ctx context.Context, namespace string) (graph.CommunitiesBuild, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.CommunitiesBuild{}, fmt.Errorf("read communities build: %w", err)
	}
	var b graph.CommunitiesBuild
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		b, err = single(ctx, tx, readCommunitiesBuild, map[string]any{"namespaceUID": s.namespaceUID(namespace)},
			func(r *neo4j.Record) (graph.CommunitiesBuild, error) {
				gen, err := recordInt(r, "generation")
				if err != nil {
					return graph.CommunitiesBuild{}, err
				}
				if gen < 0 {
					return graph.CommunitiesBuild{}, fmt.Errorf("negative generation %d", gen)
				}
				at, err := recordInt(r, "built_at")
				if err != nil {
					return graph.CommunitiesBuild{}, err
				}
				b := graph.CommunitiesBuild{Generation: uint64(gen)}
				if at > 0 {
					b.At = time.UnixMilli(int64(at))
				}
				return b, nil
			})
		return nil, err
	})
	if err != nil {
		return graph.CommunitiesBuild{}, fmt.Errorf("read communities build of %s: %w", namespace, err)
	}
	return b, nil
}

// readCounter runs a query returning one non-negative integer, generation.
func (s *Store) readCounter(ctx context.Context, cypher string, params map[string]any) (uint64, error) {
	var n int
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		n, err = single(ctx, tx, cypher, params, func(r *neo4j.Record) (int, error) {
			return recordInt(r, "generation")
		})
		return nil, err
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("negative generation %d", n)
	}
	return uint64(n), nil
}

// ReplaceCommunities replaces the namespace's communities (with their
// reports) by cs in one transaction and records the generation they were
// built from. Communities are identified by level and id.
func (s *Store) ReplaceCommunities(ctx context.Context, namespace string, generation uint64, cs []graph.Community) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("replace communities: %w", err)
	}
	if generation > math.MaxInt64 {
		return fmt.Errorf("replace communities of %s: generation %d out of range", namespace, generation)
	}
	type levelAndID struct {
		level int
		id    string
	}
	seen := make(map[levelAndID]bool, len(cs))
	rows := make([]map[string]any, len(cs))
	for i, c := range cs {
		if c.ID == "" {
			return fmt.Errorf("replace communities of %s: community %d has no id", namespace, i)
		}
		if seen[levelAndID{c.Level, c.ID}] {
			return fmt.Errorf("replace communities of %s: community %s at level %d listed twice", namespace, c.ID, c.Level)
		}
		seen[levelAndID{c.Level, c.ID}] = true
		findings := c.Findings
		if findings == nil {
			findings = []graph.Finding{}
		}
		encoded, err := json.Marshal(findings)
		if err != nil {
			return fmt.Errorf("replace communities of %s: findings of %s: %w", namespace, c.ID, err)
		}
		keys := slices.Sorted(slices.Values(c.Keys))
		if keys == nil {
			keys = []string{} // null would leave the property out
		}
		rows[i] = map[string]any{
			"uid": s.communityUID(namespace, c.Level, c.ID), "id": c.ID, "level": int64(c.Level), "parent": c.Parent,
			"keys": keys, "members": s.entityUIDs(namespace, keys), "title": c.Title, "summary": c.Summary, "rating": c.Rating,
			"ratingExplanation": c.RatingExplanation, "findings": string(encoded), "hash": c.Hash,
		}
	}
	params := map[string]any{
		"namespaceUID": s.namespaceUID(namespace),
		"scope":        s.scope(namespace),
		"namespace":    namespace,
		"generation":   int64(generation),
		"builtAt":      time.Now().UnixMilli(),
	}
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		if err := run(ctx, tx, recordCommunitiesBuild, params); err != nil {
			return nil, fmt.Errorf("record generation: %w", err)
		}
		if err := run(ctx, tx, deleteCommunities, params); err != nil {
			return nil, fmt.Errorf("delete previous: %w", err)
		}
		for batch := range slices.Chunk(rows, rowsPerQuery) {
			if err := run(ctx, tx, createCommunities, map[string]any{
				"scope": params["scope"], "namespace": namespace, "rows": batch,
			}); err != nil {
				return nil, fmt.Errorf("create communities: %w", err)
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("replace communities of %s: %w", namespace, err)
	}
	return nil
}

// Communities returns the namespace's communities up to maxLevel (all of
// them when maxLevel < 0), sorted by level, then id.
func (s *Store) Communities(ctx context.Context, namespace string, maxLevel int) ([]graph.Community, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	var out []graph.Community
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = collect(ctx, tx, communitiesOfScope,
			map[string]any{"scope": s.scope(namespace), "maxLevel": int64(maxLevel)}, communityOf)
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	// Sorted here, not by Cypher, which orders strings by UTF-16 code
	// units where the embedded store orders them by bytes.
	slices.SortFunc(out, graph.ByLevelAndID)
	return out, nil
}

// CommunitiesOf returns the communities up to maxLevel (all of them when
// maxLevel < 0) that have any of keys as a member, without their member
// lists and their reports' bodies (HasReport set), with how many of the
// keys are members, sorted by level, then id.
func (s *Store) CommunitiesOf(ctx context.Context, namespace string, keys []string, maxLevel int) ([]graph.CommunityMatch, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	var out []graph.CommunityMatch
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = collect(ctx, tx, communitiesOfUIDs,
			map[string]any{"uids": s.entityUIDs(namespace, distinct(keys)), "maxLevel": int64(maxLevel)},
			func(r *neo4j.Record) (graph.CommunityMatch, error) {
				m, err := sizedCommunityOf(r)
				if err != nil {
					return m, err
				}
				if m.Matched, err = recordInt(r, "matched"); err != nil {
					return m, err
				}
				hasReport, _, err := neo4j.GetRecordValue[bool](r, "has_report")
				m.HasReport = hasReport
				return m, err
			})
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	slices.SortFunc(out, func(a, b graph.CommunityMatch) int { return graph.ByLevelAndID(a.Community, b.Community) })
	return out, nil
}

// TopCommunities returns at most limit of the communities up to maxLevel
// (all of them when maxLevel < 0) that have a report, the best rated
// first, then the largest, then by id. (Cypher orders ids by UTF-16 code
// units; kgraph's community ids are ASCII, where that is byte order.)
func (s *Store) TopCommunities(ctx context.Context, namespace string, maxLevel, limit int) ([]graph.CommunityMatch, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	var out []graph.CommunityMatch
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = collect(ctx, tx, topCommunitiesOfScope,
			map[string]any{"scope": s.scope(namespace), "maxLevel": int64(maxLevel), "limit": int64(limit)}, sizedCommunityOf)
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	slices.SortStableFunc(out, graph.ByRating)
	return out, nil
}

// sizedCommunityOf reads a community returned without its member list and
// with their number as members.
func sizedCommunityOf(r *neo4j.Record) (graph.CommunityMatch, error) {
	var (
		m   graph.CommunityMatch
		err error
	)
	if m.Community, err = communityOf(r); err != nil {
		return m, err
	}
	m.HasReport = m.Title != "" || m.Summary != ""
	m.Members, err = recordInt(r, "members")
	return m, err
}

func communityOf(r *neo4j.Record) (graph.Community, error) {
	var (
		c        graph.Community
		findings string
		err      error
	)
	for _, field := range []struct {
		key string
		to  *string
	}{
		{"id", &c.ID}, {"parent", &c.Parent}, {"title", &c.Title}, {"summary", &c.Summary},
		{"rating_explanation", &c.RatingExplanation}, {"findings", &findings}, {"hash", &c.Hash},
	} {
		if *field.to, err = recordString(r, field.key); err != nil {
			return graph.Community{}, err
		}
	}
	if c.Level, err = recordInt(r, "level"); err != nil {
		return graph.Community{}, err
	}
	if c.Rating, err = recordFloat(r, "rating"); err != nil {
		return graph.Community{}, err
	}
	if c.Keys, err = recordStrings(r, "keys"); err != nil {
		return graph.Community{}, err
	}
	slices.Sort(c.Keys)
	if len(c.Keys) == 0 {
		c.Keys = nil
	}
	if err := json.Unmarshal([]byte(findings), &c.Findings); err != nil {
		return graph.Community{}, fmt.Errorf("findings of community %s: %w", c.ID, err)
	}
	if len(c.Findings) == 0 {
		c.Findings = nil
	}
	return c, nil
}

// SetSummaries stores entity description summaries, replacing earlier
// summaries of the same keys (of two for one key, the later wins). They do
// not change the generation: a summary is derived data, applied by the
// reads only while its SourceHash matches the entity's joined description.
func (s *Store) SetSummaries(ctx context.Context, namespace string, summaries []graph.Summary) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("set summaries: %w", err)
	}
	latest := make(map[string]graph.Summary, len(summaries))
	for _, sum := range summaries {
		if sum.Key == "" {
			return fmt.Errorf("set summaries of %s: summary without entity key", namespace)
		}
		latest[sum.Key] = sum
	}
	if len(latest) == 0 {
		return nil
	}
	// In uid order, as every writer takes locks, to keep deadlocks between
	// concurrent writers of the same summaries rare.
	rows := make([]map[string]any, 0, len(latest))
	for _, sum := range latest {
		rows = append(rows, map[string]any{
			"uid": s.summaryUID(namespace, sum.Key), "key": sum.Key, "sourceHash": sum.SourceHash, "text": sum.Text,
		})
	}
	slices.SortFunc(rows, func(a, b map[string]any) int { return cmp.Compare(a["uid"].(string), b["uid"].(string)) })
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		for batch := range slices.Chunk(rows, rowsPerQuery) {
			if err := run(ctx, tx, upsertSummaries, map[string]any{
				"scope": s.scope(namespace), "namespace": namespace, "rows": batch,
			}); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("set summaries of %s: %w", namespace, err)
	}
	return nil
}

// summaries maps entity keys to their stored summaries.
type summaries map[string]graph.Summary

// apply replaces the entity's joined description by its summary if the
// summary was made from exactly that description.
func (m summaries) apply(e *graph.Entity) {
	if sum, ok := m[e.Key]; ok && sum.SourceHash == graph.DescriptionHash(e.Description) {
		e.Description = sum.Text
	}
}

// readSummaries runs a query returning summaryColumns into m.
func readSummaries(ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any, m summaries) error {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	for record, err := range result.Records(ctx) {
		if err != nil {
			return err
		}
		sum, err := summaryOf(record)
		if isNull(err) {
			continue
		}
		if err != nil {
			return err
		}
		m[sum.Key] = sum
	}
	return nil
}

func summaryOf(r *neo4j.Record) (graph.Summary, error) {
	var (
		sum graph.Summary
		err error
	)
	for _, field := range []struct {
		key string
		to  *string
	}{{"key", &sum.Key}, {"source_hash", &sum.SourceHash}, {"text", &sum.Text}} {
		if *field.to, err = recordString(r, field.key); err != nil {
			return graph.Summary{}, err
		}
	}
	return sum, nil
}
