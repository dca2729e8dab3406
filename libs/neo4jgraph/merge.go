package neo4jgraph

import (
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"

	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// A merge is six queries in one transaction: lock the document and write
// the chunk, lock the entities, replace the contribution, recompute the
// touched pairs' links and their endpoints' degrees (links.go), then count,
// clean up and count the change in the namespace's generation. A redelivered
// chunk is two: lock the document and find the chunk unchanged, then
// release the document. Every query takes its input as parameters only; no
// input string is ever part of a query's text.
const (
	// lockDocumentAndUpsertChunk write-locks the document first (setting
	// _LOCK_ is the documented way to take a node's write lock in Cypher; it
	// is removed again before commit), which serialises the merges of one
	// document's chunks and so keeps the document's counts exact. It then
	// creates or updates the chunk and returns the chunk's previous
	// contribution, or only that the chunk is unchanged: its fingerprint
	// covers everything the merge writes.
	lockDocumentAndUpsertChunk = `
MERGE (d:Document {uid: $doc})
  ON CREATE SET d.scope = $scope, d.namespace = $namespace, d.doc_id = $docID, d.entities = 0, d.relations = 0
SET d._LOCK_ = true
MERGE (c:Chunk {uid: $chunk})
  ON CREATE SET c.scope = $scope, c.namespace = $namespace, c.doc = $doc, c.doc_id = $docID, c.chunk_id = $chunkID
MERGE (d)-[:HAS_CHUNK]->(c)
WITH c, coalesce(c.fingerprint = $fingerprint, false) AS unchanged
FOREACH (_ IN CASE WHEN unchanged THEN [] ELSE [true] END |
  SET c.job_id = $jobID, c.chunk_index = $index, c.text = $text, c.tokens = $tokens, c.fingerprint = $fingerprint)
RETURN unchanged,
  CASE WHEN unchanged THEN [] ELSE COLLECT { MATCH (c)-[:MENTIONS]->(e:Entity) RETURN e {.uid, .key} } END AS entities,
  CASE WHEN unchanged THEN [] ELSE COLLECT {
    MATCH (s:Entity)-[:RELATED {chunk: $chunk}]->(t:Entity) RETURN {src: s.uid, dst: t.uid}
  } END AS relations`

	// releaseDocument ends the merge of an unchanged chunk.
	releaseDocument = `
MATCH (d:Document {uid: $doc})
REMOVE d._LOCK_
RETURN d.entities AS entities, d.relations AS relations`

	// lockEntities creates missing entities and write-locks all of them in
	// the order of $entities, which every transaction sorts by uid.
	lockEntities = `
UNWIND $entities AS row
MERGE (e:Entity {uid: row.uid})
  ON CREATE SET e.scope = $scope, e.namespace = $namespace, e.key = row.key
SET e._LOCK_ = true`

	replaceContribution = `
CALL {
  MATCH (:Chunk {uid: $chunk})-[m:MENTIONS]->()
  DELETE m
}
CALL {
  MATCH ()-[r:RELATED {chunk: $chunk}]->()
  DELETE r
}
CALL {
  MATCH (c:Chunk {uid: $chunk})
  UNWIND $mentions AS row
  MATCH (e:Entity {uid: row.uid})
  CREATE (c)-[:MENTIONS {e: row.uid, doc_id: $docID, chunk_id: $chunkID, name: row.name, type: row.type,
    description: row.description}]->(e)
}
CALL {
  UNWIND $relations AS row
  MATCH (s:Entity {uid: row.src})
  MATCH (t:Entity {uid: row.dst})
  CREATE (s)-[:RELATED {chunk: $chunk, pair: row.pair, doc: $doc, doc_id: $docID, chunk_id: $chunkID,
    chunk_index: $index, description: row.description, keywords: row.keywords, weight: row.weight}]->(t)
}`

	// finishMerge updates the document's counts and releases the locks'
	// markers, deleting the entities nothing mentions any more, and counts
	// the change in the document's generation shard. The shard is locked
	// last, so it is held only while the transaction commits.
	//
	// The counts change only for the keys the chunk gained or lost
	// ($changedEntities, $changedRelations), by +1 for each gained and -1
	// for each lost key that no other chunk of the document mentions; so a
	// merge costs in proportion to the chunk, not to the document, and the
	// document's lock keeps the answer true until commit. The reads are index
	// seeks of the entity's mentions in the document and of the pair's
	// mentions: neither walks a hub's mentions, nor the document's.
	finishMerge = `
CALL {
  UNWIND $changedEntities AS row
  OPTIONAL MATCH (e:Entity {uid: row.uid})
  WITH row, e IS NOT NULL AND EXISTS {
    MATCH ()-[m:MENTIONS]->()
    WHERE m.e = row.uid AND m.doc_id = $docID AND m.chunk_id <> $chunkID
  } AS elsewhere
  RETURN sum(CASE WHEN elsewhere THEN 0 WHEN row.gained THEN 1 ELSE -1 END) AS entityDelta
}
CALL {
  UNWIND $changedRelations AS row
  WITH row, EXISTS {
    MATCH ()-[r:RELATED {pair: row.pair}]->()
    WHERE r.doc = $doc AND r.chunk <> $chunk
  } AS elsewhere
  RETURN sum(CASE WHEN elsewhere THEN 0 WHEN row.gained THEN 1 ELSE -1 END) AS relationDelta
}
CALL {
  UNWIND $locked AS row
  MATCH (e:Entity {uid: row.uid})
  REMOVE e._LOCK_
  WITH e, row
  WHERE row.gone AND NOT EXISTS { (e)<-[:MENTIONS]-() }
  DETACH DELETE e
}
MATCH (d:Document {uid: $doc})
SET d.entities = d.entities + entityDelta, d.relations = d.relations + relationDelta
REMOVE d._LOCK_
WITH d
` + bumpGeneration + `
RETURN d.entities AS entities, d.relations AS relations`

	// bumpGeneration adds one to the generation shard $generationShard.
	bumpGeneration = `
MERGE (g:GenerationShard {uid: $generationShard})
  ON CREATE SET g.scope = $scope, g.namespace = $namespace, g.generation = 0
SET g.generation = g.generation + 1`
)

// MergeChunk replaces the chunk's previous contribution (if any) with this
// one in a single transaction, so a redelivered chunk changes nothing and a
// corrected chunk replaces the old version.
func (s *Store) MergeChunk(ctx context.Context, chunk graph.ChunkGraph) (graph.MergeResult, error) {
	switch {
	case chunk.Namespace == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: empty namespace", chunk.ChunkID)
	case chunk.DocID == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: empty document id", chunk.ChunkID)
	case chunk.ChunkID == "":
		return graph.MergeResult{}, fmt.Errorf("merge chunk of document %s: empty chunk id", chunk.DocID)
	}
	m := s.newMerge(chunk)
	counts, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		return m.replace(ctx, tx)
	})
	if err != nil {
		return graph.MergeResult{}, fmt.Errorf("merge chunk %s: %w", chunk.ChunkID, err)
	}
	doc := counts.(docCounts)
	return graph.MergeResult{
		Entities:     len(m.entities),
		Relations:    len(m.relations),
		DocEntities:  doc.entities,
		DocRelations: doc.relations,
	}, nil
}

// merge is one chunk's merge, its parameters computed once so the
// transaction function only talks to the database (the driver may run it
// more than once).
type merge struct {
	params    map[string]any
	entities  []entityParam
	relations []relationParam
}

// entityParam is one entity mention of the chunk.
type entityParam struct {
	uid, key, name, typ, description string
}

// relationParam is one relation mention of the chunk; src and dst are
// entity uids.
type relationParam struct {
	src, dst    string
	description string
	keywords    []string
	weight      float64
}

type uidPair struct{ src, dst string }

type docCounts struct{ entities, relations int }

func (s *Store) newMerge(chunk graph.ChunkGraph) *merge {
	contrib := provenance.ContributionOf(chunk)
	m := &merge{
		entities:  make([]entityParam, len(contrib.Entities)),
		relations: make([]relationParam, len(contrib.Relations)),
	}
	mentions := make([]map[string]any, len(contrib.Entities))
	for i, e := range contrib.Entities {
		m.entities[i] = entityParam{
			uid: s.entityUID(chunk.Namespace, e.Key), key: e.Key, name: e.Name, typ: e.Type, description: e.Description,
		}
		mentions[i] = map[string]any{"uid": m.entities[i].uid, "name": e.Name, "type": e.Type, "description": e.Description}
	}
	relations := make([]map[string]any, len(contrib.Relations))
	for i, r := range contrib.Relations {
		m.relations[i] = relationParam{
			src: s.entityUID(chunk.Namespace, r.Src), dst: s.entityUID(chunk.Namespace, r.Dst),
			description: r.Description, keywords: r.Keywords, weight: r.Weight,
		}
		keywords := r.Keywords
		if keywords == nil {
			keywords = []string{} // null would leave the property out
		}
		relations[i] = map[string]any{
			"src": m.relations[i].src, "dst": m.relations[i].dst, "pair": pairUID(m.relations[i].src, m.relations[i].dst),
			"description": r.Description, "keywords": keywords, "weight": r.Weight,
		}
	}
	m.params = map[string]any{
		"scope":           s.scope(chunk.Namespace),
		"namespace":       chunk.Namespace,
		"doc":             s.documentUID(chunk.Namespace, chunk.DocID),
		"docID":           chunk.DocID,
		"chunk":           s.chunkUID(chunk.Namespace, chunk.DocID, chunk.ChunkID),
		"chunkID":         chunk.ChunkID,
		"jobID":           chunk.JobID,
		"index":           int64(chunk.Index),
		"text":            chunk.Text,
		"tokens":          int64(chunk.Tokens),
		"mentions":        mentions,
		"relations":       relations,
		"fingerprint":     fingerprint(chunk, contrib),
		"generationShard": s.generationShardUID(chunk.Namespace, chunk.DocID),
	}
	return m
}

// fingerprint hashes everything a merge of the chunk writes besides its
// identity: the chunk's values and its mentions, in key order since the
// stored mentions have none. Equal fingerprints mean the merge would change
// nothing.
func fingerprint(chunk graph.ChunkGraph, contrib provenance.Contribution) string {
	h := sha256.New()
	write := func(parts ...string) { h.Write([]byte(identity(parts...))) }
	number := func(n float64) string { return strconv.FormatFloat(n, 'g', -1, 64) }
	write(chunk.JobID, strconv.Itoa(chunk.Index), chunk.Text, strconv.Itoa(chunk.Tokens))
	entities := slices.SortedFunc(slices.Values(contrib.Entities), func(a, b provenance.EntityMention) int {
		return cmp.Compare(a.Key, b.Key)
	})
	write(strconv.Itoa(len(entities)))
	for _, e := range entities {
		write(e.Key, e.Name, e.Type, e.Description)
	}
	relations := slices.SortedFunc(slices.Values(contrib.Relations), func(a, b provenance.RelationMention) int {
		return cmp.Or(cmp.Compare(a.Src, b.Src), cmp.Compare(a.Dst, b.Dst))
	})
	write(strconv.Itoa(len(relations)))
	for _, r := range relations {
		write(r.Src, r.Dst, r.Description, number(r.Weight), strconv.Itoa(len(r.Keywords)))
		write(r.Keywords...)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// with returns the merge's parameters plus more.
func (m *merge) with(more map[string]any) map[string]any {
	params := maps.Clone(m.params)
	maps.Copy(params, more)
	return params
}

// previous is the chunk's stored contribution, or only that it is the
// merge's already.
type previous struct {
	unchanged bool
	entities  []entityParam // uid and key only
	relations []uidPair
}

// replace swaps the chunk's stored contribution for the new one and returns
// the document's counts afterwards. A merge that changes anything counts in
// the namespace's generation; a redelivery writes nothing but the
// document's lock marker.
func (m *merge) replace(ctx context.Context, tx neo4j.ManagedTransaction) (docCounts, error) {
	prev, err := single(ctx, tx, lockDocumentAndUpsertChunk, m.params, previousOf)
	if err != nil {
		return docCounts{}, fmt.Errorf("lock document and write chunk: %w", err)
	}
	if prev.unchanged {
		counts, err := single(ctx, tx, releaseDocument, m.params, docCountsOf)
		if err != nil {
			return docCounts{}, fmt.Errorf("release document: %w", err)
		}
		return counts, nil
	}

	// Lock every entity the chunk mentioned or mentions, in uid order.
	inNew := make(map[string]bool, len(m.entities))
	keyOf := make(map[string]string, len(m.entities)+len(prev.entities))
	for _, e := range m.entities {
		inNew[e.uid] = true
		keyOf[e.uid] = e.key
	}
	for _, e := range prev.entities {
		keyOf[e.uid] = e.key
	}
	lockOrder := slices.Sorted(maps.Keys(keyOf))
	lockRows := make([]map[string]any, len(lockOrder))
	for i, uid := range lockOrder {
		lockRows[i] = map[string]any{"uid": uid, "key": keyOf[uid]}
	}
	if err := run(ctx, tx, lockEntities, m.with(map[string]any{"entities": lockRows})); err != nil {
		return docCounts{}, fmt.Errorf("lock entities: %w", err)
	}

	if err := run(ctx, tx, replaceContribution, m.params); err != nil {
		return docCounts{}, fmt.Errorf("replace contribution: %w", err)
	}
	// The pairs the chunk mentioned or mentions, whose links may have
	// changed (a pair in both may have changed weight).
	touched := slices.Concat(prev.relations, relationPairs(m.relations))
	if err := refreshLinksOf(ctx, tx, touched); err != nil {
		return docCounts{}, err
	}

	oldEntities := make([]string, len(prev.entities))
	for i, e := range prev.entities {
		oldEntities[i] = e.uid
	}
	newEntities := make([]string, len(m.entities))
	for i, e := range m.entities {
		newEntities[i] = e.uid
	}
	newRelations := relationPairs(m.relations)
	changedEntities := changed(oldEntities, newEntities, func(uid string, gained bool) map[string]any {
		return map[string]any{"uid": uid, "gained": gained}
	})
	changedRelations := changed(prev.relations, newRelations, func(p uidPair, gained bool) map[string]any {
		return map[string]any{"pair": pairUID(p.src, p.dst), "gained": gained}
	})
	unlockRows := make([]map[string]any, len(lockOrder))
	for i, uid := range lockOrder {
		unlockRows[i] = map[string]any{"uid": uid, "gone": !inNew[uid]}
	}
	counts, err := single(ctx, tx, finishMerge, m.with(map[string]any{
		"changedEntities":  changedEntities,
		"changedRelations": changedRelations,
		"locked":           unlockRows,
	}), docCountsOf)
	if err != nil {
		return docCounts{}, fmt.Errorf("count document and delete unmentioned entities: %w", err)
	}
	if counts.entities < 0 || counts.relations < 0 {
		return docCounts{}, fmt.Errorf("document %s counts went negative (%d entities, %d relations)",
			m.params["docID"], counts.entities, counts.relations)
	}
	return counts, nil
}

func relationPairs(relations []relationParam) []uidPair {
	pairs := make([]uidPair, len(relations))
	for i, r := range relations {
		pairs[i] = uidPair{r.src, r.dst}
	}
	return pairs
}

// changed returns a row for each key in exactly one of before and after,
// saying whether it was gained (is in after).
func changed[K comparable](before, after []K, row func(key K, gained bool) map[string]any) []map[string]any {
	inBefore := make(map[K]bool, len(before))
	for _, k := range before {
		inBefore[k] = true
	}
	inAfter := make(map[K]bool, len(after))
	for _, k := range after {
		inAfter[k] = true
	}
	rows := []map[string]any{}
	for _, k := range before {
		if !inAfter[k] {
			rows = append(rows, row(k, false))
		}
	}
	for _, k := range after {
		if !inBefore[k] {
			rows = append(rows, row(k, true))
		}
	}
	return rows
}

func previousOf(r *neo4j.Record) (previous, error) {
	var prev previous
	unchanged, err := recordValue[bool](r, "unchanged")
	if err != nil {
		return previous{}, err
	}
	prev.unchanged = unchanged
	entities, err := recordMaps(r, "entities")
	if err != nil {
		return previous{}, err
	}
	for _, e := range entities {
		uid, err := mapString(e, "uid")
		if err != nil {
			return previous{}, err
		}
		key, err := mapString(e, "key")
		if err != nil {
			return previous{}, err
		}
		prev.entities = append(prev.entities, entityParam{uid: uid, key: key})
	}
	relations, err := recordMaps(r, "relations")
	if err != nil {
		return previous{}, err
	}
	for _, rel := range relations {
		src, err := mapString(rel, "src")
		if err != nil {
			return previous{}, err
		}
		dst, err := mapString(rel, "dst")
		if err != nil {
			return previous{}, err
		}
		prev.relations = append(prev.relations, uidPair{src, dst})
	}
	return prev, nil
}

func docCountsOf(r *neo4j.Record) (docCounts, error) {
	entities, err := recordInt(r, "entities")
	if err != nil {
		return docCounts{}, err
	}
	relations, err := recordInt(r, "relations")
	return docCounts{entities, relations}, err
}

const (
	// lockDocument write-locks the document and lists the entities its
	// chunks mention, to be locked next.
	lockDocument = `
MATCH (d:Document {uid: $doc})
SET d._LOCK_ = true
RETURN COLLECT {
  MATCH (d)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e:Entity)
  RETURN DISTINCT e.uid
} AS entities`

	// pairsOfDocument lists the pairs the document's chunks relate, whose
	// links its deletion changes.
	pairsOfDocument = `
MATCH (:Document {uid: $doc})-[:HAS_CHUNK]->(c:Chunk)
MATCH (s:Entity)-[:RELATED {chunk: c.uid}]->(t:Entity)
RETURN DISTINCT s.uid AS src, t.uid AS dst`

	lockExistingEntities = `
UNWIND $uids AS uid
MATCH (e:Entity {uid: uid})
SET e._LOCK_ = true`

	// deleteDocumentContents deletes the document, its chunks and their
	// mentions, then releases the entities' lock markers, deleting the
	// entities nothing mentions any more, and counts the deletion in the
	// document's generation shard.
	deleteDocumentContents = `
CALL {
  MATCH (:Document {uid: $doc})-[:HAS_CHUNK]->(c:Chunk)
  MATCH ()-[r:RELATED {chunk: c.uid}]->()
  DELETE r
}
CALL {
  MATCH (d:Document {uid: $doc})
  OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
  DETACH DELETE c, d
}
CALL {
  UNWIND $uids AS uid
  MATCH (e:Entity {uid: uid})
  REMOVE e._LOCK_
  WITH e
  WHERE NOT EXISTS { (e)<-[:MENTIONS]-() }
  DETACH DELETE e
}
CALL {` + bumpGeneration + `
}`
)

// DeleteDocument removes the document's chunks and every mention they made;
// entities and relations nothing else mentions disappear with them.
// Deleting a document the namespace does not have changes nothing, its
// generation included.
func (s *Store) DeleteDocument(ctx context.Context, namespace, docID string) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("delete document %s: %w", docID, err)
	}
	params := map[string]any{"doc": s.documentUID(namespace, docID)}
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		lists, err := collect(ctx, tx, lockDocument, params, func(r *neo4j.Record) ([]string, error) {
			return recordStrings(r, "entities")
		})
		if err != nil {
			return nil, fmt.Errorf("lock document: %w", err)
		}
		if len(lists) == 0 {
			return nil, nil // no such document
		}
		// Sorted in Go, as merges sort: Cypher orders strings by UTF-16
		// code units, Go by bytes, and the lock order must be one order.
		uids := slices.Sorted(slices.Values(lists[0]))
		if err := run(ctx, tx, lockExistingEntities, map[string]any{"uids": uids}); err != nil {
			return nil, fmt.Errorf("lock entities: %w", err)
		}
		pairs, err := collect(ctx, tx, pairsOfDocument, params, func(r *neo4j.Record) (uidPair, error) {
			src, err := recordString(r, "src")
			if err != nil {
				return uidPair{}, err
			}
			dst, err := recordString(r, "dst")
			return uidPair{src, dst}, err
		})
		if err != nil {
			return nil, fmt.Errorf("list related pairs: %w", err)
		}
		if err := run(ctx, tx, deleteDocumentContents, map[string]any{
			"doc": params["doc"], "uids": uids, "scope": s.scope(namespace), "namespace": namespace,
			"generationShard": s.generationShardUID(namespace, docID),
		}); err != nil {
			return nil, fmt.Errorf("delete chunks and mentions: %w", err)
		}
		if err := refreshLinksOf(ctx, tx, pairs); err != nil {
			return nil, err
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("delete document %s: %w", docID, err)
	}
	return nil
}
