package sqlitegraph

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// Generation returns the namespace's generation: a counter that every merge
// or deletion that changes the namespace increases, 0 for a namespace
// nothing was ever merged into.
func (s *Store) Generation(ctx context.Context, namespace string) (uint64, error) {
	if err := checkNamespace(namespace); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	var n int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT generation FROM namespaces WHERE namespace = ?`, namespace).Scan(&n)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read generation of %s: %w", namespace, err)
	}
	return uint64(n), nil
}

// CommunitiesBuilt returns the generation the namespace's communities were
// built from and when they were stored (see ReplaceCommunities); zero
// values if they never were.
func (s *Store) CommunitiesBuilt(ctx context.Context, namespace string) (graph.CommunitiesBuild, error) {
	if err := checkNamespace(namespace); err != nil {
		return graph.CommunitiesBuild{}, fmt.Errorf("read communities build: %w", err)
	}
	var gen, atMillis int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT communities_generation, communities_built_at FROM namespaces WHERE namespace = ?`,
			namespace).Scan(&gen, &atMillis)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return graph.CommunitiesBuild{}, nil
	case err != nil:
		return graph.CommunitiesBuild{}, fmt.Errorf("read communities build of %s: %w", namespace, err)
	}
	b := graph.CommunitiesBuild{Generation: uint64(gen)}
	if atMillis > 0 {
		b.At = time.UnixMilli(atMillis)
	}
	return b, nil
}

// ReplaceCommunities replaces the namespace's communities (with their
// reports) by cs in one transaction and records the generation they were
// built from.
func (s *Store) ReplaceCommunities(ctx context.Context, namespace string, generation uint64, cs []graph.Community) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("replace communities: %w", err)
	}
	if generation > math.MaxInt64 {
		return fmt.Errorf("replace communities of %s: generation %d out of range", namespace, generation)
	}
	for i, c := range cs {
		if c.ID == "" {
			return fmt.Errorf("replace communities of %s: community %d has no id", namespace, i)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"communities", "community_members"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE namespace = ?`, namespace); err != nil {
				return fmt.Errorf("delete previous: %w", err)
			}
		}
		member, err := tx.PrepareContext(ctx,
			`INSERT OR IGNORE INTO community_members (namespace, entity_key, level, community_id) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer member.Close()
		for _, c := range cs {
			for _, k := range c.Keys {
				if _, err := member.ExecContext(ctx, namespace, k, c.Level, c.ID); err != nil {
					return fmt.Errorf("insert members of community %s: %w", c.ID, err)
				}
			}
		}
		insert, err := tx.PrepareContext(ctx,
			`INSERT INTO communities (namespace, level, community_id, parent, title, summary, rating, rating_explanation, findings, hash, members)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		// Encoded a row at a time: encoding them all first held a second
		// copy of every report (37 MB at peak of a rebuild of 31,000
		// communities).
		for _, c := range cs {
			findings, err := encodeJSONList(c.Findings)
			if err != nil {
				return fmt.Errorf("findings of %s: %w", c.ID, err)
			}
			if _, err := insert.ExecContext(ctx, namespace, c.Level, c.ID, c.Parent,
				c.Title, c.Summary, c.Rating, c.RatingExplanation, findings, c.Hash, len(c.Keys)); err != nil {
				return fmt.Errorf("insert community %s: %w", c.ID, err)
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO namespaces (namespace, generation, communities_generation, communities_built_at) VALUES (?, 0, ?, ?)
			ON CONFLICT (namespace) DO UPDATE SET communities_generation = excluded.communities_generation,
				communities_built_at = excluded.communities_built_at`,
			namespace, int64(generation), time.Now().UnixMilli())
		return err
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
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT `+communityColumns+` FROM communities WHERE namespace = ? AND (? < 0 OR level <= ?)
			ORDER BY level, community_id`, namespace, maxLevel, maxLevel)
		if err != nil {
			return err
		}
		if err := scanCommunities(rows, func(c graph.Community) { out = append(out, c) }); err != nil {
			return err
		}
		return readMembers(ctx, tx, namespace, maxLevel, out)
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	return out, nil
}

// levelAndID names a community of a namespace.
type levelAndID struct {
	level int
	id    string
}

// readMembers fills in the member lists of cs, the namespace's communities
// up to maxLevel, from community_members. Its rows come in key order, so
// each list is sorted.
func readMembers(ctx context.Context, tx *sql.Tx, namespace string, maxLevel int, cs []graph.Community) error {
	index := make(map[levelAndID]int, len(cs))
	for i, c := range cs {
		index[levelAndID{c.Level, c.ID}] = i
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT level, community_id, entity_key FROM community_members WHERE namespace = ? AND (? < 0 OR level <= ?)`,
		namespace, maxLevel, maxLevel)
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k   levelAndID
			key string
		)
		if err := rows.Scan(&k.level, &k.id, &key); err != nil {
			return fmt.Errorf("read members: %w", err)
		}
		if i, ok := index[k]; ok {
			cs[i].Keys = append(cs[i].Keys, key)
		}
	}
	return rows.Err()
}

// CommunitiesOf returns the communities up to maxLevel (all of them when
// maxLevel < 0) that have any of keys as a member, without their member
// lists and their reports' bodies (HasReport set), with how many of the
// keys are members, sorted by level, then id.
// The counting is the members table's, so a community's member list is
// never decoded. CROSS JOIN keeps SQLite's order, the keys' members first:
// left to choose, the planner scanned every community of the namespace.
func (s *Store) CommunitiesOf(ctx context.Context, namespace string, keys []string, maxLevel int) ([]graph.CommunityMatch, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	found := map[levelAndID]graph.CommunityMatch{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, batch := range batches(distinct(keys)) {
			args := append(withNamespace(namespace, batch), maxLevel)
			// Only the columns before the report's body, which would be
			// read from overflow pages (see communitiesTable).
			rows, err := tx.QueryContext(ctx,
				`SELECT c.level, c.community_id, c.parent, c.title, c.rating, c.hash, c.members, m.matched,
					CASE WHEN c.title != '' THEN 1 ELSE c.summary != '' END
				FROM (SELECT level, community_id, COUNT(*) AS matched FROM community_members
					WHERE namespace = ?1 AND entity_key IN (`+placeholders(len(batch))+`)
					GROUP BY level, community_id) m
				CROSS JOIN communities c ON c.namespace = ?1 AND c.level = m.level AND c.community_id = m.community_id
				WHERE ?`+fmt.Sprint(len(batch)+2)+` < 0 OR c.level <= ?`+fmt.Sprint(len(batch)+2), args...)
			if err != nil {
				return err
			}
			err = scanRankedMatches(rows, func(c graph.CommunityMatch) {
				k := levelAndID{c.Level, c.ID}
				if prev, ok := found[k]; ok {
					c.Matched += prev.Matched
				}
				found[k] = c
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	out := slices.Collect(maps.Values(found))
	slices.SortFunc(out, func(a, b graph.CommunityMatch) int { return graph.ByLevelAndID(a.Community, b.Community) })
	return out, nil
}

// scanRankedMatches decodes the rows of CommunitiesOf; it closes rows.
func scanRankedMatches(rows *sql.Rows, emit func(graph.CommunityMatch)) error {
	defer rows.Close()
	for rows.Next() {
		var c graph.CommunityMatch
		if err := rows.Scan(&c.Level, &c.ID, &c.Parent, &c.Title, &c.Rating, &c.Hash, &c.Members, &c.Matched, &c.HasReport); err != nil {
			return err
		}
		emit(c)
	}
	return rows.Err()
}

// scanCommunityMatches decodes the rows of TopCommunities; it closes rows.
func scanCommunityMatches(rows *sql.Rows, emit func(graph.CommunityMatch)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			c        graph.CommunityMatch
			findings string
		)
		if err := rows.Scan(&c.Level, &c.ID, &c.Parent, &c.Title, &c.Summary, &c.Rating,
			&c.RatingExplanation, &findings, &c.Hash, &c.Members, &c.Matched); err != nil {
			return err
		}
		var err error
		if c.Findings, err = decodeJSONList[graph.Finding](findings); err != nil {
			return fmt.Errorf("findings of community %s: %w", c.ID, err)
		}
		c.HasReport = c.Title != "" || c.Summary != ""
		emit(c)
	}
	return rows.Err()
}

// TopCommunities returns at most limit of the communities up to maxLevel
// (all of them when maxLevel < 0) that have a report, the best rated
// first, then the largest, then by id: one range of an index.
func (s *Store) TopCommunities(ctx context.Context, namespace string, maxLevel, limit int) ([]graph.CommunityMatch, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	var out []graph.CommunityMatch
	err := s.read(ctx, func(tx *sql.Tx) error {
		// Decoding the member lists was most of a global query's work.
		rows, err := tx.QueryContext(ctx,
			`SELECT level, community_id, parent, title, summary, rating, rating_explanation, findings, hash, members, 0
			FROM communities INDEXED BY communities_by_rating
			WHERE namespace = ? AND (? < 0 OR level <= ?) AND (title != '' OR summary != '')
			ORDER BY rating DESC, members DESC, community_id LIMIT ?`, namespace, maxLevel, maxLevel, limit)
		if err != nil {
			return err
		}
		return scanCommunityMatches(rows, func(c graph.CommunityMatch) { out = append(out, c) })
	})
	if err != nil {
		return nil, fmt.Errorf("read communities of %s: %w", namespace, err)
	}
	return out, nil
}

const communityColumns = `level, community_id, parent, title, summary, rating, rating_explanation, findings, hash`

// scanCommunities decodes rows of communityColumns; it closes rows.
func scanCommunities(rows *sql.Rows, emit func(graph.Community)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			c        graph.Community
			findings string
		)
		if err := rows.Scan(&c.Level, &c.ID, &c.Parent, &c.Title, &c.Summary, &c.Rating,
			&c.RatingExplanation, &findings, &c.Hash); err != nil {
			return err
		}
		var err error
		if c.Findings, err = decodeJSONList[graph.Finding](findings); err != nil {
			return fmt.Errorf("findings of community %s: %w", c.ID, err)
		}
		emit(c)
	}
	return rows.Err()
}

// SetSummaries stores entity description summaries, replacing earlier
// summaries of the same keys. They do not change the generation: a summary
// is derived data, applied by the reads only while its SourceHash matches
// the entity's joined description.
func (s *Store) SetSummaries(ctx context.Context, namespace string, summaries []graph.Summary) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("set summaries: %w", err)
	}
	for _, sum := range summaries {
		if sum.Key == "" {
			return fmt.Errorf("set summaries of %s: summary without entity key", namespace)
		}
	}
	if len(summaries) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		upsert, err := tx.PrepareContext(ctx,
			`INSERT INTO entity_summaries (namespace, entity_key, source_hash, text) VALUES (?, ?, ?, ?)
			ON CONFLICT (namespace, entity_key) DO UPDATE SET source_hash = excluded.source_hash, text = excluded.text`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		for _, sum := range summaries {
			if _, err := upsert.ExecContext(ctx, namespace, sum.Key, sum.SourceHash, sum.Text); err != nil {
				return fmt.Errorf("summary of %q: %w", sum.Key, err)
			}
		}
		return nil
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

// readSummaries reads the summaries of the keys, or of the whole namespace
// when keys is nil.
func readSummaries(ctx context.Context, tx *sql.Tx, namespace string, keys []string) (summaries, error) {
	out := summaries{}
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var sum graph.Summary
			if err := rows.Scan(&sum.Key, &sum.SourceHash, &sum.Text); err != nil {
				return err
			}
			out[sum.Key] = sum
		}
		return rows.Err()
	}
	if keys == nil {
		rows, err := tx.QueryContext(ctx,
			`SELECT entity_key, source_hash, text FROM entity_summaries WHERE namespace = ?`, namespace)
		if err != nil {
			return nil, err
		}
		return out, scan(rows)
	}
	for _, batch := range batches(keys) {
		rows, err := tx.QueryContext(ctx,
			`SELECT entity_key, source_hash, text FROM entity_summaries
			WHERE namespace = ? AND entity_key IN (`+placeholders(len(batch))+`)`,
			withNamespace(namespace, batch)...)
		if err != nil {
			return nil, err
		}
		if err := scan(rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// encodeJSONList encodes a list, nil as [].
func encodeJSONList[T any](list []T) (string, error) {
	if list == nil {
		list = []T{}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeJSONList decodes a list, an empty one as nil.
func decodeJSONList[T any](encoded string) ([]T, error) {
	var list []T
	if err := json.Unmarshal([]byte(encoded), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}
