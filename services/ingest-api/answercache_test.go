package ingestapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
)

// answerCacheEdge is an edge whose query service counts the questions it
// gets, with the graph-change watch running on a real NATS server.
func answerCacheEdge(t *testing.T, cfg ingestapi.Config) (*edge, *nats.Conn, *atomic.Int32) {
	t.Helper()
	edgeNC, publisher := natsPair(t)
	asked := &atomic.Int32{}
	e := newEdgeWith(t, cfg, func(d *ingestapi.Deps) {})
	e.query.reply = func(_ context.Context, m *nats.Msg) (*nats.Msg, error) {
		n := asked.Add(1)
		var req events.QueryRequest
		require.NoError(t, json.Unmarshal(m.Data, &req))
		data, err := json.Marshal(events.QueryResponse{Answer: "answer " + string(rune('0'+n)), Mode: req.Mode})
		require.NoError(t, err)
		return &nats.Msg{Data: data}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.WatchGraphChanges(ctx, edgeNC) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	// The watch is up once a change is seen: publish until one is.
	require.Eventually(t, func() bool {
		if _, ok := askNow(t, e, "warm-up", "ns0"); !ok {
			return false
		}
		before := asked.Load()
		_, ok := askNow(t, e, "warm-up", "ns0")
		return ok && asked.Load() == before // else not cached yet: the watch is not running
	}, 5*time.Second, 10*time.Millisecond)
	return e, publisher, asked
}

func ask(t *testing.T, e *edge, question, ns string) map[string]any {
	t.Helper()
	r := e.do(t, "POST", "/api/v1/query", `{"question":"`+question+`","namespace":"`+ns+`","mode":"local"}`)
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	return r.json(t)
}

// askNow asks without failing the test, for conditions that Eventually
// polls from another goroutine; ok is false unless the answer is a 200
// with a JSON body.
func askNow(t *testing.T, e *edge, question, ns string) (map[string]any, bool) {
	r := e.do(t, "POST", "/api/v1/query", `{"question":"`+question+`","namespace":"`+ns+`","mode":"local"}`)
	return decodedOK(r)
}

// decodedOK is r's JSON body if r is a 200 with one.
func decodedOK(r response) (map[string]any, bool) {
	var m map[string]any
	if r.status != http.StatusOK || json.Unmarshal(r.raw, &m) != nil {
		return nil, false
	}
	return m, true
}

func publishChange(t *testing.T, nc *nats.Conn, typ events.Type, ns string) {
	t.Helper()
	subject, err := events.SubjectOf(typ)
	require.NoError(t, err)
	require.NoError(t, nc.Publish(subject, []byte(`{"job_id":"j","doc_id":"d","namespace":"`+ns+`"}`)))
	require.NoError(t, nc.Flush())
}

func TestEdgeAnswerCache(t *testing.T) {
	e, publisher, asked := answerCacheEdge(t, ingestapi.Config{})
	first := ask(t, e, "who?", "books")
	require.Equal(t, false, first["cached"])
	n := asked.Load()
	again := ask(t, e, "who?", "books")
	require.Equal(t, true, again["cached"])
	require.Equal(t, first["answer"], again["answer"])
	// The answer sent from the edge's cache is the same answer, marked
	// cached, with its own latency.
	require.Len(t, again, len(first))
	for k, v := range first {
		if k != "cached" && k != "latency_ms" {
			require.Equal(t, v, again[k], k)
		}
	}
	require.GreaterOrEqual(t, again["latency_ms"].(float64), 0.0)
	require.Less(t, again["latency_ms"].(float64), 60_000.0)
	require.Equal(t, n, asked.Load(), "a repeated question is answered by the edge")

	// Other parameters are another question.
	r := e.do(t, "POST", "/api/v1/query", `{"question":"who?","namespace":"books","mode":"naive"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, n+1, asked.Load())
	// no_cache goes to the query service.
	e.do(t, "POST", "/api/v1/query", `{"question":"who?","namespace":"books","mode":"local","no_cache":true}`)
	require.Equal(t, n+2, asked.Load())

	// A change in another namespace keeps the answer; one in this
	// namespace drops it, whichever kind of change.
	for _, typ := range []events.Type{events.TypeChunkMerged, events.TypeChunkIndexed, events.TypeDocumentUnmerged,
		events.TypeDocumentUnindexed, events.TypeCommunitiesUpdated} {
		publishChange(t, publisher, typ, "films")
		time.Sleep(20 * time.Millisecond)
		before := asked.Load()
		require.Equal(t, true, ask(t, e, "who?", "books")["cached"], typ)
		require.Equal(t, before, asked.Load())
		publishChange(t, publisher, typ, "books")
		require.Eventually(t, func() bool {
			m, ok := askNow(t, e, "who?", "books")
			return ok && m["cached"] == false
		}, 5*time.Second, 10*time.Millisecond, "%s in the namespace drops its answers", typ)
	}
}

func TestEdgeAnswerCacheExpires(t *testing.T) {
	e, _, asked := answerCacheEdge(t, ingestapi.Config{AnswerCacheTTL: 200 * time.Millisecond})
	ask(t, e, "when?", "books")
	require.Equal(t, true, ask(t, e, "when?", "books")["cached"])
	n := asked.Load()
	time.Sleep(250 * time.Millisecond)
	require.Equal(t, false, ask(t, e, "when?", "books")["cached"])
	require.Equal(t, n+1, asked.Load())
}

func TestEdgeAnswerCacheOffWithoutTheWatch(t *testing.T) {
	e := newEdge(t, ingestapi.Config{})
	asked := 0
	e.query.reply = func(context.Context, *nats.Msg) (*nats.Msg, error) {
		asked++
		return &nats.Msg{Data: []byte(`{"answer":"a","mode":"local"}`)}, nil
	}
	ask(t, e, "q", "books")
	ask(t, e, "q", "books")
	require.Equal(t, 2, asked, "without the change watch the edge never serves answers of its own")
}

// A key of another namespace never gets a cached answer: authorization
// comes before the cache.
func TestEdgeAnswerCacheKeepsNamespacesApart(t *testing.T) {
	cfg := keyedConfig()
	edgeNC, _ := natsPair(t)
	e := newEdgeWith(t, cfg, func(d *ingestapi.Deps) {})
	e.query.reply = queryReply(t, events.QueryResponse{Answer: "secret of b", Mode: "local"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.WatchGraphChanges(ctx, edgeNC) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	body := `{"question":"q","namespace":"b","mode":"local"}`
	require.Eventually(t, func() bool {
		m, ok := decodedOK(e.as(t, secretReader, "POST", "/api/v1/query", body))
		return ok && m["cached"] == true
	}, 5*time.Second, 10*time.Millisecond)
	e.as(t, secretWriter, "POST", "/api/v1/query", body).requireProblem(t, http.StatusForbidden)
}
