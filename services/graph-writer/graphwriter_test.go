package graphwriter_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an embedded JetStream with kgraph's topology and a graph store.
type harness struct {
	js    jetstream.JetStream
	bus   bus.Bus
	graph *sqlitegraph.Store
}

func newHarness(t *testing.T) harness {
	t.Helper()
	ctx := context.Background()
	env := bustest.New(t)
	js := env.JS
	store, err := sqlitegraph.Open(ctx, filepath.Join(t.TempDir(), "graph.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	return harness{
		js:    js,
		bus:   env.Bus,
		graph: store,
	}
}

// runGraphWriter runs the service until the test ends, then cancels it and
// waits for its drain, before the store closes and the server shuts down.
func (h harness) runGraphWriter(t *testing.T) { h.runGraphWriterWith(t, graphwriter.Config{}) }

func (h harness) runGraphWriterWith(t *testing.T, cfg graphwriter.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- graphwriter.New(cfg, h.bus, h.graph).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("graph-writer did not stop")
		}
	})
}

// waitMerged waits for the chunk.merged event caused by the chunk.extracted
// event causeID and returns it.
func (h harness) waitMerged(t *testing.T, causeID string) events.Event[events.ChunkMerged] {
	t.Helper()
	ctx := context.Background()
	subject, err := events.SubjectOf(events.TypeChunkMerged)
	require.NoError(t, err)
	st, err := h.js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	want := events.DerivedID(causeID, string(events.TypeChunkMerged))
	var found *events.Event[events.ChunkMerged]
	require.Eventually(t, func() bool {
		for seq := uint64(1); ; {
			m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
			if err != nil {
				return false
			}
			seq = m.Sequence + 1
			env, err := events.DecodeEnvelope(m.Header, m.Data)
			if err != nil || env.ID != want {
				continue
			}
			e, err := events.Decode[events.ChunkMerged](env, h.bus.Validator)
			if err != nil {
				return false
			}
			found = &e
			return true
		}
	}, 10*time.Second, 10*time.Millisecond, "no chunk.merged for %s", causeID)
	return *found
}

func (h harness) requireNoDeadLetters(t *testing.T) {
	t.Helper()
	st, err := h.js.Stream(context.Background(), bus.StreamDeadLetter)
	require.NoError(t, err)
	_, err = st.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject(events.SubjectAllDead))
	require.True(t, errors.Is(err, jetstream.ErrMsgNotFound), "dead letters: %v", err)
}

var job = events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: "books"}

func extracted(index int, text string, entities []events.Entity, relations []events.Relation) events.ChunkExtracted {
	ids := []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}
	return events.ChunkExtracted{
		JobRef:        job,
		ChunkPosition: events.ChunkPosition{ChunkID: ids[index], Index: index, ChunksTotal: len(ids)},
		Text:          text, Tokens: 12, Entities: entities, Relations: relations, Extractor: "offline",
	}
}

var (
	firstChunk = extracted(0, "Ada Lovelace worked with Charles Babbage on the Analytical Engine.",
		[]events.Entity{
			{Name: "Ada Lovelace", Type: "PERSON", Description: "Mathematician."},
			{Name: "Charles Babbage", Type: "PERSON", Description: "Inventor."},
			{Name: "Analytical Engine", Type: "MACHINE", Description: "A mechanical computer."},
		},
		[]events.Relation{
			{Source: "Ada Lovelace", Target: "Charles Babbage", Description: "Collaborators.", Weight: 2},
			{Source: "Ada Lovelace", Target: "Analytical Engine", Description: "Wrote programs for it.", Weight: 1},
		})
	// secondChunk mentions Ada again under another spelling of the same key.
	secondChunk = extracted(1, "Lord Byron was the father of ADA LOVELACE.",
		[]events.Entity{
			{Name: "ADA LOVELACE", Type: "PERSON", Description: "Daughter of Byron."},
			{Name: "Lord Byron", Type: "PERSON", Description: "Poet."},
		},
		[]events.Relation{
			{Source: "Lord Byron", Target: "ADA LOVELACE", Description: "Father of.", Weight: 1},
		})
)

func TestMergesChunksAndReportsCounts(t *testing.T) {
	h := newHarness(t)
	h.runGraphWriter(t)
	ctx := context.Background()

	steps := []struct {
		name    string
		eventID string
		chunk   events.ChunkExtracted
		want    events.ChunkMerged
	}{
		{"first chunk", "extracted-0", firstChunk, events.ChunkMerged{JobRef: job, ChunkPosition: firstChunk.ChunkPosition,
			Entities: 3, Relations: 2, DocEntities: 3, DocRelations: 2}},
		{"second chunk shares an entity", "extracted-1", secondChunk, events.ChunkMerged{JobRef: job, ChunkPosition: secondChunk.ChunkPosition,
			Entities: 2, Relations: 1, DocEntities: 4, DocRelations: 3}},
	}
	for _, s := range steps {
		require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New(s.eventID, "test", s.chunk, time.Now())))
		merged := h.waitMerged(t, s.eventID)
		require.Equal(t, s.want, merged.Data, s.name)
		require.Equal(t, graphwriter.Source, merged.Source)
		require.Equal(t, job.JobID, merged.Subject)
	}

	snap, err := h.graph.Snapshot(ctx, job.Namespace)
	require.NoError(t, err)
	var keys []string
	for _, e := range snap.Entities {
		keys = append(keys, e.Key)
	}
	require.Equal(t, []string{"ADA LOVELACE", "ANALYTICAL ENGINE", "CHARLES BABBAGE", "LORD BYRON"}, keys)
	ada := snap.Entities[0]
	require.Equal(t, "PERSON", ada.Type)
	require.Equal(t, 2, ada.Mentions)
	require.Equal(t, []string{firstChunk.ChunkID, secondChunk.ChunkID}, ada.ChunkIDs)
	require.Len(t, snap.Relations, 3)
	counts, err := h.graph.Counts(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 2, Entities: 4, Relations: 3}, counts)
	h.requireNoDeadLetters(t)
}

func TestRedeliveredChunkChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.runGraphWriter(t)
	ctx := context.Background()

	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-0", "test", firstChunk, time.Now())))
	first := h.waitMerged(t, "extracted-0")
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-1", "test", secondChunk, time.Now())))
	h.waitMerged(t, "extracted-1")
	before, err := h.graph.Snapshot(ctx, job.Namespace)
	require.NoError(t, err)
	countsBefore, err := h.graph.Counts(ctx, job.Namespace)
	require.NoError(t, err)

	// The extractor ran again (say, after a crash) and published the same
	// result under a new id, so the stream does not drop it.
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-0-again", "test", firstChunk, time.Now())))
	again := h.waitMerged(t, "extracted-0-again")
	require.NotEqual(t, first.ID, again.ID)
	require.Equal(t, events.ChunkMerged{JobRef: job, ChunkPosition: firstChunk.ChunkPosition,
		Entities: 3, Relations: 2, DocEntities: 4, DocRelations: 3}, again.Data)

	after, err := h.graph.Snapshot(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, before, after, "re-merging a chunk must not change the graph")
	countsAfter, err := h.graph.Counts(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, countsBefore, countsAfter)
	h.requireNoDeadLetters(t)
}

// waitIdle waits until the merging consumer has settled every event it
// consumes in the stream.
func (h harness) waitIdle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	spec, err := bus.ConsumerByName(bus.ConsumerGraphWriter)
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
		c, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerGraphWriter)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last
	}, 10*time.Second, 10*time.Millisecond, "graph-writer did not settle its events")
}

// unmerged returns the document.unmerged events in the stream.
func (h harness) unmerged(t *testing.T) []events.Event[events.DocumentUnmerged] {
	t.Helper()
	ctx := context.Background()
	subject, err := events.SubjectOf(events.TypeDocumentUnmerged)
	require.NoError(t, err)
	st, err := h.js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	var out []events.Event[events.DocumentUnmerged]
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		seq = m.Sequence + 1
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		e, err := events.Decode[events.DocumentUnmerged](env, h.bus.Validator)
		require.NoError(t, err)
		out = append(out, e)
	}
}

func TestDeletedDocumentIsSubtracted(t *testing.T) {
	h := newHarness(t)
	h.runGraphWriter(t)
	ctx := context.Background()

	// doc-1 (firstChunk) and doc-2 both mention Ada Lovelace.
	other := secondChunk
	other.JobRef = events.JobRef{JobID: "job-2", DocID: "doc-2", Namespace: job.Namespace}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-0", "test", firstChunk, time.Now())))
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("extracted-other", "test", other, time.Now())))
	h.waitMerged(t, "extracted-0")
	h.waitMerged(t, "extracted-other")
	genBefore, err := h.graph.Generation(ctx, job.Namespace)
	require.NoError(t, err)

	deletion := events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-1", DocID: "doc-1", Namespace: job.Namespace},
		IngestJobID: "job-1", RequestedBy: "alice"}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-1", "test", deletion, time.Now())))
	h.waitIdle(t)

	got := h.unmerged(t)
	require.Len(t, got, 1)
	require.Equal(t, graphwriter.UnmergedID("del-1"), got[0].ID)
	require.Equal(t, events.DocumentUnmerged{JobRef: deletion.JobRef}, got[0].Data)
	require.Equal(t, "del-1", got[0].Subject)
	require.Equal(t, graphwriter.Source, got[0].Source)

	counts, err := h.graph.Counts(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, graph.Counts{Documents: 1, Chunks: 1, Entities: 2, Relations: 1}, counts)
	ents, err := h.graph.Entities(ctx, job.Namespace, []string{"ADA LOVELACE", "CHARLES BABBAGE"})
	require.NoError(t, err)
	require.Len(t, ents, 1, "an entity no other document mentions is gone")
	require.Equal(t, "Daughter of Byron.", ents[0].Description)
	genAfter, err := h.graph.Generation(ctx, job.Namespace)
	require.NoError(t, err)
	require.Greater(t, genAfter, genBefore, "the deletion changes the graph's generation")

	// The same deletion again (redelivered, or re-published under a new id)
	// changes nothing and reports under the same id, which the stream drops.
	snap, err := h.graph.Snapshot(ctx, job.Namespace)
	require.NoError(t, err)
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-1-again", "test", deletion, time.Now())))
	h.waitIdle(t)
	require.Len(t, h.unmerged(t), 1)
	again, err := h.graph.Snapshot(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, snap, again)
	genAgain, err := h.graph.Generation(ctx, job.Namespace)
	require.NoError(t, err)
	require.Equal(t, genAfter, genAgain)

	// Deleting a document the graph never held still reports, so the
	// deletion job completes.
	unknown := events.DocumentDeleted{JobRef: events.JobRef{JobID: "del-9", DocID: "doc-9", Namespace: job.Namespace}}
	require.NoError(t, bus.Publish(ctx, h.bus.Pub, events.New("delete-9", "test", unknown, time.Now())))
	h.waitIdle(t)
	require.Len(t, h.unmerged(t), 2)
	h.requireNoDeadLetters(t)
}
