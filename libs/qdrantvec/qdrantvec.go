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
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
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

// layout maps kinds and dimensions to collection names and builds requests.
// Everything on it is pure, so it is tested without a server.
type layout struct {
	prefix string
	// dim is the only accepted dimension, or 0 for any.
	dim int
}

func newLayout(prefix string, dim int) (layout, error) {
	if prefix == "" {
		prefix = DefaultCollectionPrefix
	}
	if !isName(prefix) {
		return layout{}, fmt.Errorf("collection prefix %q: want letters, digits, '_' and '-' only", prefix)
	}
	if dim < 0 {
		return layout{}, fmt.Errorf("dimension %d: want 0 (any) or positive", dim)
	}
	return layout{prefix: prefix, dim: dim}, nil
}

func (l layout) collection(kind string, dim int) string {
	return l.prefix + kind + "_" + strconv.Itoa(dim)
}

// parseCollection inverts collection for names under the prefix. It is
// unambiguous because a kind may contain '_' but the dimension is the digits
// after the last one.
func (l layout) parseCollection(name string) (kind string, dim int, ok bool) {
	rest, ok := strings.CutPrefix(name, l.prefix)
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", 0, false
	}
	kind, digits := rest[:i], rest[i+1:]
	dim, err := strconv.Atoi(digits)
	if err != nil || dim < 1 || strconv.Itoa(dim) != digits || !isName(kind) {
		return "", 0, false
	}
	return kind, dim, true
}

type partition struct{ namespace, kind string }

func comparePartitions(a, b partition) int {
	return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.kind, b.kind))
}

type collectionSpec struct {
	name string
	dim  int
}

// upsertPlan is everything Upsert sends, computed before sending anything.
type upsertPlan struct {
	// collections are the collections written, sorted by name.
	collections []collectionSpec
	// requests hold at most the batch size of points each, grouped by
	// collection in the order of collections.
	requests []*qdrant.UpsertPoints
	// dims is the dimension of every (namespace, kind) written.
	dims map[partition]int
}

// planUpsert validates items and turns them into upsert requests of at most
// batchSize points. Of several items with the same (namespace, kind, id) the
// last wins, as if they had been written in order.
func (l layout) planUpsert(items []vector.Item, batchSize int) (upsertPlan, error) {
	type key struct{ namespace, kind, id string }
	plan := upsertPlan{dims: map[partition]int{}}
	byCollection := map[string][]*qdrant.PointStruct{}
	slot := map[key]int{}
	for _, it := range items {
		if it.Namespace == "" || it.Kind == "" || it.ID == "" {
			return upsertPlan{}, fmt.Errorf("upsert vector %q: namespace, kind and id are required (namespace %q, kind %q)", it.ID, it.Namespace, it.Kind)
		}
		if err := checkLabels(it.Namespace, it.Kind); err != nil {
			return upsertPlan{}, fmt.Errorf("upsert vector %q: %w", it.ID, err)
		}
		if !utf8.ValidString(it.ID) || !utf8.ValidString(it.DocID) {
			return upsertPlan{}, fmt.Errorf("upsert vector %q of document %q: not valid UTF-8", it.ID, it.DocID)
		}
		unit, err := l.unitVector(it.Vector)
		if err != nil {
			return upsertPlan{}, fmt.Errorf("upsert vector %s/%s/%s: %w", it.Namespace, it.Kind, it.ID, err)
		}
		p := partition{it.Namespace, it.Kind}
		if d, ok := plan.dims[p]; ok && d != len(unit) {
			return upsertPlan{}, fmt.Errorf("upsert vector %s/%s/%s: dimension %d, batch has %d", it.Namespace, it.Kind, it.ID, len(unit), d)
		}
		plan.dims[p] = len(unit)

		name := l.collection(it.Kind, len(unit))
		point := &qdrant.PointStruct{
			Id:      qdrant.NewIDUUID(pointID(it.Namespace, it.ID)),
			Vectors: qdrant.NewVectorsDense(unit),
			Payload: map[string]*qdrant.Value{
				payloadNamespace: qdrant.NewValueString(it.Namespace),
				payloadDocID:     qdrant.NewValueString(it.DocID),
				payloadID:        qdrant.NewValueString(it.ID),
			},
		}
		k := key{it.Namespace, it.Kind, it.ID}
		if i, ok := slot[k]; ok {
			byCollection[name][i] = point
			continue
		}
		if _, ok := byCollection[name]; !ok {
			plan.collections = append(plan.collections, collectionSpec{name: name, dim: len(unit)})
		}
		slot[k] = len(byCollection[name])
		byCollection[name] = append(byCollection[name], point)
	}
	slices.SortFunc(plan.collections, func(a, b collectionSpec) int { return strings.Compare(a.name, b.name) })
	for _, c := range plan.collections {
		for batch := range slices.Chunk(byCollection[c.name], batchSize) {
			plan.requests = append(plan.requests, &qdrant.UpsertPoints{
				CollectionName: c.name,
				Wait:           qdrant.PtrOf(true),
				Points:         batch,
			})
		}
	}
	return plan, nil
}

// searchRequest validates q and builds its query.
func (l layout) searchRequest(q vector.Query) (*qdrant.QueryPoints, error) {
	if q.TopK < 1 {
		return nil, fmt.Errorf("search %s/%s: TopK %d, want at least 1", q.Namespace, q.Kind, q.TopK)
	}
	if err := checkLabels(q.Namespace, q.Kind); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if !utf8.ValidString(q.DocID) {
		return nil, fmt.Errorf("search %s/%s: document id %q is not valid UTF-8", q.Namespace, q.Kind, q.DocID)
	}
	unit, err := l.unitVector(q.Vector)
	if err != nil {
		return nil, fmt.Errorf("search %s/%s: query %w", q.Namespace, q.Kind, err)
	}
	req := &qdrant.QueryPoints{
		CollectionName: l.collection(q.Kind, len(unit)),
		Query:          qdrant.NewQueryDense(unit),
		Filter:         namespaceFilter(q.Namespace, q.DocID),
		Limit:          qdrant.PtrOf(uint64(q.TopK)),
		WithPayload:    qdrant.NewWithPayloadInclude(payloadID, payloadDocID),
	}
	if q.Exact {
		req.Params = &qdrant.SearchParams{Exact: qdrant.PtrOf(true)}
	}
	return req, nil
}

// unitVector returns v scaled to unit length, rejecting vectors that have no
// direction (empty or zero), that would poison every score (NaN, Inf) or that
// the layout's fixed dimension rules out.
func (l layout) unitVector(v []float32) ([]float32, error) {
	if len(v) == 0 {
		return nil, errors.New("vector is empty")
	}
	if l.dim != 0 && len(v) != l.dim {
		return nil, fmt.Errorf("vector dimension %d, store is configured for %d", len(v), l.dim)
	}
	var sumSquares float64
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("vector component %d is %v", i, x)
		}
		sumSquares += f * f
	}
	if sumSquares == 0 {
		return nil, errors.New("vector is zero")
	}
	norm := math.Sqrt(sumSquares)
	unit := make([]float32, len(v))
	for i, x := range v {
		unit[i] = float32(float64(x) / norm)
	}
	return unit, nil
}

// pointID derives the Qdrant point id of (namespace, id). The namespace is
// length-prefixed so that no two pairs share an input, whatever they contain.
func pointID(namespace, id string) string {
	name := strconv.Itoa(len(namespace)) + ":" + namespace + id
	return uuid.NewSHA1(uuid.MustParse(pointIDSpace), []byte(name)).String()
}

// namespaceFilter matches namespace's points, only docID's when it is set.
func namespaceFilter(namespace, docID string) *qdrant.Filter {
	must := []*qdrant.Condition{qdrant.NewMatchKeyword(payloadNamespace, namespace)}
	if docID != "" {
		must = append(must, qdrant.NewMatchKeyword(payloadDocID, docID))
	}
	return &qdrant.Filter{Must: must}
}

func deleteRequest(collection, namespace, docID string) *qdrant.DeletePoints {
	return &qdrant.DeletePoints{
		CollectionName: collection,
		Wait:           qdrant.PtrOf(true),
		Points:         qdrant.NewPointsSelectorFilter(namespaceFilter(namespace, docID)),
	}
}

func countRequest(collection, namespace string) *qdrant.CountPoints {
	return &qdrant.CountPoints{
		CollectionName: collection,
		Filter:         namespaceFilter(namespace, ""),
		Exact:          qdrant.PtrOf(true),
	}
}

func createCollectionRequest(c collectionSpec) *qdrant.CreateCollection {
	return &qdrant.CreateCollection{
		CollectionName: c.name,
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
			Size:     uint64(c.dim),
			Distance: qdrant.Distance_Cosine,
		}),
	}
}

// fieldIndexRequests index the payload fields every filter uses. The
// namespace index is a tenant index, which Qdrant uses to co-locate each
// namespace's points.
func fieldIndexRequests(collection string) []*qdrant.CreateFieldIndexCollection {
	return []*qdrant.CreateFieldIndexCollection{
		{
			CollectionName:   collection,
			Wait:             qdrant.PtrOf(true),
			FieldName:        payloadNamespace,
			FieldType:        qdrant.FieldType_FieldTypeKeyword.Enum(),
			FieldIndexParams: qdrant.NewPayloadIndexParamsKeyword(&qdrant.KeywordIndexParams{IsTenant: qdrant.PtrOf(true)}),
		},
		{
			CollectionName: collection,
			Wait:           qdrant.PtrOf(true),
			FieldName:      payloadDocID,
			FieldType:      qdrant.FieldType_FieldTypeKeyword.Enum(),
		},
	}
}

// hitsFromPoints converts scored points, keeping Qdrant's order (best first).
func hitsFromPoints(points []*qdrant.ScoredPoint) ([]vector.Hit, error) {
	hits := make([]vector.Hit, 0, len(points))
	for _, p := range points {
		id, ok := p.GetPayload()[payloadID]
		if !ok {
			return nil, fmt.Errorf("point %s has no %q payload", p.GetId().GetUuid(), payloadID)
		}
		hits = append(hits, vector.Hit{
			ID:    id.GetStringValue(),
			DocID: p.GetPayload()[payloadDocID].GetStringValue(),
			Score: p.GetScore(),
		})
	}
	return hits, nil
}

// checkLabels validates the namespace and kind of a request: both required,
// the kind usable in a collection name, the namespace valid UTF-8 (protobuf
// strings must be).
func checkLabels(namespace, kind string) error {
	if namespace == "" || kind == "" {
		return fmt.Errorf("namespace %q and kind %q are required", namespace, kind)
	}
	if !utf8.ValidString(namespace) {
		return fmt.Errorf("namespace %q is not valid UTF-8", namespace)
	}
	if !isName(kind) {
		return fmt.Errorf("kind %q: want letters, digits, '_' and '-' only", kind)
	}
	return nil
}

// isName reports whether s is safe inside a Qdrant collection name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

type address struct {
	host string
	port int
	tls  bool
}

// parseAddress accepts "http://host[:port]", "https://host[:port]" and
// "host[:port]"; the port defaults to Qdrant's gRPC port.
func parseAddress(raw string) (address, error) {
	if raw == "" {
		return address{}, errors.New("qdrant URL is empty")
	}
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "http://" + raw
	}
	u, err := url.Parse(withScheme)
	if err != nil {
		return address{}, fmt.Errorf("qdrant URL %q: %w", raw, err)
	}
	var a address
	switch u.Scheme {
	case "http":
	case "https":
		a.tls = true
	default:
		return address{}, fmt.Errorf("qdrant URL %q: scheme %q, want http or https", raw, u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return address{}, fmt.Errorf("qdrant URL %q: want only a host and port", raw)
	}
	a.host = u.Hostname()
	if a.host == "" {
		return address{}, fmt.Errorf("qdrant URL %q: no host", raw)
	}
	// The client joins host and port with a bare colon, so an IPv6 literal
	// needs its brackets back.
	if strings.Contains(a.host, ":") {
		a.host = "[" + a.host + "]"
	}
	a.port = defaultPort
	if p := u.Port(); p != "" {
		a.port, err = strconv.Atoi(p)
		if err != nil || a.port < 1 || a.port > 65535 {
			return address{}, fmt.Errorf("qdrant URL %q: invalid port %q", raw, p)
		}
	}
	return a, nil
}

// Store is a vector.Store.
var _ vector.Store = (*Store)(nil)
