// Package qdrantvec is a vector store backed by a Qdrant server over gRPC.
//
// Layout. Qdrant fixes a collection's dimension when it is created, while the
// store contract lets every (namespace, kind) have its own dimension. So each
// (kind, dimension) pair gets its own collection, named
// "<prefix><kind>_<dim>" (e.g. "kgraph_chunk_768"), created lazily by the
// first upsert that needs it with cosine distance and keyword payload indexes
// on "namespace" (a tenant index) and "doc_id". Namespaces share the
// collections and are separated by a filter on every request.
//
// Point ids are UUIDv5 values derived from (namespace, id), so re-upserting an
// item overwrites its point; the original id, namespace and doc id travel in
// the payload and hits report the original id. Vectors are scaled to unit
// length in float64 before they are sent, which keeps scores identical to the
// embedded store's even for components whose squares overflow float32.
//
// With Config.Dim set, only that dimension is accepted and every search and
// count reads the one collection of that dimension. With Dim zero the store
// accepts any dimension and enforces "one dimension per (namespace, kind)"
// itself by counting the namespace's points in the kind's other collections:
// an extra round trip per distinct (namespace, kind) on upsert and on a
// search that finds nothing. That check, like Qdrant itself, is not
// transactional: concurrent writers of different dimensions into one
// (namespace, kind) can both succeed.
//
// Search is exact while a collection is small enough for Qdrant to scan it
// (below its indexing threshold) and HNSW-approximate beyond that, unlike the
// embedded store, which always scans.
//
// Upsert validates the whole batch before sending anything, but a batch larger
// than one request (or spanning several kinds) is written request by request;
// if the server fails midway, the earlier requests stay applied. Upserts are
// idempotent, so retrying the batch converges.
package qdrantvec

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgraph-dev/kgraph/libs/vector"
)

const (
	// DefaultCollectionPrefix names the collections when Config leaves the
	// prefix empty.
	DefaultCollectionPrefix = "kgraph_"

	// defaultPort is Qdrant's gRPC port.
	defaultPort = 6334

	// upsertBatchSize bounds the points of one upsert request, keeping
	// requests well under gRPC's default 4 MiB message limit for embedding
	// sizes up to a few thousand dimensions.
	upsertBatchSize = 256

	// pointIDSpace is the UUIDv5 namespace of point ids. Changing it orphans
	// every stored point, so it is fixed forever.
	pointIDSpace = "5c1e3a0e-8f0b-4d3e-9a57-6b8f4c2d7e10"

	// Payload keys.
	payloadNamespace = "namespace"
	payloadDocID     = "doc_id"
	payloadID        = "id"
)

// Config says where the Qdrant server is and how to lay out collections.
type Config struct {
	// URL is the gRPC endpoint: "http://host:6334", "https://host:6334" (TLS)
	// or "host:6334". The port defaults to 6334.
	URL string
	// APIKey is sent with every request when non-empty; use it with https.
	APIKey string
	// CollectionPrefix starts every collection name; DefaultCollectionPrefix
	// when empty. Prefixes of different stores sharing a server must not be
	// prefixes of one another, since DeleteDocument sweeps every collection
	// under its prefix.
	CollectionPrefix string
	// Dim, when positive, is the only vector dimension accepted. Zero accepts
	// any dimension (one per namespace and kind).
	Dim int
}

// Store is a vector store on a Qdrant server. It is safe for concurrent use.
type Store struct {
	client *qdrant.Client
	layout layout

	mu sync.Mutex
	// ensured holds the collections this process has created or found, so
	// that upserts do not ask the server again each time.
	ensured map[string]bool
}

// Open connects to the Qdrant server described by cfg and checks that it
// answers. Collections are created on first use, not here.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	l, err := newLayout(cfg.CollectionPrefix, cfg.Dim)
	if err != nil {
		return nil, fmt.Errorf("open qdrant vector store: %w", err)
	}
	addr, err := parseAddress(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open qdrant vector store: %w", err)
	}
	client, err := qdrant.NewClient(&qdrant.Config{
		Host:   addr.host,
		Port:   addr.port,
		APIKey: cfg.APIKey,
		UseTLS: addr.tls,
		// The client's own check ignores ctx and only logs; Ping below
		// reports an unreachable server as an error instead.
		SkipCompatibilityCheck: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open qdrant vector store at %s: %w", cfg.URL, err)
	}
	s := &Store{client: client, layout: l, ensured: map[string]bool{}}
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open qdrant vector store at %s: %w", cfg.URL, err), client.Close())
	}
	return s, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.HealthCheck(ctx); err != nil {
		return fmt.Errorf("qdrant health check: %w", err)
	}
	return nil
}

// Close closes the connections to the server.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close qdrant vector store: %w", err)
	}
	return nil
}

// Upsert inserts or replaces items. Invalid batches (see vector.Store)
// are rejected before any request is sent.
func (s *Store) Upsert(ctx context.Context, items []vector.Item) error {
	plan, err := s.layout.planUpsert(items, upsertBatchSize)
	if err != nil {
		return err
	}
	if len(plan.requests) == 0 {
		return nil
	}
	if s.layout.dim == 0 {
		if err := s.checkStoredDimensions(ctx, plan.dims); err != nil {
			return err
		}
	}
	for _, c := range plan.collections {
		if err := s.ensureCollection(ctx, c); err != nil {
			return err
		}
	}
	for _, req := range plan.requests {
		if _, err := s.client.Upsert(ctx, req); err != nil {
			return fmt.Errorf("upsert %d vectors into %s: %w", len(req.GetPoints()), req.GetCollectionName(), err)
		}
	}
	return nil
}

// Search returns the q.TopK items most similar to q.Vector, best first.
func (s *Store) Search(ctx context.Context, q vector.Query) ([]vector.Hit, error) {
	req, err := s.layout.searchRequest(q)
	if err != nil {
		return nil, err
	}
	points, err := s.client.Query(ctx, req)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
	}
	hits, err := hitsFromPoints(points)
	if err != nil {
		return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
	}
	if len(hits) == 0 && s.layout.dim == 0 {
		// Nothing of this dimension: the namespace may hold vectors of
		// another one, which makes the query invalid rather than unmatched.
		names, err := s.collectionsOfKind(ctx, q.Kind)
		if err != nil {
			return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
		}
		stored, found, err := s.storedDimension(ctx, names, q.Namespace, len(q.Vector))
		if err != nil {
			return nil, fmt.Errorf("search %s/%s: %w", q.Namespace, q.Kind, err)
		}
		if found {
			return nil, fmt.Errorf("search %s/%s: query dimension %d, stored vectors have %d", q.Namespace, q.Kind, len(q.Vector), stored)
		}
	}
	return hits, nil
}

// DeleteDocument removes every item of docID in namespace, whatever its kind
// and dimension.
func (s *Store) DeleteDocument(ctx context.Context, namespace, docID string) error {
	if namespace == "" || docID == "" {
		return fmt.Errorf("delete document %q in namespace %q: namespace and document id are required", docID, namespace)
	}
	if !utf8.ValidString(namespace) || !utf8.ValidString(docID) {
		return fmt.Errorf("delete document %q in namespace %q: not valid UTF-8", docID, namespace)
	}
	names, err := s.client.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("delete document %s in %s: %w", docID, namespace, err)
	}
	for _, name := range names {
		if _, _, ok := s.layout.parseCollection(name); !ok {
			continue
		}
		if _, err := s.client.Delete(ctx, deleteRequest(name, namespace, docID)); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete document %s in %s from %s: %w", docID, namespace, name, err)
		}
	}
	return nil
}

// Count returns how many items (namespace, kind) holds.
func (s *Store) Count(ctx context.Context, namespace, kind string) (int, error) {
	if err := checkLabels(namespace, kind); err != nil {
		return 0, fmt.Errorf("count vectors of %s/%s: %w", namespace, kind, err)
	}
	var names []string
	if s.layout.dim != 0 {
		names = []string{s.layout.collection(kind, s.layout.dim)}
	} else {
		var err error
		if names, err = s.collectionsOfKind(ctx, kind); err != nil {
			return 0, fmt.Errorf("count vectors of %s/%s: %w", namespace, kind, err)
		}
	}
	total := 0
	for _, name := range names {
		n, err := s.countIn(ctx, name, namespace)
		if err != nil {
			return 0, fmt.Errorf("count vectors of %s/%s: %w", namespace, kind, err)
		}
		total += n
	}
	return total, nil
}

// countIn counts namespace's points in one collection; a missing collection
// holds none.
func (s *Store) countIn(ctx context.Context, collection, namespace string) (int, error) {
	n, err := s.client.Count(ctx, countRequest(collection, namespace))
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count in %s: %w", collection, err)
	}
	return int(n), nil
}

// collectionsOfKind lists this store's collections of kind, one per dimension.
func (s *Store) collectionsOfKind(ctx context.Context, kind string) ([]string, error) {
	all, err := s.client.ListCollections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	var names []string
	for _, name := range all {
		if k, _, ok := s.layout.parseCollection(name); ok && k == kind {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// storedDimension reports the dimension of namespace's vectors among the
// collections names, ignoring the collection of dimension except.
func (s *Store) storedDimension(ctx context.Context, names []string, namespace string, except int) (int, bool, error) {
	for _, name := range names {
		_, dim, ok := s.layout.parseCollection(name)
		if !ok || dim == except {
			continue
		}
		n, err := s.countIn(ctx, name, namespace)
		if err != nil {
			return 0, false, err
		}
		if n > 0 {
			return dim, true, nil
		}
	}
	return 0, false, nil
}

// checkStoredDimensions rejects a batch that would give a (namespace, kind)
// a second dimension.
func (s *Store) checkStoredDimensions(ctx context.Context, dims map[partition]int) error {
	all, err := s.client.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("upsert vectors: list collections: %w", err)
	}
	byKind := map[string][]string{}
	for _, name := range all {
		if kind, _, ok := s.layout.parseCollection(name); ok {
			byKind[kind] = append(byKind[kind], name)
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(dims), comparePartitions) {
		stored, found, err := s.storedDimension(ctx, byKind[p.kind], p.namespace, dims[p])
		if err != nil {
			return fmt.Errorf("upsert into %s/%s: %w", p.namespace, p.kind, err)
		}
		if found {
			return fmt.Errorf("upsert into %s/%s: dimension %d, stored vectors have %d", p.namespace, p.kind, dims[p], stored)
		}
	}
	return nil
}

// ensureCollection creates c with its payload indexes unless this process has
// already seen it. Another process may create it concurrently, so a failed
// create is fine as long as the collection exists afterwards.
func (s *Store) ensureCollection(ctx context.Context, c collectionSpec) error {
	s.mu.Lock()
	done := s.ensured[c.name]
	s.mu.Unlock()
	if done {
		return nil
	}
	exists, err := s.client.CollectionExists(ctx, c.name)
	if err != nil {
		return fmt.Errorf("check collection %s: %w", c.name, err)
	}
	if !exists {
		if err := s.client.CreateCollection(ctx, createCollectionRequest(c)); err != nil {
			exists, existsErr := s.client.CollectionExists(ctx, c.name)
			if existsErr != nil || !exists {
				return fmt.Errorf("create collection %s: %w", c.name, err)
			}
		}
	}
	// Creating an index that exists is a no-op in Qdrant, and doing it even
	// for a collection found here repairs one whose creator died before
	// indexing it.
	for _, req := range fieldIndexRequests(c.name) {
		if _, err := s.client.CreateFieldIndex(ctx, req); err != nil {
			return fmt.Errorf("index %s of collection %s: %w", req.GetFieldName(), c.name, err)
		}
	}
	s.mu.Lock()
	s.ensured[c.name] = true
	s.mu.Unlock()
	return nil
}

// isNotFound reports whether err is Qdrant's answer for a missing collection.
func isNotFound(err error) bool {
	var st interface{ GRPCStatus() *status.Status }
	return errors.As(err, &st) && st.GRPCStatus().Code() == codes.NotFound
}

// Store is a vector.Store.
var _ vector.Store = (*Store)(nil)
