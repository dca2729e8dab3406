package qdrantvec

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/qdrant/go-client/qdrant"

	"github.com/kgraph-dev/kgraph/libs/vector"
)

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

// unitVector returns v scaled to unit length (vector.Unit), also
// rejecting a dimension the layout's fixed dimension rules out.
func (l layout) unitVector(v []float32) ([]float32, error) {
	if l.dim != 0 && len(v) != 0 && len(v) != l.dim {
		return nil, fmt.Errorf("vector dimension %d, store is configured for %d", len(v), l.dim)
	}
	return vector.Unit(v)
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
