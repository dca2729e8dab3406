// Package neo4jgraph is the knowledge-graph store on Neo4j (5.26 LTS and
// later, Community Edition is enough). Like the embedded store it keeps every
// chunk's contribution separately (per-chunk provenance) and aggregates at
// read time, so redelivering a chunk changes nothing and deleting a document
// subtracts exactly what it added. What a local query ranks with is kept
// instead of aggregated: one LINK per related pair (summed weight, mention
// count) and each entity's degree, recomputed for the touched pairs in the
// transaction of every write that changes RELATED (see links.go).
//
// The graph it writes:
//
//	(:Document {uid, scope, namespace, doc_id, entities, relations})
//	  -[:HAS_CHUNK]->
//	(:Chunk {uid, scope, namespace, doc, doc_id, chunk_id, job_id, chunk_index, text, tokens})
//	  -[:MENTIONS {e, doc_id, chunk_id, name, type, description}]->
//	(:Entity {uid, scope, namespace, key, degree, bucket})
//	  -[:RELATED {chunk, pair, doc, doc_id, chunk_id, chunk_index, description, keywords, weight}]->
//	(:Entity)
//	(:Entity)-[:LINK {pair, weight, mentions, s, t, sb, tb}]->(:Entity)
//
// MENTIONS is one chunk's mention of an entity; RELATED is one chunk's
// mention of the undirected relation between two entities, pointing from
// the smaller key to the larger, and carrying the chunk's uid so the chunk's
// contributions can be found and replaced, and the pair's identity (the two
// uids), indexed, so one pair's mentions are found without walking a hub's.
// MENTIONS carries the entity's uid and the chunk's ids, indexed together,
// so an entity's first mentions are read in order without reading them
// all. An entity exists while a chunk mentions it. Document counts
// (entities, relations) are the distinct entities and relations its chunks
// mention, kept up to date by each merge.
// A chunk's fingerprint hashes everything its last merge wrote, so a
// redelivery is recognised without comparing every mention.
//
// Besides the graph, the store keeps what is derived from it, in nodes
// without relationships but for the entities' community memberships (and a
// database-wide (:KgraphSchema {uid}) marker of the layout, see links.go):
//
//	(:GenerationShard {uid, scope, namespace, generation})
//	(:Namespace {uid, scope, namespace, communities_generation})
//	(:Community {uid, scope, namespace, community_id, level, parent, keys,
//	  title, summary, rating, rating_explanation, findings, hash})
//	(:Entity)-[:IN_COMMUNITY]->(:Community)
//	(:EntitySummary {uid, scope, namespace, key, source_hash, text})
//
// A namespace's generation is the sum of its generation shards: each merge
// that changes the namespace, and each deletion of a document, adds one to
// the shard of its document in the same transaction. One counter would
// hold a lock across the commit of every such merge in the namespace,
// serialising them; shards only serialise merges of documents that share
// one. The shards only grow, so reading them one after the other (reads
// are read-committed) still gives a generation that never goes back.
// Findings are stored as JSON; summaries outlive the entity they summarise,
// as a deleted entity may come back with the same description.
//
// Community Edition has one user database and only single-property
// uniqueness constraints, so every node carries a uid that encodes its whole
// identity (partition, namespace, key or document and chunk ids), and a
// scope that encodes (partition, namespace) for namespace-wide reads. A
// full-text index on entity keys (eventually consistent) serves name search.
//
// Writes run in managed transactions, one per chunk or document, which the
// driver retries on transient errors (deadlocks among them). To keep
// deadlocks rare they take locks in one order: the document first, then the
// entities by uid.
package neo4jgraph

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"
	"github.com/neo4j/neo4j-go-driver/v6/neo4j/config"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// Config says how to reach Neo4j.
type Config struct {
	// URI is the Bolt URI, e.g. bolt://127.0.0.1:7687 or neo4j://host.
	URI string
	// User and Password authenticate; an empty User connects without
	// authentication.
	User     string
	Password string
	// Database is the database to use; empty is the user's home database.
	Database string
	// MaxConnectionPoolSize caps the driver's connections; 0 keeps the
	// driver's default.
	MaxConnectionPoolSize int
	// Partition separates stores sharing one database (Community Edition has
	// only one): a store reads and writes only its partition's graph. Empty
	// is a partition like any other.
	Partition string
}

// Store is a knowledge-graph store in a Neo4j database. It is safe for
// concurrent use, also by several processes.
type Store struct {
	driver    neo4j.Driver
	database  string
	partition string
	// bookmarks makes every session of the store causally chained, so a read
	// sees the store's earlier writes also on a cluster.
	bookmarks neo4j.BookmarkManager
}

// Open connects to Neo4j, verifies the connection, creates the constraints
// and indexes the store needs (idempotently) and, once, brings a database
// an earlier version wrote to the current layout (see migrateOnce).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URI == "" {
		return nil, errors.New("open neo4j graph store: empty URI")
	}
	auth := neo4j.NoAuth()
	if cfg.User != "" {
		auth = neo4j.BasicAuth(cfg.User, cfg.Password, "")
	}
	driver, err := neo4j.NewDriver(cfg.URI, auth, func(c *config.Config) {
		if cfg.MaxConnectionPoolSize > 0 {
			c.MaxConnectionPoolSize = cfg.MaxConnectionPoolSize
		}
	})
	if err != nil {
		return nil, fmt.Errorf("open neo4j graph store %s: %w", cfg.URI, err)
	}
	s := &Store{
		driver:    driver,
		database:  cfg.Database,
		partition: cfg.Partition,
		bookmarks: neo4j.NewBookmarkManager(neo4j.BookmarkManagerConfig{}),
	}
	if err := driver.VerifyConnectivity(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open neo4j graph store %s: %w", cfg.URI, err), driver.Close(ctx))
	}
	if err := s.createSchema(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open neo4j graph store %s: %w", cfg.URI, err), driver.Close(ctx))
	}
	return s, nil
}

// schemaStatements create the constraints and indexes; each is idempotent.
// The uniqueness constraints also index uid, which every merge looks up.
func schemaStatements() []string {
	return []string{
		`CREATE CONSTRAINT kgraph_document_uid IF NOT EXISTS FOR (d:Document) REQUIRE d.uid IS UNIQUE`,
		`CREATE CONSTRAINT kgraph_chunk_uid IF NOT EXISTS FOR (c:Chunk) REQUIRE c.uid IS UNIQUE`,
		`CREATE CONSTRAINT kgraph_entity_uid IF NOT EXISTS FOR (e:Entity) REQUIRE e.uid IS UNIQUE`,
		`CREATE INDEX kgraph_document_scope IF NOT EXISTS FOR (d:Document) ON (d.scope)`,
		`CREATE INDEX kgraph_chunk_scope_id IF NOT EXISTS FOR (c:Chunk) ON (c.scope, c.chunk_id)`,
		`CREATE INDEX kgraph_entity_scope IF NOT EXISTS FOR (e:Entity) ON (e.scope)`,
		`CREATE INDEX kgraph_related_chunk IF NOT EXISTS FOR ()-[r:RELATED]-() ON (r.chunk)`,
		// A pair's mentions and its link, found without walking either
		// endpoint's relationships (see links.go).
		`CREATE INDEX kgraph_related_pair IF NOT EXISTS FOR ()-[r:RELATED]-() ON (r.pair)`,
		`CREATE INDEX kgraph_link_pair IF NOT EXISTS FOR ()-[l:LINK]-() ON (l.pair)`,
		// An entity's mentions by document and chunk, and its links by
		// falling bucket of the other end's degree.
		`CREATE INDEX kgraph_mentions_entity IF NOT EXISTS FOR ()-[m:MENTIONS]-() ON (m.e, m.doc_id, m.chunk_id)`,
		`CREATE INDEX kgraph_link_start IF NOT EXISTS FOR ()-[l:LINK]-() ON (l.s, l.tb)`,
		`CREATE INDEX kgraph_link_end IF NOT EXISTS FOR ()-[l:LINK]-() ON (l.t, l.sb)`,
		`CREATE CONSTRAINT kgraph_generation_shard_uid IF NOT EXISTS FOR (g:GenerationShard) REQUIRE g.uid IS UNIQUE`,
		`CREATE CONSTRAINT kgraph_namespace_uid IF NOT EXISTS FOR (n:Namespace) REQUIRE n.uid IS UNIQUE`,
		`CREATE CONSTRAINT kgraph_community_uid IF NOT EXISTS FOR (c:Community) REQUIRE c.uid IS UNIQUE`,
		`CREATE INDEX kgraph_community_scope IF NOT EXISTS FOR (c:Community) ON (c.scope)`,
		`CREATE CONSTRAINT kgraph_entity_summary_uid IF NOT EXISTS FOR (s:EntitySummary) REQUIRE s.uid IS UNIQUE`,
		`CREATE INDEX kgraph_entity_summary_scope IF NOT EXISTS FOR (s:EntitySummary) ON (s.scope)`,
		// Keys are names upper-cased with whitespace collapsed, so searching
		// them (case-insensitively, as full-text search does) finds entities
		// by name. Eventually consistent: updating Lucene at commit made
		// merges several times slower, and search may lag a write a little.
		"CREATE FULLTEXT INDEX kgraph_entity_key_text IF NOT EXISTS FOR (e:Entity) ON EACH [e.key] " +
			"OPTIONS {indexConfig: {`fulltext.eventually_consistent`: true}}",
	}
}

// schemaAlreadyExists tells the errors of creating an index or constraint
// that exists (IF NOT EXISTS covers only the ones committed before).
func schemaAlreadyExists(code string) bool {
	switch code {
	case "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
		"Neo.ClientError.Schema.ConstraintAlreadyExists",
		"Neo.ClientError.Schema.IndexAlreadyExists":
		return true
	}
	return false
}

func (s *Store) createSchema(ctx context.Context) error {
	for _, stmt := range schemaStatements() {
		// Schema commands cannot share a transaction with other commands.
		_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			return nil, run(ctx, tx, stmt, nil)
		})
		// Another store opening at the same time may have created it first.
		var neoErr *neo4j.Neo4jError
		if errors.As(err, &neoErr) && schemaAlreadyExists(neoErr.Code) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("create schema (%s): %w", stmt, err)
		}
	}
	if _, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		return nil, run(ctx, tx, `CALL db.awaitIndexes(300)`, nil)
	}); err != nil {
		return fmt.Errorf("wait for indexes: %w", err)
	}
	if err := s.migrateOnce(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the driver and its connections.
func (s *Store) Close() error {
	if err := s.driver.Close(context.Background()); err != nil {
		return fmt.Errorf("close neo4j graph store: %w", err)
	}
	return nil
}

func (s *Store) session(ctx context.Context, mode neo4j.AccessMode) neo4j.Session {
	return s.driver.NewSession(ctx, neo4j.SessionConfig{
		AccessMode:      mode,
		DatabaseName:    s.database,
		BookmarkManager: s.bookmarks,
	})
}

// write runs work in one managed write transaction, retried on transient
// errors and lost races, so work must only compute from what it reads.
func (s *Store) write(ctx context.Context, work neo4j.ManagedTransactionWork) (any, error) {
	session := s.session(ctx, neo4j.AccessModeWrite)
	result, err := session.ExecuteWrite(ctx, retryLostRaces(work))
	return result, errors.Join(err, session.Close(ctx))
}

// read runs work in one managed read transaction.
func (s *Store) read(ctx context.Context, work neo4j.ManagedTransactionWork) error {
	session := s.session(ctx, neo4j.AccessModeRead)
	_, err := session.ExecuteRead(ctx, retryLostRaces(work))
	return errors.Join(err, session.Close(ctx))
}

// entityNotFound is Neo4j's error for a node or relationship that was
// deleted after the transaction found it and before it used it.
const entityNotFound = "Neo.ClientError.Statement.EntityNotFound"

// retryLostRaces marks entityNotFound retryable. A merge finds a document or
// entity node and only then waits for its lock; when the transaction
// holding the lock deletes the node (deleting the document, or the last
// mention of the entity), the waiting one fails with entityNotFound rather
// than a transient error. Run again, it no longer finds the node and creates
// it anew, so the driver's retry (with its backoff and time limit) is the
// right answer, as for deadlocks.
func retryLostRaces(work neo4j.ManagedTransactionWork) neo4j.ManagedTransactionWork {
	return func(tx neo4j.ManagedTransaction) (any, error) {
		result, err := work(tx)
		var neoErr *neo4j.Neo4jError
		if errors.As(err, &neoErr) && neoErr.Code == entityNotFound {
			neoErr.MarkRetriable()
		}
		return result, err
	}
}

// run runs a query whose records are not needed.
func run(ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any) error {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	_, err = result.Consume(ctx)
	return err
}

// collect runs a query and maps each record.
func collect[T any](ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any,
	mapRecord func(*neo4j.Record) (T, error)) ([]T, error) {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	return neo4j.CollectT(ctx, result, mapRecord)
}

// single runs a query that returns exactly one record and maps it.
func single[T any](ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any,
	mapRecord func(*neo4j.Record) (T, error)) (T, error) {
	result, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return *new(T), err
	}
	return neo4j.SingleT(ctx, result, mapRecord)
}

// identity encodes a tuple of strings injectively (each part prefixed by its
// length), so no choice of namespace, key or ids can make two identities
// collide.
func identity(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// scope identifies a namespace of the store's partition; the uids of the
// namespace's nodes start with it.
func (s *Store) scope(namespace string) string { return identity(s.partition, namespace) }

func (s *Store) entityUID(namespace, key string) string {
	return s.scope(namespace) + identity(key)
}

func (s *Store) entityUIDs(namespace string, keys []string) []string {
	uids := make([]string, len(keys))
	for i, key := range keys {
		uids[i] = s.entityUID(namespace, key)
	}
	return uids
}

func (s *Store) documentUID(namespace, docID string) string {
	return s.scope(namespace) + identity(docID)
}

func (s *Store) chunkUID(namespace, docID, chunkID string) string {
	return s.scope(namespace) + identity(docID, chunkID)
}

// generationShards is the number of generation counters of a namespace.
const generationShards = 16

// generationShardUID is the uid of the generation shard a document's merges
// and deletion count in.
func (s *Store) generationShardUID(namespace, docID string) string {
	h := fnv.New32a()
	h.Write([]byte(docID))
	return s.shardUID(namespace, int(h.Sum32()%generationShards))
}

func (s *Store) generationShardUIDs(namespace string) []string {
	uids := make([]string, generationShards)
	for i := range uids {
		uids[i] = s.shardUID(namespace, i)
	}
	return uids
}

func (s *Store) shardUID(namespace string, shard int) string {
	return s.scope(namespace) + identity(strconv.Itoa(shard))
}

// namespaceUID is the uid of the namespace's node; the label tells it from
// other nodes whose uid is the scope alone.
func (s *Store) namespaceUID(namespace string) string { return s.scope(namespace) }

func (s *Store) communityUID(namespace string, level int, id string) string {
	return s.scope(namespace) + identity(strconv.Itoa(level), id)
}

// summaryUID equals the entity's uid; the labels keep them apart.
func (s *Store) summaryUID(namespace, key string) string { return s.entityUID(namespace, key) }

func checkNamespace(namespace string) error {
	if namespace == "" {
		return errors.New("empty namespace")
	}
	return nil
}

// Store is a graph.Store.
var _ graph.Store = (*Store)(nil)
