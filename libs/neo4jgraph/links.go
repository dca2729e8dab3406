package neo4jgraph

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"
)

// Kept links and degrees: RELATED is one relationship per mention, so
// reading a relation's weight or an entity's degree from them walks every
// mention of every neighbour (a hub of 16,000 neighbours made a local query
// take seconds). Every write that adds or removes RELATED mentions also
// keeps, in the same transaction and under the same entity locks,
//
//	(:Entity {degree})-[:LINK {pair, weight, mentions}]->(:Entity)
//
// one LINK per distinct pair (in RELATED's direction, smaller key to
// larger) with the pair's summed weight and mention count, and the number
// of LINKs of each entity as its degree. The write recomputes the pairs it
// touched from their mentions, found through the pair index, and the
// degrees of their endpoints, rather than adding deltas: recomputing is
// idempotent whatever was redelivered, and the sums stay exact. Its cost is
// the touched pairs' mentions, not the endpoints' degrees.
const (
	// refreshLinks recomputes the LINK of each pair in $linkPairs from the
	// pair's RELATED mentions: created, updated or deleted.
	refreshLinks = `
UNWIND $linkPairs AS p
CALL (p) {
  OPTIONAL MATCH ()-[r:RELATED {pair: p.pair}]->()
  RETURN count(r) AS mentions, sum(r.weight) AS weight
}
OPTIONAL MATCH ()-[l:LINK {pair: p.pair}]->()
WITH p, mentions, weight, l
CALL (l, mentions, weight) {
  WITH l WHERE l IS NOT NULL AND mentions = 0
  DELETE l
}
CALL (l, mentions, weight) {
  WITH l WHERE l IS NOT NULL AND mentions > 0
  SET l.weight = weight, l.mentions = mentions
}
CALL (p, l, mentions, weight) {
  WITH p WHERE l IS NULL AND mentions > 0
  MATCH (s:Entity {uid: p.src})
  MATCH (t:Entity {uid: p.dst})
  CREATE (s)-[:LINK {pair: p.pair, weight: weight, mentions: mentions}]->(t)
}`

	// refreshDegrees sets the degree of each entity in $linkEntities from
	// its LINKs: the count is the node's stored degree for the type, not a
	// walk of the links.
	refreshDegrees = `
UNWIND $linkEntities AS uid
MATCH (e:Entity {uid: uid})
SET e.degree = COUNT { (e)-[:LINK]-() }`
)

// pairUID identifies the relation between two entities by their uids, src
// the smaller key's; each uid encodes its own length, so the concatenation
// is injective, and Cypher computes the same string (s.uid + t.uid).
func pairUID(srcUID, dstUID string) string { return srcUID + dstUID }

// linkParams are the parameters of refreshLinks and refreshDegrees for the
// pairs a write touched.
func linkParams(pairs []uidPair) map[string]any {
	rows := make([]map[string]any, 0, len(pairs))
	endpoints := map[string]bool{}
	seen := make(map[uidPair]bool, len(pairs))
	for _, p := range pairs {
		if seen[p] {
			continue
		}
		seen[p] = true
		rows = append(rows, map[string]any{"src": p.src, "dst": p.dst, "pair": pairUID(p.src, p.dst)})
		endpoints[p.src] = true
		endpoints[p.dst] = true
	}
	return map[string]any{"linkPairs": rows, "linkEntities": slices.Sorted(maps.Keys(endpoints))}
}

// refreshLinksOf recomputes the links of pairs and the degrees of their
// endpoints, rowsPerQuery pairs a query; the caller holds the endpoints'
// locks.
func refreshLinksOf(ctx context.Context, tx neo4j.ManagedTransaction, pairs []uidPair) error {
	for batch := range slices.Chunk(pairs, rowsPerQuery) {
		params := linkParams(batch)
		if err := run(ctx, tx, refreshLinks, params); err != nil {
			return fmt.Errorf("refresh links: %w", err)
		}
		if err := run(ctx, tx, refreshDegrees, params); err != nil {
			return fmt.Errorf("refresh degrees: %w", err)
		}
	}
	return nil
}

// The migration builds the links and degrees of a database an earlier
// version wrote (RELATED without pair, no LINKs), once: a marker node
// records that it is done, so later opens only read the marker. Every step
// is idempotent, so stores opening together, or an interrupted open, only
// repeat work. Writers of the earlier version must be stopped first: what
// they write afterwards has no links.
const (
	linksMarkerUID = "kgraph-links-v1"

	readLinksMarker = `
OPTIONAL MATCH (m:KgraphSchema {uid: $uid})
RETURN m IS NOT NULL AS done`

	migrateRelatedPairs = `
MATCH (s:Entity)-[r:RELATED]->(t:Entity)
WHERE r.pair IS NULL
CALL (s, r, t) {
  SET r.pair = s.uid + t.uid
} IN TRANSACTIONS OF 10000 ROWS`

	migrateLinks = `
MATCH (s:Entity)-[:RELATED]->(t:Entity)
WITH DISTINCT s, t
CALL (s, t) {
  CALL (s, t) {
    MATCH ()-[r:RELATED {pair: s.uid + t.uid}]->()
    RETURN count(r) AS mentions, sum(r.weight) AS weight
  }
  MERGE (s)-[l:LINK]->(t)
  SET l.pair = s.uid + t.uid, l.weight = weight, l.mentions = mentions
} IN TRANSACTIONS OF 2000 ROWS`

	migrateDegrees = `
MATCH (e:Entity)
CALL (e) {
  SET e.degree = COUNT { (e)-[:LINK]-() }
} IN TRANSACTIONS OF 10000 ROWS`

	writeLinksMarker = `MERGE (:KgraphSchema {uid: $uid})`
)

// migrateLinksOnce builds the kept links and degrees unless the database
// already has them.
func (s *Store) migrateLinksOnce(ctx context.Context) error {
	params := map[string]any{"uid": linksMarkerUID}
	var done bool
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		done, err = single(ctx, tx, readLinksMarker, params, func(r *neo4j.Record) (bool, error) {
			return recordValue[bool](r, "done")
		})
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("read links marker: %w", err)
	}
	if done {
		return nil
	}
	// CALL … IN TRANSACTIONS runs only in an implicit transaction, so these
	// run in sessions of their own, one statement each.
	for _, step := range []struct{ name, cypher string }{
		{"pairs of mentions", migrateRelatedPairs},
		{"links", migrateLinks},
		{"degrees", migrateDegrees},
		{"marker", writeLinksMarker},
	} {
		if err := s.runImplicit(ctx, step.cypher, params); err != nil {
			return fmt.Errorf("build kept %s: %w", step.name, err)
		}
	}
	return nil
}

// runImplicit runs one statement in an auto-commit transaction.
func (s *Store) runImplicit(ctx context.Context, cypher string, params map[string]any) error {
	session := s.session(ctx, neo4j.AccessModeWrite)
	result, err := session.Run(ctx, cypher, params)
	if err == nil {
		_, err = result.Consume(ctx)
	}
	return errors.Join(err, session.Close(ctx))
}
