package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/natsembed"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
	"github.com/kgraph-dev/kgraph/services/query"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const embedDim = 256

// Chunk ids are 32 hex digits, as the chunker makes them.
var (
	chunkAda     = strings.Repeat("a", 32)
	chunkEngine  = strings.Repeat("b", 32)
	chunkWeather = strings.Repeat("c", 32)
)

// corpus is what the graph writer and vector indexer would have stored for
// two documents in namespace "books".
func corpus() []graph.ChunkGraph {
	ada := events.Entity{Name: "Ada Lovelace", Type: "PERSON", Description: "English mathematician.\nWrote notes on the engine."}
	babbage := events.Entity{Name: "Charles Babbage", Type: "PERSON", Description: "Inventor of calculating machines."}
	engine := events.Entity{Name: "Analytical Engine", Type: "MACHINE", Description: "A proposed mechanical computer."}
	return []graph.ChunkGraph{
		{Namespace: "books", DocID: "lovelace", JobID: "job_1", ChunkID: chunkAda, Index: 0, Tokens: 30,
			Text:     "Ada Lovelace wrote the first computer program. She worked with Charles Babbage on the Analytical Engine.",
			Entities: []events.Entity{ada, babbage, engine},
			Relations: []events.Relation{
				{Source: "Ada Lovelace", Target: "Charles Babbage", Description: "worked with", Weight: 2},
				{Source: "Ada Lovelace", Target: "Analytical Engine", Description: "wrote a program for", Weight: 1},
			}},
		{Namespace: "books", DocID: "lovelace", JobID: "job_1", ChunkID: chunkEngine, Index: 1, Tokens: 20,
			Text:     "The Analytical Engine was never finished. Babbage kept redesigning it!",
			Entities: []events.Entity{babbage, engine},
			Relations: []events.Relation{
				{Source: "Charles Babbage", Target: "Analytical Engine", Description: "designed", Weight: 3},
			}},
		{Namespace: "books", DocID: "weather", JobID: "job_2", ChunkID: chunkWeather, Index: 0, Tokens: 15,
			Text: "Rain fell over London all week. The Thames rose quickly.",
			Entities: []events.Entity{
				{Name: "London", Type: "PLACE", Description: "A city."},
				{Name: "Thames", Type: "RIVER", Description: "A river."},
			},
			Relations: []events.Relation{{Source: "Thames", Target: "London", Description: "flows through", Weight: 1}}},
	}
}

type stores struct {
	embed   *hashembed.Embedder
	vectors *sqlitevec.Store
	graph   *sqlitegraph.Store
}

// newStores opens real stores in a temporary directory and indexes the
// corpus as the graph writer and the vector indexer do.
func newStores(t *testing.T) stores {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	g, err := sqlitegraph.Open(ctx, filepath.Join(dir, "graph.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Close()) })
	v, err := sqlitevec.Open(ctx, filepath.Join(dir, "vectors.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, v.Close()) })
	s := stores{embed: hashembed.New(embedDim), vectors: v, graph: g}
	for _, c := range corpus() {
		_, err := g.MergeChunk(ctx, c)
		require.NoError(t, err)
		texts := []string{c.Text}
		items := []vector.Item{{Namespace: c.Namespace, Kind: query.KindChunk, ID: c.ChunkID, DocID: c.DocID}}
		for _, e := range c.Entities {
			key := events.EntityKey(e.Name)
			texts = append(texts, key)
			items = append(items, vector.Item{Namespace: c.Namespace, Kind: query.KindEntity, ID: key})
		}
		vecs, err := s.embed.Embed(ctx, texts)
		require.NoError(t, err)
		for i := range items {
			items[i].Vector = vecs[i]
		}
		require.NoError(t, v.Upsert(ctx, items))
	}
	return s
}

func (s stores) service(cfg query.Config, nc *nats.Conn) *query.Service {
	return query.New(cfg, nc, discardLogger(), s.embed, s.vectors, s.graph)
}

// search runs the search the service should run, to compare with.
func (s stores) search(t *testing.T, ns, kind, question string, topK int) []vector.Hit {
	t.Helper()
	vecs, err := s.embed.Embed(context.Background(), []string{question})
	require.NoError(t, err)
	hits, err := s.vectors.Search(context.Background(), vector.Query{Namespace: ns, Kind: kind, Vector: vecs[0], TopK: topK})
	require.NoError(t, err)
	return hits
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// passages returns the "Most relevant passages" lines of an extractive answer.
func passages(answer string) []string {
	_, after, ok := strings.Cut(answer, "\nMost relevant passages:")
	if !ok {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimPrefix(after, "\n"), "\n") {
		out = append(out, strings.TrimPrefix(line, "- "))
	}
	return out
}

func TestNaive(t *testing.T) {
	s := newStores(t)
	svc := s.service(query.Config{}, nil)
	question := "Who wrote the first computer program?"
	res, err := svc.Answer(context.Background(), events.QueryRequest{Question: question, Mode: events.ModeNaive, Namespace: "books", TopK: 2})
	require.NoError(t, err)
	require.Equal(t, events.ModeNaive, res.Mode)
	require.Equal(t, "extractive", res.Answerer)

	hits := s.search(t, "books", query.KindChunk, question, 2)
	require.Len(t, hits, 2)
	require.Equal(t, chunkAda, hits[0].ID, "the corpus should make the Ada chunk the best match")
	want := make([]events.ChunkRef, len(hits))
	index := map[string]int{chunkAda: 0, chunkEngine: 1, chunkWeather: 0}
	for i, h := range hits {
		want[i] = events.ChunkRef{ChunkID: h.ID, DocID: h.DocID, Index: index[h.ID], Score: h.Score}
	}
	require.Equal(t, want, res.References.Chunks)
	require.Equal(t, "lovelace", res.References.Chunks[0].DocID)
	require.Empty(t, res.References.Entities)
	require.Empty(t, res.References.Relations)

	p := passages(res.Answer)
	require.NotEmpty(t, p, res.Answer)
	require.Equal(t, "Ada Lovelace wrote the first computer program.", p[0], "best matching sentence first")
	require.LessOrEqual(t, len(p), 3)
	require.NotContains(t, res.Answer, "Relevant entities:")
}

func TestNaiveDefaultTopK(t *testing.T) {
	s := newStores(t)
	res, err := s.service(query.Config{ChunkTopK: 1}, nil).Answer(context.Background(),
		events.QueryRequest{Question: "Rain over London", Mode: events.ModeNaive, Namespace: "books"})
	require.NoError(t, err)
	require.Len(t, res.References.Chunks, 1)
	require.Equal(t, events.ChunkRef{ChunkID: chunkWeather, DocID: "weather", Index: 0,
		Score: s.search(t, "books", query.KindChunk, "Rain over London", 1)[0].Score}, res.References.Chunks[0])
	require.Equal(t, "Rain fell over London all week.", passages(res.Answer)[0])
}

func TestLocal(t *testing.T) {
	s := newStores(t)
	svc := s.service(query.Config{EntityTopK: 2}, nil)
	question := "Did Ada Lovelace work with Charles Babbage on an engine?"
	res, err := svc.Answer(context.Background(), events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.ModeLocal, res.Mode)

	hits := s.search(t, "books", query.KindEntity, question, 2)
	keys := []string{hits[0].ID, hits[1].ID}
	require.ElementsMatch(t, []string{"ADA LOVELACE", "CHARLES BABBAGE"}, keys, "the corpus should retrieve the two people")
	require.Equal(t, events.AnswererExtractive, res.Answerer)
	names := map[string]string{"ADA LOVELACE": "Ada Lovelace", "CHARLES BABBAGE": "Charles Babbage"}
	var wantEntities []events.EntityRef
	for _, h := range hits {
		wantEntities = append(wantEntities, events.EntityRef{Key: h.ID, Name: names[h.ID], Type: "PERSON", Score: h.Score})
	}
	require.Equal(t, wantEntities, res.References.Entities)

	// Every relation touching either person, heaviest first.
	require.Equal(t, []events.RelationRef{
		{Source: "ANALYTICAL ENGINE", Target: "CHARLES BABBAGE", Weight: 3},
		{Source: "ADA LOVELACE", Target: "CHARLES BABBAGE", Weight: 2},
		{Source: "ADA LOVELACE", Target: "ANALYTICAL ENGINE", Weight: 1},
	}, res.References.Relations)

	// The Ada chunk mentions both people, the engine chunk one; the weather
	// chunk none.
	require.Equal(t, []events.ChunkRef{
		{ChunkID: chunkAda, DocID: "lovelace", Index: 0},
		{ChunkID: chunkEngine, DocID: "lovelace", Index: 1},
	}, res.References.Chunks)

	require.Contains(t, res.Answer, "\nRelevant entities:\n")
	require.Contains(t, res.Answer, "- Ada Lovelace (PERSON): English mathematician.\n", "only a description's first line")
	require.NotContains(t, res.Answer, "Wrote notes on the engine.")
	require.Contains(t, res.Answer, "- Charles Babbage (PERSON): Inventor of calculating machines.")
	require.Equal(t, "She worked with Charles Babbage on the Analytical Engine.", passages(res.Answer)[0])
}

// fixedSearcher returns canned hits per kind and records the queries.
type fixedSearcher struct {
	mu      sync.Mutex
	hits    map[string][]vector.Hit
	err     error
	queries []vector.Query
}

func (f *fixedSearcher) Search(_ context.Context, q vector.Query) ([]vector.Hit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.err != nil {
		return nil, f.err
	}
	hits := f.hits[q.Kind]
	return hits[:min(len(hits), q.TopK)], nil // best first, as a store answers
}

func TestLocalRanksChunksAsNanoGraphRAG(t *testing.T) {
	s := newStores(t)
	// Chunks rank by their first entity's rank, then by how many of its
	// relations lead to an entity the chunk also mentions. London comes
	// first, so its weather chunk does; the engine is in both lovelace
	// chunks, and the Ada chunk also mentions both of its neighbours (Ada,
	// Babbage), the engine chunk one (Babbage).
	hits := []vector.Hit{{ID: "LONDON", Score: 0.9}, {ID: "ANALYTICAL ENGINE", Score: 0.8}, {ID: "CHARLES BABBAGE", Score: 0.7},
		{ID: "NOBODY", Score: 0.6}}
	searcher := &fixedSearcher{hits: map[string][]vector.Hit{query.KindEntity: hits}}
	svc := query.New(query.Config{}, nil, discardLogger(), s.embed, searcher, s.graph)
	res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "books", TopK: 4})
	require.NoError(t, err)
	require.Equal(t, []events.ChunkRef{
		{ChunkID: chunkWeather, DocID: "weather", Index: 0},
		{ChunkID: chunkAda, DocID: "lovelace", Index: 0},
		{ChunkID: chunkEngine, DocID: "lovelace", Index: 1},
	}, res.References.Chunks)
	require.Equal(t, []events.EntityRef{
		{Key: "LONDON", Name: "London", Type: "PLACE", Score: 0.9},
		{Key: "ANALYTICAL ENGINE", Name: "Analytical Engine", Type: "MACHINE", Score: 0.8},
		{Key: "CHARLES BABBAGE", Name: "Charles Babbage", Type: "PERSON", Score: 0.7},
	}, res.References.Entities, "a hit the graph does not know is left out")
	require.Len(t, searcher.queries, 1)
	require.Equal(t, 8, searcher.queries[0].TopK, "the entity search reads top_k more hits, for deleted entities")

	// The text-unit budget keeps the best-ranked chunks: the weather row
	// takes 16 estimated tokens, the Ada row 28 more, over 40.
	res, err = svc.Answer(context.Background(), events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "books", MaxTokensTextUnit: 40})
	require.NoError(t, err)
	require.Equal(t, []events.ChunkRef{{ChunkID: chunkWeather, DocID: "weather", Index: 0}}, res.References.Chunks)
	require.Equal(t, query.DefaultEntityTopK+query.DefaultEntityTopK, searcher.queries[1].TopK, "default EntityTopK, and as many more")
}

// A deleted document's entities leave the graph but their vectors stay (an
// entity vector is shared by every document naming it): such hits are
// skipped, and top_k entities that the graph has still make the context.
func TestLocalSkipsVectorsOfDeletedEntities(t *testing.T) {
	s := newStores(t)
	hits := []vector.Hit{{ID: "GONE ONE", Score: 0.99}, {ID: "GONE TWO", Score: 0.98}, {ID: "LONDON", Score: 0.9},
		{ID: "ANALYTICAL ENGINE", Score: 0.8}, {ID: "CHARLES BABBAGE", Score: 0.7}}
	searcher := &fixedSearcher{hits: map[string][]vector.Hit{query.KindEntity: hits}}
	svc := query.New(query.Config{}, nil, discardLogger(), s.embed, searcher, s.graph)
	res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "books", TopK: 2})
	require.NoError(t, err)
	require.Equal(t, []events.EntityRef{
		{Key: "LONDON", Name: "London", Type: "PLACE", Score: 0.9},
		{Key: "ANALYTICAL ENGINE", Name: "Analytical Engine", Type: "MACHINE", Score: 0.8},
	}, res.References.Entities, "the best two the graph has, no more")

	// The slack is bounded.
	_, err = svc.Answer(context.Background(), events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "books", TopK: 500})
	require.NoError(t, err)
	require.Equal(t, 600, searcher.queries[1].TopK)
}

// entityReads records the keys each Entities call asks for.
type entityReads struct {
	query.Graph
	asked [][]string
}

func (g *entityReads) Entities(ctx context.Context, ns string, keys []string) ([]graph.Entity, error) {
	g.asked = append(g.asked, slices.Clone(keys))
	return g.Graph.Entities(ctx, ns, keys)
}

// The hits beyond top_k stand in for deleted entities only: when the first
// top_k are all in the graph, they are all that is read.
func TestLocalReadsTheSlackOnlyForMissingEntities(t *testing.T) {
	s := newStores(t)
	hits := []vector.Hit{{ID: "LONDON", Score: 0.9}, {ID: "GONE", Score: 0.85}, {ID: "ANALYTICAL ENGINE", Score: 0.8},
		{ID: "CHARLES BABBAGE", Score: 0.7}}
	searcher := &fixedSearcher{hits: map[string][]vector.Hit{query.KindEntity: hits}}
	reads := &entityReads{Graph: s.graph}
	svc := query.New(query.Config{}, nil, discardLogger(), s.embed, searcher, reads)
	for _, tt := range []struct {
		topK  int
		asked [][]string
		want  []string
	}{
		{topK: 1, asked: [][]string{{"LONDON"}}, want: []string{"LONDON"}},
		{topK: 2, asked: [][]string{{"LONDON", "GONE"}, {"ANALYTICAL ENGINE"}}, want: []string{"LONDON", "ANALYTICAL ENGINE"}},
	} {
		reads.asked = nil
		res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "books", TopK: tt.topK})
		require.NoError(t, err)
		var got []string
		for _, e := range res.References.Entities {
			got = append(got, e.Key)
		}
		require.Equal(t, tt.want, got)
		require.Equal(t, tt.asked, reads.asked[:len(tt.asked)], "top_k %d", tt.topK)
	}
}

func TestEmptyNamespace(t *testing.T) {
	s := newStores(t)
	svc := s.service(query.Config{}, nil)
	for _, mode := range events.QueryModes() {
		t.Run(mode, func(t *testing.T) {
			res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "Ada Lovelace?", Mode: mode, Namespace: "empty"})
			require.NoError(t, err)
			if mode == events.ModeGlobal {
				require.Contains(t, res.Answer, `No community reports yet in namespace "empty"`)
			} else {
				require.Equal(t, `Nothing indexed in namespace "empty" matches the question.`, res.Answer)
			}
			require.Equal(t, events.AnswererNoContext, res.Answerer)
			raw, err := json.Marshal(res.References)
			require.NoError(t, err)
			require.JSONEq(t, `{"entities":[],"relations":[],"chunks":[],"reports":[]}`, string(raw), "empty lists, not null")
		})
	}
}

func TestDefaultNamespaceAndKinds(t *testing.T) {
	searcher := &fixedSearcher{}
	svc := query.New(query.Config{ChunkTopK: 3}, nil, discardLogger(), hashembed.New(embedDim), searcher, newStores(t).graph)
	_, err := svc.Answer(context.Background(), events.QueryRequest{Question: "q", Mode: events.ModeNaive})
	require.NoError(t, err)
	_, err = svc.Answer(context.Background(), events.QueryRequest{Question: "q", Mode: events.ModeLocal, Namespace: "books"})
	require.NoError(t, err)
	require.Len(t, searcher.queries, 2)
	require.Equal(t, events.DefaultNamespace, searcher.queries[0].Namespace)
	require.Equal(t, query.KindChunk, searcher.queries[0].Kind)
	require.Equal(t, 3, searcher.queries[0].TopK)
	require.Len(t, searcher.queries[0].Vector, embedDim)
	require.Equal(t, "books", searcher.queries[1].Namespace)
	require.Equal(t, query.KindEntity, searcher.queries[1].Kind)
	require.Equal(t, 2*query.DefaultEntityTopK, searcher.queries[1].TopK, "top_k and as many more")
}

type failingEmbedder struct{ err error }

func (f failingEmbedder) Embed(context.Context, []string) ([][]float32, error) { return nil, f.err }

// failingGraph fails every read.
type failingGraph struct{ err error }

func (f failingGraph) Entities(context.Context, string, []string) ([]graph.Entity, error) {
	return nil, f.err
}

func (f failingGraph) Communities(context.Context, string, int) ([]graph.Community, error) {
	return nil, f.err
}

func (f failingGraph) CommunitiesOf(context.Context, string, []string, int) ([]graph.CommunityMatch, error) {
	return nil, f.err
}

func (f failingGraph) CommunitiesByID(context.Context, string, int, []string) ([]graph.Community, error) {
	return nil, f.err
}

func (f failingGraph) TopCommunities(context.Context, string, int, int) ([]graph.CommunityMatch, error) {
	return nil, f.err
}

func (f failingGraph) Generation(context.Context, string) (uint64, error) { return 0, f.err }

func (f failingGraph) CommunitiesBuilt(context.Context, string) (graph.CommunitiesBuild, error) {
	return graph.CommunitiesBuild{}, f.err
}

func (f failingGraph) SearchEntities(context.Context, string, string, int) ([]graph.Entity, error) {
	return nil, f.err
}

func (f failingGraph) Counts(context.Context, string) (graph.Counts, error) {
	return graph.Counts{}, f.err
}

func (f failingGraph) RelationsOf(context.Context, string, []string, int) ([]graph.Relation, error) {
	return nil, f.err
}
func (f failingGraph) Chunks(context.Context, string, []string) ([]graph.Chunk, error) {
	return nil, f.err
}

func (f failingGraph) TopRelations(context.Context, string, []string, int) ([]graph.RankedEdge, error) {
	return nil, f.err
}

func (f failingGraph) RelationsBetween(context.Context, string, [][2]string) ([]graph.Relation, error) {
	return nil, f.err
}

func (f failingGraph) Degrees(context.Context, string, []string) (map[string]int, error) {
	return nil, f.err
}

func (f failingGraph) ChunkEntities(context.Context, string, []string) (map[string][]string, error) {
	return nil, f.err
}

func TestAnswerErrors(t *testing.T) {
	s := newStores(t)
	good := s.service(query.Config{}, nil)
	cases := []struct {
		name   string
		req    events.QueryRequest
		status int
	}{
		{"empty question", events.QueryRequest{Question: "", Mode: events.ModeLocal}, 400},
		{"blank question", events.QueryRequest{Question: " \t\n", Mode: events.ModeNaive}, 400},
		{"unknown mode", events.QueryRequest{Question: "q", Mode: "psychic"}, 400},
		{"missing mode", events.QueryRequest{Question: "q"}, 400},
		{"mode in capitals", events.QueryRequest{Question: "q", Mode: "LOCAL"}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := good.Answer(context.Background(), c.req)
			var qe *query.Error
			require.ErrorAs(t, err, &qe)
			require.Equal(t, c.status, qe.Status)
			require.NotEmpty(t, qe.Error())
		})
	}

	boom := errors.New("disk on fire")
	backends := []struct {
		name string
		svc  *query.Service
	}{
		{"embedder", query.New(query.Config{}, nil, discardLogger(), failingEmbedder{boom}, s.vectors, s.graph)},
		{"searcher", query.New(query.Config{}, nil, discardLogger(), s.embed, &fixedSearcher{err: boom}, s.graph)},
		{"graph", query.New(query.Config{}, nil, discardLogger(), s.embed, s.vectors, failingGraph{boom})},
	}
	for _, b := range backends {
		for _, mode := range []string{events.ModeNaive, events.ModeLocal} {
			t.Run(b.name+" "+mode, func(t *testing.T) {
				_, err := b.svc.Answer(context.Background(), events.QueryRequest{Question: "Ada Lovelace", Mode: mode, Namespace: "books"})
				require.ErrorIs(t, err, boom)
				var qe *query.Error
				require.False(t, errors.As(err, &qe), "a backend failure is not the client's fault: %v", err)
			})
		}
	}
}

// natsEnv is an embedded NATS server and a client connection to it.
type natsEnv struct {
	nc *nats.Conn
}

func startNATS(t *testing.T) natsEnv {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("query-test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return natsEnv{nc: nc}
}

// running is a Service.Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// run starts svc, waits until it answers, and stops it when the test ends.
func run(t *testing.T, env natsEnv, svc *query.Service) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = svc.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	// Ready once the endpoint answers (a malformed request touches no backend).
	require.Eventually(t, func() bool {
		_, err := env.nc.Request(events.QuerySubject, []byte("{"), time.Second)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		require.NoError(t, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

type reply struct {
	status string // micro error code; "" for an answer
	desc   string
	answer events.QueryResponse
}

func ask(t *testing.T, nc *nats.Conn, data []byte) reply {
	t.Helper()
	m, err := nc.Request(events.QuerySubject, data, 10*time.Second)
	require.NoError(t, err)
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		return reply{status: code, desc: m.Header.Get(micro.ErrorHeader)}
	}
	var r reply
	require.NoError(t, json.Unmarshal(m.Data, &r.answer), string(m.Data))
	return r
}

func askJSON(t *testing.T, nc *nats.Conn, req events.QueryRequest) reply {
	t.Helper()
	data, err := json.Marshal(req)
	require.NoError(t, err)
	return ask(t, nc, data)
}

func TestOverNATS(t *testing.T) {
	env := startNATS(t)
	s := newStores(t)
	run(t, env, s.service(query.Config{}, env.nc))

	r := askJSON(t, env.nc, events.QueryRequest{Question: "Who wrote the first computer program?", Mode: events.ModeNaive, Namespace: "books"})
	require.Empty(t, r.status, r.desc)
	require.Equal(t, events.ModeNaive, r.answer.Mode)
	require.Equal(t, "Ada Lovelace wrote the first computer program.", passages(r.answer.Answer)[0])
	require.Equal(t, chunkAda, r.answer.References.Chunks[0].ChunkID)

	r = askJSON(t, env.nc, events.QueryRequest{Question: "Charles Babbage", Mode: events.ModeLocal, Namespace: "books"})
	require.Empty(t, r.status, r.desc)
	require.Equal(t, "CHARLES BABBAGE", r.answer.References.Entities[0].Key)
	require.NotEmpty(t, r.answer.References.Relations)

	r = askJSON(t, env.nc, events.QueryRequest{Question: "anything", Mode: events.ModeLocal, Namespace: "nothing-here"})
	require.Empty(t, r.status, r.desc)
	require.Contains(t, r.answer.Answer, "Nothing indexed")

	cases := []struct {
		name string
		data string
		code string
	}{
		{"malformed json", `{"question":`, "400"},
		{"not an object", `[1,2]`, "400"},
		{"wrong type", `{"question": 42, "mode": "local"}`, "400"},
		{"empty question", `{"question": "", "mode": "local"}`, "400"},
		{"unknown mode", `{"question": "q", "mode": "psychic"}`, "400"},
		{"negative top_k", `{"question": "q", "mode": "local", "top_k": -1}`, "400"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ask(t, env.nc, []byte(c.data))
			require.Equal(t, c.code, r.status)
			require.NotEmpty(t, r.desc)
		})
	}
}

func TestOverNATSConcurrentRequests(t *testing.T) {
	env := startNATS(t)
	s := newStores(t)
	run(t, env, s.service(query.Config{Concurrency: 4}, env.nc))

	requests := []struct {
		req  events.QueryRequest
		code string
	}{
		{events.QueryRequest{Question: "Who wrote the first computer program?", Mode: events.ModeNaive, Namespace: "books"}, ""},
		{events.QueryRequest{Question: "Charles Babbage", Mode: events.ModeLocal, Namespace: "books"}, ""},
		{events.QueryRequest{Question: "themes?", Mode: events.ModeGlobal}, ""},
		{events.QueryRequest{Question: "", Mode: events.ModeLocal}, "400"},
	}
	var wg sync.WaitGroup
	replies := make([]reply, 40)
	errs := make([]error, len(replies))
	for i := range replies {
		wg.Go(func() {
			data, err := json.Marshal(requests[i%len(requests)].req)
			if err != nil {
				errs[i] = err
				return
			}
			m, err := env.nc.Request(events.QuerySubject, data, 10*time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			replies[i].status = m.Header.Get(micro.ErrorCodeHeader)
			if replies[i].status == "" {
				errs[i] = json.Unmarshal(m.Data, &replies[i].answer)
			}
		})
	}
	wg.Wait()
	for i, r := range replies {
		require.NoError(t, errs[i], "request %d", i)
		want := requests[i%len(requests)]
		require.Equal(t, want.code, r.status, "request %d", i)
		if want.code == "" && want.req.Mode != events.ModeGlobal {
			require.Equal(t, want.req.Mode, r.answer.Mode, "request %d", i)
			require.NotEmpty(t, r.answer.References.Chunks, "request %d", i)
		}
	}
}

// Error replies come from the goroutine serving the request, after micro's
// handler has returned; many of them in a row give the race detector a
// chance to see any shared state they touch.
func TestOverNATSManyErrorReplies(t *testing.T) {
	env := startNATS(t)
	run(t, env, newStores(t).service(query.Config{}, env.nc))
	for i := range 300 {
		data := []byte(`{"question": "q", "mode": "local", "level": -1}`)
		if i%2 == 0 {
			data = []byte(`not json`)
		}
		r := ask(t, env.nc, data)
		require.Equal(t, "400", r.status)
	}
}

func TestOverNATSBackendFailures(t *testing.T) {
	s := newStores(t)
	t.Run("searcher down", func(t *testing.T) {
		env := startNATS(t)
		searcher := &fixedSearcher{err: errors.New("database is locked")}
		run(t, env, query.New(query.Config{}, env.nc, discardLogger(), s.embed, searcher, s.graph))
		r := askJSON(t, env.nc, events.QueryRequest{Question: "q", Mode: events.ModeNaive})
		require.Equal(t, "503", r.status)
		require.NotContains(t, r.desc, "database is locked", "internal errors stay in the log")
	})
	t.Run("timeout", func(t *testing.T) {
		env := startNATS(t)
		run(t, env, query.New(query.Config{Timeout: 50 * time.Millisecond}, env.nc, discardLogger(), s.embed, blockingSearcher{}, s.graph))
		start := time.Now()
		r := askJSON(t, env.nc, events.QueryRequest{Question: "q", Mode: events.ModeLocal})
		require.Equal(t, "504", r.status)
		require.Less(t, time.Since(start), 5*time.Second)
	})
}

// blockingSearcher blocks until its context ends.
type blockingSearcher struct{}

func (blockingSearcher) Search(ctx context.Context, _ vector.Query) ([]vector.Hit, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("search: %w", ctx.Err())
}

// gatedSearcher reports each search on entered and holds it until gate closes.
type gatedSearcher struct {
	inner   query.Searcher
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedSearcher) Search(ctx context.Context, q vector.Query) ([]vector.Hit, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.inner.Search(ctx, q)
}

// serviceStopped reports whether the micro service has unregistered.
func serviceStopped(nc *nats.Conn) bool {
	_, err := nc.Request("$SRV.PING.kgraph-query", nil, time.Second)
	return errors.Is(err, nats.ErrNoResponders)
}

func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	env := startNATS(t)
	s := newStores(t)
	searcher := gatedSearcher{inner: s.vectors, entered: make(chan struct{}, 8), gate: make(chan struct{})}
	svc := query.New(query.Config{Concurrency: 1}, env.nc, discardLogger(), s.embed, searcher, s.graph)
	running := run(t, env, svc)
	var release sync.Once
	openGate := func() { release.Do(func() { close(searcher.gate) }) }
	t.Cleanup(openGate) // runs before run's cleanup stops the service

	data, err := json.Marshal(events.QueryRequest{Question: "Who wrote the first computer program?", Mode: events.ModeNaive, Namespace: "books"})
	require.NoError(t, err)
	type result struct {
		msg *nats.Msg
		err error
	}
	// Requests are published here and their replies awaited in the
	// background, so that a Flush (the service shares the connection)
	// proves the requests are in the service's subscription.
	send := func() <-chan result {
		inbox := env.nc.NewRespInbox()
		sub, err := env.nc.SubscribeSync(inbox)
		require.NoError(t, err)
		require.NoError(t, env.nc.PublishRequest(events.QuerySubject, inbox, data))
		c := make(chan result, 1)
		go func() {
			defer sub.Unsubscribe()
			m, err := sub.NextMsg(5 * time.Second)
			c <- result{m, err}
		}()
		return c
	}
	inFlight := send()
	select {
	case <-searcher.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the searcher")
	}
	// With the only slot taken, one more request waits for it and another
	// waits in the subscription behind it.
	queued := []<-chan result{send(), send()}
	// The server answers a flush after it has delivered the requests, and
	// the connection reads them into the service's subscription before it
	// reads the answer.
	require.NoError(t, env.nc.Flush())

	running.cancel()
	require.Eventually(t, func() bool { return serviceStopped(env.nc) }, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool {
		select {
		case <-running.done:
			return true
		default:
			return false
		}
	}, 300*time.Millisecond, 10*time.Millisecond, "Run returned with a request in flight")

	openGate()
	r := <-inFlight
	require.NoError(t, r.err)
	require.Empty(t, r.msg.Header.Get(micro.ErrorCodeHeader), r.msg.Header.Get(micro.ErrorHeader))
	var res events.QueryResponse
	require.NoError(t, json.Unmarshal(r.msg.Data, &res))
	require.Equal(t, chunkAda, res.References.Chunks[0].ChunkID)

	// A request delivered while the service stops is answered or refused
	// with a retryable 503, never left without a reply.
	for i, q := range queued {
		r := <-q
		require.NoError(t, r.err, "queued request %d", i)
		if code := r.msg.Header.Get(micro.ErrorCodeHeader); code != "" {
			require.Equal(t, "503", code, r.msg.Header.Get(micro.ErrorHeader))
		} else {
			require.NoError(t, json.Unmarshal(r.msg.Data, &res))
		}
	}
	running.stop(t)
}
