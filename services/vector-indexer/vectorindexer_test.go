package vectorindexer_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	"github.com/kgraph-dev/kgraph/libs/hashembed"
	"github.com/kgraph-dev/kgraph/libs/sqlitevec"
	"github.com/kgraph-dev/kgraph/libs/vector"
	vectorindexer "github.com/kgraph-dev/kgraph/services/vector-indexer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const dim = 64

// harness is an embedded JetStream with kgraph's topology and a vector store.
type harness struct {
	js      jetstream.JetStream
	bus     bus.Bus
	vectors *sqlitevec.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	env := bustest.New(t)
	js := env.JS
	store, err := sqlitevec.Open(ctx, filepath.Join(t.TempDir(), "vectors.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	return harness{
		js:      js,
		bus:     env.Bus,
		vectors: store,
	}
}

// runIndexer runs the service until the test ends, then cancels it and waits
// for its drain, before the store closes and the server shuts down.
func (h harness) runIndexer(t *testing.T, e vectorindexer.Embedder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vectorindexer.New(vectorindexer.Config{}, h.bus, e, h.vectors).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("vector-indexer did not stop")
		}
	})
}

// waitIdle waits until the indexer has settled every event it consumes in
// the stream: acknowledged or dead-lettered, none pending or waiting for a
// retry.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	spec, err := bus.ConsumerByName(bus.ConsumerVectorIndexer)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := h.js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			return false
		}
		var last uint64
		for _, subject := range spec.Subjects() {
			if m, err := st.GetLastMsgForSubject(ctx, subject); err == nil {
				last = max(last, m.Sequence)
			}
		}
		c, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerVectorIndexer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last
	}, 10*time.Second, 10*time.Millisecond, "vector-indexer did not settle its events")
}

func streamMsgs(t *testing.T, h harness, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := h.js.Stream(ctx, stream)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// published returns the events of T's type in the EVENTS stream.
func published[T events.Payload](t *testing.T, h harness) []events.Event[T] {
	t.Helper()
	var zero T
	subject, err := events.SubjectOf(zero.EventType())
	require.NoError(t, err)
	var out []events.Event[T]
	for _, m := range streamMsgs(t, h, bus.StreamEvents, subject) {
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		e, err := events.Decode[T](env, h.bus.Validator)
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

// flakyEmbedder fails its first failures calls, then embeds with hashembed,
// and records what it was asked to embed.
type flakyEmbedder struct {
	failures int
	embedder *hashembed.Embedder

	mu    sync.Mutex
	calls int
	texts []string
}

func newFlakyEmbedder(failures int) *flakyEmbedder {
	return &flakyEmbedder{failures: failures, embedder: hashembed.New(dim)}
}

func (f *flakyEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.texts = texts
	f.mu.Unlock()
	if call <= f.failures {
		return nil, errors.New("embedding provider unavailable")
	}
	return f.embedder.Embed(ctx, texts)
}

func (f *flakyEmbedder) record() (calls int, texts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.texts
}

var chunk = events.ChunkExtracted{
	JobRef:        events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "books"},
	ChunkPosition: events.ChunkPosition{ChunkID: "0123456789abcdef0123456789abcdef", Index: 2, ChunksTotal: 5},
	Text:          "Ada Lovelace wrote programs for the Analytical Engine of Charles Babbage.",
	Tokens:        14,
	Entities: []events.Entity{
		{Name: "Ada Lovelace", Type: "PERSON"},
		{Name: "Analytical Engine", Type: "MACHINE"},
		{Name: "ADA LOVELACE", Type: "PERSON"},
		{Name: `"Ada  Lovelace".`, Type: "PERSON"},
		{Name: "Charles Babbage", Type: "PERSON"},
		{Name: "...", Type: "UNKNOWN"},
	},
	Relations: []events.Relation{{Source: "Ada Lovelace", Target: "Analytical Engine", Weight: 1}},
	Extractor: "offline",
}

// entityKeys are the distinct keys of chunk's entities, in order of first
// mention; "..." has no key and gets no vector.
var entityKeys = []string{"ADA LOVELACE", "ANALYTICAL ENGINE", "CHARLES BABBAGE"}

func TestIndexesChunkAndEntities(t *testing.T) {
	h := newHarness(t)
	embedder := newFlakyEmbedder(0)
	h.runIndexer(t, embedder)
	ctx := context.Background()

	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-1", "test", chunk, time.Now())))
	h.waitIdle(t)

	indexed := published[events.ChunkIndexed](t, h)
	require.Len(t, indexed, 1)
	require.Equal(t, events.DerivedID("extracted-1", string(events.TypeChunkIndexed)), indexed[0].ID)
	require.Equal(t, events.ChunkIndexed{JobRef: chunk.JobRef, ChunkPosition: chunk.ChunkPosition, Vectors: 1 + len(entityKeys)}, indexed[0].Data)
	require.Equal(t, vectorindexer.Source, indexed[0].Source)

	_, texts := embedder.record()
	require.Equal(t, append([]string{chunk.Text}, entityKeys...), texts, "the chunk text, then each entity once by its key")

	chunks, err := h.vectors.Count(ctx, chunk.Namespace, vectorindexer.KindChunk)
	require.NoError(t, err)
	require.Equal(t, 1, chunks)
	entities, err := h.vectors.Count(ctx, chunk.Namespace, vectorindexer.KindEntity)
	require.NoError(t, err)
	require.Equal(t, len(entityKeys), entities)

	search := func(kind, text string) vector.Hit {
		t.Helper()
		q, err := hashembed.New(dim).Embed(ctx, []string{text})
		require.NoError(t, err)
		hits, err := h.vectors.Search(ctx, vector.Query{Namespace: chunk.Namespace, Kind: kind, Vector: q[0], TopK: 1})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		return hits[0]
	}
	hit := search(vectorindexer.KindChunk, chunk.Text)
	require.Equal(t, chunk.ChunkID, hit.ID)
	require.Equal(t, chunk.DocID, hit.DocID)
	require.InDelta(t, 1, hit.Score, 1e-4)
	for _, key := range entityKeys {
		hit := search(vectorindexer.KindEntity, vectorindexer.EntityText(key))
		require.Equal(t, key, hit.ID)
		require.InDelta(t, 1, hit.Score, 1e-4, key)
	}

	other, err := h.vectors.Count(ctx, "elsewhere", vectorindexer.KindChunk)
	require.NoError(t, err)
	require.Zero(t, other, "vectors stay in their namespace")
	require.Empty(t, streamMsgs(t, h, bus.StreamDeadLetter, events.SubjectAllDead))
}

func TestEmbedderFailures(t *testing.T) {
	cases := []struct {
		name      string
		failures  int
		wantCalls int
		indexed   bool
	}{
		{name: "fails twice, then succeeds", failures: 2, wantCalls: 3, indexed: true},
		{name: "never succeeds", failures: math.MaxInt, wantCalls: bus.DefaultSettings().MaxDeliver, indexed: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			embedder := newFlakyEmbedder(c.failures)
			h.runIndexer(t, embedder)
			ctx := context.Background()

			require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-1", "test", chunk, time.Now())))
			h.waitIdle(t)

			calls, _ := embedder.record()
			require.Equal(t, c.wantCalls, calls)
			indexed := published[events.ChunkIndexed](t, h)
			failed := published[events.JobFailed](t, h)
			letters := streamMsgs(t, h, bus.StreamDeadLetter, events.SubjectAllDead)
			stored, err := h.vectors.Count(ctx, chunk.Namespace, vectorindexer.KindChunk)
			require.NoError(t, err)
			if c.indexed {
				require.Len(t, indexed, 1)
				require.Equal(t, 1+len(entityKeys), indexed[0].Data.Vectors)
				require.Equal(t, 1, stored)
				require.Empty(t, letters)
				require.Empty(t, failed)
				return
			}
			require.Empty(t, indexed)
			require.Zero(t, stored)
			require.Len(t, letters, 1)
			require.Equal(t, events.DeadLetterSubject(bus.ConsumerVectorIndexer), letters[0].Subject)
			require.Contains(t, letters[0].Header.Get(bus.HeaderDLQReason), "embedding provider unavailable")
			require.Len(t, failed, 1)
			require.Equal(t, events.JobFailed{JobRef: chunk.JobRef, Stage: bus.ConsumerVectorIndexer, Reason: failed[0].Data.Reason}, failed[0].Data)
		})
	}
}

func TestDeletedDocumentVectorsAreRemoved(t *testing.T) {
	h := newHarness(t)
	h.runIndexer(t, newFlakyEmbedder(0))
	ctx := context.Background()

	// doc-2 mentions one of doc-1's entities.
	other := events.ChunkExtracted{
		JobRef:        events.JobRef{JobID: "job-2", DocID: "doc-2", Namespace: chunk.Namespace},
		ChunkPosition: events.ChunkPosition{ChunkID: "fedcba9876543210fedcba9876543210", Index: 0, ChunksTotal: 1},
		Text:          "Lord Byron was the father of Ada Lovelace.", Tokens: 9,
		Entities:  []events.Entity{{Name: "Lord Byron", Type: "PERSON"}, {Name: "Ada Lovelace", Type: "PERSON"}},
		Extractor: "offline",
	}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-1", "test", chunk, time.Now())))
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-2", "test", other, time.Now())))
	h.waitIdle(t)
	count := func(kind string) int {
		t.Helper()
		n, err := h.vectors.Count(ctx, chunk.Namespace, kind)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 2, count(vectorindexer.KindChunk))
	entities := count(vectorindexer.KindEntity)
	require.Equal(t, len(entityKeys)+1, entities)

	deletion := events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-1", DocID: chunk.DocID, Namespace: chunk.Namespace}, IngestJobID: chunk.JobID}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-1", "test", deletion, time.Now())))
	h.waitIdle(t)

	got := published[events.DocumentUnindexed](t, h)
	require.Len(t, got, 1)
	require.Equal(t, vectorindexer.UnindexedID("del-1"), got[0].ID)
	require.Equal(t, events.DocumentUnindexed{JobRef: deletion.JobRef}, got[0].Data)
	require.Equal(t, vectorindexer.Source, got[0].Source)
	require.Equal(t, 1, count(vectorindexer.KindChunk))
	q, err := hashembed.New(dim).Embed(ctx, []string{chunk.Text})
	require.NoError(t, err)
	hits, err := h.vectors.Search(ctx, vector.Query{Namespace: chunk.Namespace, Kind: vectorindexer.KindChunk, Vector: q[0], TopK: 5})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, other.ChunkID, hits[0].ID, "only the other document's chunk is left")
	require.Equal(t, entities, count(vectorindexer.KindEntity), "entity vectors are shared, not the document's")

	// Redelivered, or re-published under a new id: nothing more to remove,
	// and the report keeps its id, which the stream drops.
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-1-again", "test", deletion, time.Now())))
	// A document the store never held still gets its report.
	unknown := events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-9", DocID: "doc-9", Namespace: chunk.Namespace}}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-9", "test", unknown, time.Now())))
	h.waitIdle(t)
	got = published[events.DocumentUnindexed](t, h)
	require.Len(t, got, 2)
	require.Equal(t, vectorindexer.UnindexedID("del-9"), got[1].ID)
	require.Equal(t, 1, count(vectorindexer.KindChunk))
	require.Empty(t, streamMsgs(t, h, bus.StreamDeadLetter, events.SubjectAllDead))
}
