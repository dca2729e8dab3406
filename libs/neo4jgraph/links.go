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
//	(:Entity {degree, bucket})-[:LINK {pair, weight, mentions, s, t, sb, tb}]->(:Entity)
//
// one LINK per distinct pair (in RELATED's direction, smaller key to
// larger) with the pair's summed weight and mention count, the number of
// LINKs of each entity as its degree, and the bucket of that degree (its
// bit length: 1, 2–3, 4–7, …). A LINK also carries its endpoints' uids (s,
// t) and buckets (sb, tb), indexed as (s, tb) and (t, sb), so the links of
// an entity can be read by falling bucket of the other endpoint's degree:
// TopRelations reads a hub's best connected neighbours and stops, as the
// embedded store's neighbour table lets it. A LINK's copy of a bucket moves
// only when the entity's degree crosses a power of two, so keeping them
// costs at most twice the links in all.
//
// The write recomputes the pairs it touched from their mentions, found
// through the pair index, and the degrees of their endpoints, rather than
// adding deltas: recomputing is idempotent whatever was redelivered, and
// the sums stay exact. Its cost is the touched pairs' mentions, not the
// endpoints' degrees (a degree is the node's stored count for the type).
const (
	// refreshLinks recomputes the LINK of each pair in $linkPairs from the
	// pair's RELATED mentions: created, updated or deleted. A new LINK
	// takes its endpoints' buckets as they are; refreshDegrees corrects
	// them if the degrees cross a power of two.
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
  CREATE (s)-[:LINK {pair: p.pair, weight: weight, mentions: mentions, s: s.uid, t: t.uid,
    sb: coalesce(s.bucket, 0), tb: coalesce(t.bucket, 0)}]->(t)
}`

	// refreshDegrees sets the degree of each entity in $linkEntities from
	// its LINKs, and when its bucket changes, the bucket's copies on them.
	refreshDegrees = `
UNWIND $linkEntities AS uid
MATCH (e:Entity {uid: uid})
WITH e, COUNT { (e)-[:LINK]-() } AS degree
SET e.degree = degree
WITH e, ` + degreeBucket + ` AS bucket
WHERE e.bucket IS NULL OR e.bucket <> bucket
SET e.bucket = bucket
WITH e, bucket
CALL (e, bucket) {
  MATCH (e)-[l:LINK]->()
  SET l.sb = bucket
}
CALL (e, bucket) {
  MATCH (e)<-[l:LINK]-()
  SET l.tb = bucket
}`

	// degreeBucket is the Cypher expression of the bucket of degree, its
	// bit length (bits.Len), in exact integer comparisons.
	degreeBucket = `reduce(b = 0, power IN [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
  32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216, 33554432, 67108864,
  134217728, 268435456, 536870912, 1073741824] | CASE WHEN degree >= power THEN b + 1 ELSE b END)`
)

// maxDegreeIn is the largest degree in bucket.
func maxDegreeIn(bucket int) int { return 1<<bucket - 1 }

// maxBucket bounds the buckets degreeBucket returns.
const maxBucket = 31

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

// The migration builds what the reads need of a database an earlier
// version wrote (MENTIONS without the entity's uid and the chunk's ids,
// RELATED without pair, no LINKs, degrees or buckets), once: a marker node named for the layout records that it is
// done, so later opens only read the marker. Every step is idempotent, so
// stores opening together, or an interrupted open, only repeat work.
// Writers of an earlier version must be stopped first: what they write
// afterwards has no links.
const (
	layoutMarkerUID = "kgraph-layout-2"

	migrateMentions = `
MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity)
WHERE m.e IS NULL
CALL (c, m, e) {
  SET m.e = e.uid, m.doc_id = c.doc_id, m.chunk_id = c.chunk_id
} IN TRANSACTIONS OF 10000 ROWS`

	readLayoutMarker = `
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
  SET l.pair = s.uid + t.uid, l.weight = weight, l.mentions = mentions, l.s = s.uid, l.t = t.uid
} IN TRANSACTIONS OF 2000 ROWS`

	migrateDegrees = `
MATCH (e:Entity)
CALL (e) {
  WITH e, COUNT { (e)-[:LINK]-() } AS degree
  SET e.degree = degree, e.bucket = ` + degreeBucket + `
} IN TRANSACTIONS OF 10000 ROWS`

	migrateLinkBuckets = `
MATCH (s:Entity)-[l:LINK]->(t:Entity)
CALL (s, l, t) {
  SET l.sb = s.bucket, l.tb = t.bucket
} IN TRANSACTIONS OF 10000 ROWS`

	writeLayoutMarker = `MERGE (:KgraphSchema {uid: $uid})`
)

// migrateOnce brings a database an earlier version wrote to this layout,
// unless its marker says it is there already.
func (s *Store) migrateOnce(ctx context.Context) error {
	params := map[string]any{"uid": layoutMarkerUID}
	var done bool
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		done, err = single(ctx, tx, readLayoutMarker, params, func(r *neo4j.Record) (bool, error) {
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
		{"ids of entity mentions", migrateMentions},
		{"pairs of relation mentions", migrateRelatedPairs},
		{"links", migrateLinks},
		{"degrees", migrateDegrees},
		{"buckets of links", migrateLinkBuckets},
		{"marker", writeLayoutMarker},
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
