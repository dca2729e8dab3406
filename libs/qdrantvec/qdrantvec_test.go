package qdrantvec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/qdrant/go-client/qdrant"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kgraph-dev/kgraph/libs/vector"
	"github.com/kgraph-dev/kgraph/libs/vector/vectortest"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		raw  string
		want address
	}{
		{"http://qdrant:6334", address{host: "qdrant", port: 6334}},
		{"https://qdrant.example.com:7000", address{host: "qdrant.example.com", port: 7000, tls: true}},
		{"https://qdrant.example.com", address{host: "qdrant.example.com", port: 6334, tls: true}},
		{"http://127.0.0.1:1234/", address{host: "127.0.0.1", port: 1234}},
		{"localhost:6335", address{host: "localhost", port: 6335}},
		{"localhost", address{host: "localhost", port: 6334}},
		{"http://[::1]:6334", address{host: "[::1]", port: 6334}},
		{"[::1]:9", address{host: "[::1]", port: 9}},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := parseAddress(tc.raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	for _, raw := range []string{
		"",
		"grpc://qdrant:6334",
		"http://qdrant:notaport",
		"http://qdrant:70000",
		"http://qdrant:0",
		"http://:6334",
		"http://qdrant:6334/collections",
		"http://user:pw@qdrant:6334",
		"http://qdrant:6334?api-key=x",
	} {
		t.Run("invalid "+raw, func(t *testing.T) {
			_, err := parseAddress(raw)
			require.Error(t, err)
		})
	}
}

func TestNewLayout(t *testing.T) {
	l, err := newLayout("", 0)
	require.NoError(t, err)
	require.Equal(t, layout{prefix: DefaultCollectionPrefix}, l)

	l, err = newLayout("tenant-x_", 768)
	require.NoError(t, err)
	require.Equal(t, layout{prefix: "tenant-x_", dim: 768}, l)

	for _, prefix := range []string{"bad/prefix", "sp ace", "dots.", "ünï"} {
		_, err := newLayout(prefix, 0)
		require.Error(t, err, "prefix %q", prefix)
	}
	_, err = newLayout("", -1)
	require.Error(t, err)
}

func TestCollectionNames(t *testing.T) {
	l := layout{prefix: "kgraph_"}
	require.Equal(t, "kgraph_chunk_768", l.collection("chunk", 768))

	for _, tc := range []struct {
		kind string
		dim  int
	}{{"chunk", 768}, {"entity", 2}, {"entity_v2", 3}, {"re-port", 1536}, {"chunk_1", 1}} {
		kind, dim, ok := l.parseCollection(l.collection(tc.kind, tc.dim))
		require.True(t, ok, "%s/%d", tc.kind, tc.dim)
		require.Equal(t, tc.kind, kind)
		require.Equal(t, tc.dim, dim)
	}

	for _, name := range []string{
		"other_chunk_768",  // another prefix
		"kgraph_chunk",     // no dimension
		"kgraph_chunk_",    // empty dimension
		"kgraph_chunk_0",   // no vector has dimension 0
		"kgraph_chunk_007", // not how collection spells 7
		"kgraph_chunk_-3",
		"kgraph__5", // empty kind
		"kgraph_a.b_5",
	} {
		_, _, ok := l.parseCollection(name)
		require.False(t, ok, name)
	}
}

func TestPointID(t *testing.T) {
	id := pointID("tenant-a", "chunk-1")
	require.Equal(t, id, pointID("tenant-a", "chunk-1"), "ids must be deterministic for idempotent upserts")
	parsed, err := uuid.Parse(id)
	require.NoError(t, err)
	require.Equal(t, uuid.Version(5), parsed.Version())
	require.Equal(t, uuid.RFC4122, parsed.Variant())

	distinct := map[string][2]string{}
	for _, pair := range [][2]string{
		{"tenant-a", "chunk-1"},
		{"tenant-b", "chunk-1"},
		{"tenant-a", "chunk-2"},
		// Pairs whose plain concatenations coincide.
		{"ab", "c"},
		{"a", "bc"},
		{"a\x1fb", "c"},
		{"a", "b\x1fc"},
		{"1:a", "b"},
		{"1", ":ab"},
	} {
		id := pointID(pair[0], pair[1])
		prev, dup := distinct[id]
		require.False(t, dup, "%q and %q share point id %s", pair, prev, id)
		distinct[id] = pair
	}
}

func TestPlanUpsertBuildsPoints(t *testing.T) {
	l := layout{prefix: "p_"}
	plan, err := l.planUpsert([]vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "c1", DocID: "doc-1", Vector: []float32{3, 4}},
		{Namespace: "ns", Kind: "entity", ID: "e1", Vector: []float32{0, 0, -2}},
	}, upsertBatchSize)
	require.NoError(t, err)

	require.Equal(t, []collectionSpec{{name: "p_chunk_2", dim: 2}, {name: "p_entity_3", dim: 3}}, plan.collections)
	require.Equal(t, map[partition]int{{"ns", "chunk"}: 2, {"ns", "entity"}: 3}, plan.dims)
	require.Len(t, plan.requests, 2)

	chunk := plan.requests[0]
	require.Equal(t, "p_chunk_2", chunk.GetCollectionName())
	require.True(t, chunk.GetWait(), "writes must wait so that a following read sees them")
	require.Len(t, chunk.GetPoints(), 1)
	p := chunk.GetPoints()[0]
	require.Equal(t, pointID("ns", "c1"), p.GetId().GetUuid())
	require.InDeltaSlice(t, []float32{0.6, 0.8}, denseData(p), 1e-7, "vectors are sent at unit length")
	require.Equal(t, map[string]string{"namespace": "ns", "doc_id": "doc-1", "id": "c1"}, payloadStrings(t, p.GetPayload()))

	entity := plan.requests[1]
	require.Equal(t, "p_entity_3", entity.GetCollectionName())
	require.True(t, entity.GetWait())
	e := entity.GetPoints()[0]
	require.Equal(t, pointID("ns", "e1"), e.GetId().GetUuid())
	require.InDeltaSlice(t, []float32{0, 0, -1}, denseData(e), 1e-7)
	require.Equal(t, map[string]string{"namespace": "ns", "doc_id": "", "id": "e1"}, payloadStrings(t, e.GetPayload()))
}

func TestPlanUpsertNormalisesExtremeVectors(t *testing.T) {
	// Squares of these overflow or underflow float32; Qdrant normalises in
	// float32, so the store must send unit vectors already.
	plan, err := layout{prefix: "p_"}.planUpsert([]vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "huge", Vector: []float32{3e30, 4e30}},
		{Namespace: "ns", Kind: "chunk", ID: "tiny", Vector: []float32{3e-30, -4e-30}},
	}, upsertBatchSize)
	require.NoError(t, err)
	points := plan.requests[0].GetPoints()
	require.InDeltaSlice(t, []float32{0.6, 0.8}, denseData(points[0]), 1e-7)
	require.InDeltaSlice(t, []float32{0.6, -0.8}, denseData(points[1]), 1e-7)
}

func TestPlanUpsertBatchesPerCollection(t *testing.T) {
	const batchSize = 3
	var items []vector.Item
	for i := range 7 {
		items = append(items, vector.Item{Namespace: "ns", Kind: "chunk", ID: fmt.Sprintf("c%d", i), Vector: []float32{1, float32(i)}})
	}
	for i := range batchSize {
		items = append(items, vector.Item{Namespace: "ns", Kind: "entity", ID: fmt.Sprintf("e%d", i), Vector: []float32{1, float32(i)}})
	}
	// Another namespace of the same kind and dimension shares the collection.
	items = append(items, vector.Item{Namespace: "other", Kind: "chunk", ID: "c0", Vector: []float32{2, 1}})

	plan, err := layout{prefix: "p_"}.planUpsert(items, batchSize)
	require.NoError(t, err)

	var got []string
	seen := map[string]bool{}
	for _, req := range plan.requests {
		require.LessOrEqual(t, len(req.GetPoints()), batchSize)
		got = append(got, fmt.Sprintf("%s:%d", req.GetCollectionName(), len(req.GetPoints())))
		for _, p := range req.GetPoints() {
			require.False(t, seen[p.GetId().GetUuid()], "point sent twice")
			seen[p.GetId().GetUuid()] = true
		}
	}
	require.Equal(t, []string{"p_chunk_2:3", "p_chunk_2:3", "p_chunk_2:2", "p_entity_2:3"}, got)
	require.Len(t, seen, len(items))
}

func TestPlanUpsertLaterDuplicateWins(t *testing.T) {
	plan, err := layout{prefix: "p_"}.planUpsert([]vector.Item{
		{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "old", Vector: []float32{1, 0}},
		{Namespace: "ns", Kind: "chunk", ID: "b", DocID: "old", Vector: []float32{1, 1}},
		{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "new", Vector: []float32{0, 5}},
		// The same id in another namespace or kind is another item.
		{Namespace: "ns2", Kind: "chunk", ID: "a", DocID: "x", Vector: []float32{1, 0}},
		{Namespace: "ns", Kind: "entity", ID: "a", DocID: "y", Vector: []float32{1, 0}},
	}, upsertBatchSize)
	require.NoError(t, err)
	require.Len(t, plan.requests, 2)

	chunks := plan.requests[0].GetPoints()
	require.Len(t, chunks, 3)
	require.Equal(t, pointID("ns", "a"), chunks[0].GetId().GetUuid())
	require.Equal(t, "new", chunks[0].GetPayload()["doc_id"].GetStringValue())
	require.InDeltaSlice(t, []float32{0, 1}, denseData(chunks[0]), 1e-7)
	require.Equal(t, pointID("ns", "b"), chunks[1].GetId().GetUuid())
	require.Equal(t, pointID("ns2", "a"), chunks[2].GetId().GetUuid())

	entities := plan.requests[1].GetPoints()
	require.Len(t, entities, 1)
	require.Equal(t, "y", entities[0].GetPayload()["doc_id"].GetStringValue())
}

func TestPlanUpsertEmpty(t *testing.T) {
	plan, err := layout{prefix: "p_"}.planUpsert(nil, upsertBatchSize)
	require.NoError(t, err)
	require.Empty(t, plan.requests)
	require.Empty(t, plan.collections)
}

func TestPlanUpsertRejectsInvalidBatches(t *testing.T) {
	valid := vector.Item{Namespace: "ns", Kind: "chunk", ID: "ok", DocID: "d", Vector: []float32{1, 2, 3, 4}}
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	tests := []struct {
		name string
		dim  int
		bad  vector.Item
	}{
		{"zero vector", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", Vector: []float32{0, 0, 0, 0}}},
		{"empty vector", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad"}},
		{"NaN component", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", Vector: []float32{1, nan, 0, 0}}},
		{"Inf component", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", Vector: []float32{1, inf, 0, 0}}},
		{"dimension mismatch within batch", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", Vector: []float32{1, 2, 3}}},
		{"dimension other than configured", 4, vector.Item{Namespace: "other", Kind: "chunk", ID: "bad", Vector: []float32{1, 2, 3}}},
		{"empty namespace", 0, vector.Item{Kind: "chunk", ID: "bad", Vector: []float32{1, 2, 3, 4}}},
		{"empty kind", 0, vector.Item{Namespace: "ns", ID: "bad", Vector: []float32{1, 2, 3, 4}}},
		{"empty id", 0, vector.Item{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2, 3, 4}}},
		{"kind unusable in a collection name", 0, vector.Item{Namespace: "ns", Kind: "chunk/x", ID: "bad", Vector: []float32{1, 2, 3, 4}}},
		{"namespace not UTF-8", 0, vector.Item{Namespace: "ns\xff", Kind: "chunk", ID: "bad", Vector: []float32{1, 2, 3, 4}}},
		{"id not UTF-8", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad\xff", Vector: []float32{1, 2, 3, 4}}},
		{"doc not UTF-8", 0, vector.Item{Namespace: "ns", Kind: "chunk", ID: "bad", DocID: "\xfe", Vector: []float32{1, 2, 3, 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := layout{prefix: "p_", dim: tc.dim}
			_, err := l.planUpsert([]vector.Item{valid, tc.bad}, upsertBatchSize)
			require.Error(t, err)
			_, err = l.planUpsert([]vector.Item{tc.bad, valid}, upsertBatchSize)
			require.Error(t, err, "order within the batch must not matter")
		})
	}

	t.Run("different dimensions in different namespaces", func(t *testing.T) {
		plan, err := layout{prefix: "p_"}.planUpsert([]vector.Item{
			valid,
			{Namespace: "ns2", Kind: "chunk", ID: "x", Vector: []float32{1, 2}},
			{Namespace: "ns", Kind: "entity", ID: "y", Vector: []float32{1, 2}},
		}, upsertBatchSize)
		require.NoError(t, err)
		require.Equal(t, []collectionSpec{{"p_chunk_2", 2}, {"p_chunk_4", 4}, {"p_entity_2", 2}}, plan.collections)
	})
}

func TestSearchRequest(t *testing.T) {
	l := layout{prefix: "p_"}
	req, err := l.searchRequest(vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{0, -2, 0}, TopK: 7})
	require.NoError(t, err)
	require.Equal(t, "p_chunk_3", req.GetCollectionName())
	require.InDeltaSlice(t, []float32{0, -1, 0}, req.GetQuery().GetNearest().GetDense().GetData(), 1e-7)
	require.Equal(t, uint64(7), req.GetLimit())
	require.ElementsMatch(t, []string{"id", "doc_id"}, req.GetWithPayload().GetInclude().GetFields())
	require.Nil(t, req.GetWithVectors(), "hits need no vectors")
	require.Equal(t, map[string]string{"namespace": "ns"}, mustConditions(t, req.GetFilter()))

	req, err = l.searchRequest(vector.Query{Namespace: "ns", Kind: "entity", Vector: []float32{1, 1}, TopK: 1, DocID: "doc-9"})
	require.NoError(t, err)
	require.Equal(t, "p_entity_2", req.GetCollectionName())
	require.Equal(t, map[string]string{"namespace": "ns", "doc_id": "doc-9"}, mustConditions(t, req.GetFilter()))
	require.False(t, req.GetParams().GetExact(), "the index answers unless asked otherwise")

	req, err = l.searchRequest(vector.Query{Namespace: "ns", Kind: "entity", Vector: []float32{1, 1}, TopK: 1, Exact: true})
	require.NoError(t, err)
	require.True(t, req.GetParams().GetExact(), "an exact query asks Qdrant for an exhaustive search")
}

func TestSearchRequestRejectsInvalidQueries(t *testing.T) {
	tests := []struct {
		name string
		dim  int
		q    vector.Query
	}{
		{"zero vector", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{0, 0, 0}, TopK: 1}},
		{"empty vector", 0, vector.Query{Namespace: "ns", Kind: "chunk", TopK: 1}},
		{"NaN component", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{float32(math.NaN()), 1}, TopK: 1}},
		{"Inf component", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{float32(math.Inf(1)), 1}, TopK: 1}},
		{"dimension other than configured", 3, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 1}},
		{"zero TopK", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 0}},
		{"negative TopK", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: -1}},
		{"empty namespace", 0, vector.Query{Kind: "chunk", Vector: []float32{1, 2}, TopK: 1}},
		{"empty kind", 0, vector.Query{Namespace: "ns", Vector: []float32{1, 2}, TopK: 1}},
		{"kind unusable in a collection name", 0, vector.Query{Namespace: "ns", Kind: "a b", Vector: []float32{1, 2}, TopK: 1}},
		{"doc not UTF-8", 0, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 1, DocID: "\xff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := layout{prefix: "p_", dim: tc.dim}.searchRequest(tc.q)
			require.Error(t, err)
			require.Nil(t, req)
		})
	}
}

func TestDeleteAndCountRequests(t *testing.T) {
	del := deleteRequest("p_chunk_3", "ns", "doc-1")
	require.Equal(t, "p_chunk_3", del.GetCollectionName())
	require.True(t, del.GetWait())
	require.Equal(t, map[string]string{"namespace": "ns", "doc_id": "doc-1"}, mustConditions(t, del.GetPoints().GetFilter()))
	require.Nil(t, del.GetPoints().GetPoints(), "delete selects by filter, not by ids")

	count := countRequest("p_entity_2", "tenant")
	require.Equal(t, "p_entity_2", count.GetCollectionName())
	require.True(t, count.GetExact(), "counts must be exact, not estimates")
	require.Equal(t, map[string]string{"namespace": "tenant"}, mustConditions(t, count.GetFilter()))
}

func TestCollectionSetupRequests(t *testing.T) {
	create := createCollectionRequest(collectionSpec{name: "p_chunk_768", dim: 768})
	require.Equal(t, "p_chunk_768", create.GetCollectionName())
	params := create.GetVectorsConfig().GetParams()
	require.Equal(t, uint64(768), params.GetSize())
	require.Equal(t, qdrant.Distance_Cosine, params.GetDistance())

	indexes := fieldIndexRequests("p_chunk_768")
	fields := map[string]*qdrant.CreateFieldIndexCollection{}
	for _, req := range indexes {
		require.Equal(t, "p_chunk_768", req.GetCollectionName())
		require.True(t, req.GetWait())
		require.Equal(t, qdrant.FieldType_FieldTypeKeyword, req.GetFieldType())
		fields[req.GetFieldName()] = req
	}
	require.Len(t, fields, 2)
	require.Contains(t, fields, "doc_id")
	require.True(t, fields["namespace"].GetFieldIndexParams().GetKeywordIndexParams().GetIsTenant(),
		"namespace partitions the collection, so it is a tenant index")
}

func TestHitsFromPoints(t *testing.T) {
	point := func(id, doc string, score float32) *qdrant.ScoredPoint {
		return &qdrant.ScoredPoint{
			Id:      qdrant.NewIDUUID(pointID("ns", id)),
			Payload: map[string]*qdrant.Value{"id": qdrant.NewValueString(id), "doc_id": qdrant.NewValueString(doc)},
			Score:   score,
		}
	}
	hits, err := hitsFromPoints([]*qdrant.ScoredPoint{point("b", "d1", 0.9), point("a", "", -0.5)})
	require.NoError(t, err)
	require.Equal(t, []vector.Hit{{ID: "b", DocID: "d1", Score: 0.9}, {ID: "a", Score: -0.5}}, hits)

	hits, err = hitsFromPoints(nil)
	require.NoError(t, err)
	require.Empty(t, hits)

	_, err = hitsFromPoints([]*qdrant.ScoredPoint{{Id: qdrant.NewIDUUID(pointID("ns", "x")), Score: 1}})
	require.Error(t, err, "a point without the id payload was not written by this store")
}

func TestIsNotFound(t *testing.T) {
	require.True(t, isNotFound(fmt.Errorf("query: %w", status.Error(codes.NotFound, "Collection `x` doesn't exist!"))))
	require.False(t, isNotFound(fmt.Errorf("query: %w", status.Error(codes.Unavailable, "connection refused"))))
	require.False(t, isNotFound(errors.New("not a gRPC error")))
	require.False(t, isNotFound(nil))
}

// TestValidationPrecedesRequests gives the store no client: any request
// would panic, so an error proves the call was rejected before reaching the
// server.
func TestValidationPrecedesRequests(t *testing.T) {
	s := &Store{layout: layout{prefix: "p_"}, ensured: map[string]bool{}}
	ctx := t.Context()

	require.NotPanics(t, func() {
		require.NoError(t, s.Upsert(ctx, nil), "an empty batch sends nothing")
		require.Error(t, s.Upsert(ctx, []vector.Item{
			{Namespace: "ns", Kind: "chunk", ID: "a", Vector: []float32{1, 2}},
			{Namespace: "ns", Kind: "chunk", ID: "b", Vector: []float32{0, 0}},
		}))
		require.Error(t, s.Upsert(ctx, []vector.Item{
			{Namespace: "ns", Kind: "chunk", ID: "a", Vector: []float32{1, 2}},
			{Namespace: "ns", Kind: "chunk", ID: "b", Vector: []float32{1, 2, 3}},
		}))
		hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{1, 2}, TopK: 0})
		require.Error(t, err)
		require.Empty(t, hits)
		hits, err = s.Search(ctx, vector.Query{Namespace: "ns", Kind: "chunk", Vector: []float32{0, 0}, TopK: 3})
		require.Error(t, err)
		require.Empty(t, hits)
		require.Error(t, s.DeleteDocument(ctx, "ns", ""))
		require.Error(t, s.DeleteDocument(ctx, "", "doc"))
		_, err = s.Count(ctx, "", "chunk")
		require.Error(t, err)
	})
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "ftp://qdrant:6334"},
		{URL: "qdrant:6334", CollectionPrefix: "no/slashes"},
		{URL: "qdrant:6334", Dim: -1},
	} {
		_, err := Open(t.Context(), cfg)
		require.Error(t, err, "%+v", cfg)
	}
}

func TestOpenFailsWithoutServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URL: "http://" + addr})
	require.Error(t, err)
	require.Nil(t, s)
	require.NoError(t, ctx.Err(), "Open must report the refused connection, not wait for the deadline")
}

// TestContract runs the shared vector store suite against a real server.
func TestContract(t *testing.T) {
	url := os.Getenv("QDRANT_URL")
	if url == "" {
		t.Skip("QDRANT_URL is not set: the Qdrant contract suite needs a Qdrant server (docker run -p 6334:6334 qdrant/qdrant:v1.19.0)")
	}
	apiKey := os.Getenv("QDRANT_API_KEY")
	vectortest.Run(t, func(t *testing.T) vector.Store {
		cfg := Config{URL: url, APIKey: apiKey, CollectionPrefix: "kgtest_" + randomHex(t) + "_"}
		s, err := Open(t.Context(), cfg)
		require.NoError(t, err)
		// Registered before the suite's Close, so it runs after it with a
		// connection of its own.
		t.Cleanup(func() { dropCollections(t, cfg) })
		return s
	})

	t.Run("FixedDimension", func(t *testing.T) {
		cfg := Config{URL: url, APIKey: apiKey, CollectionPrefix: "kgtest_" + randomHex(t) + "_", Dim: 3}
		s, err := Open(t.Context(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { dropCollections(t, cfg) })
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		ctx := t.Context()

		require.Error(t, s.Upsert(ctx, []vector.Item{{Namespace: "ns", Kind: "chunk", ID: "a", Vector: []float32{1, 2}}}))
		require.NoError(t, s.Upsert(ctx, []vector.Item{
			{Namespace: "ns", Kind: "chunk", ID: "a", DocID: "d", Vector: []float32{1, 2, 3}},
			{Namespace: "ns", Kind: "report", ID: "r", DocID: "d", Vector: []float32{3, 2, 1}},
		}))
		n, err := s.Count(ctx, "ns", "chunk")
		require.NoError(t, err)
		require.Equal(t, 1, n)
		hits, err := s.Search(ctx, vector.Query{Namespace: "ns", Kind: "report", Vector: []float32{3, 2, 1}, TopK: 5})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		require.Equal(t, "r", hits[0].ID)
		require.InDelta(t, 1, hits[0].Score, 1e-4)
		require.NoError(t, s.DeleteDocument(ctx, "ns", "d"))
		n, err = s.Count(ctx, "ns", "report")
		require.NoError(t, err)
		require.Zero(t, n)
		require.NoError(t, s.Ping(ctx))
	})
}

func dropCollections(t *testing.T, cfg Config) {
	t.Helper()
	// t.Context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	names, err := s.client.ListCollections(ctx)
	require.NoError(t, err)
	for _, name := range names {
		if strings.HasPrefix(name, cfg.CollectionPrefix) {
			require.NoError(t, s.client.DeleteCollection(ctx, name), "drop %s", name)
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func denseData(p *qdrant.PointStruct) []float32 {
	return p.GetVectors().GetVector().GetDense().GetData()
}

func payloadStrings(t *testing.T, payload map[string]*qdrant.Value) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range payload {
		s, ok := v.GetKind().(*qdrant.Value_StringValue)
		require.True(t, ok, "payload %q is %T, want a string", k, v.GetKind())
		out[k] = s.StringValue
	}
	return out
}

// mustConditions returns the keyword matches of a filter made only of "must"
// keyword conditions, failing on anything else so that an extra condition
// cannot slip by.
func mustConditions(t *testing.T, f *qdrant.Filter) map[string]string {
	t.Helper()
	require.NotNil(t, f)
	require.Empty(t, f.GetShould())
	require.Empty(t, f.GetMustNot())
	require.Nil(t, f.GetMinShould())
	out := map[string]string{}
	for _, c := range f.GetMust() {
		field := c.GetField()
		require.NotNil(t, field, "condition %v is not a field condition", c)
		kw, ok := field.GetMatch().GetMatchValue().(*qdrant.Match_Keyword)
		require.True(t, ok, "condition on %s is not a keyword match", field.GetKey())
		_, dup := out[field.GetKey()]
		require.False(t, dup, "two conditions on %s", field.GetKey())
		out[field.GetKey()] = kw.Keyword
	}
	return out
}
