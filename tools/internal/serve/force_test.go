package serve_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
)

// graphBytes is the namespace's whole graph, serialised, read from the data
// directory while kgraph is stopped.
func graphBytes(t *testing.T, dir, namespace string) []byte {
	t.Helper()
	s, err := sqlitegraph.Open(context.Background(), filepath.Join(dir, "graph.db"))
	require.NoError(t, err)
	defer s.Close()
	snap, err := s.Snapshot(context.Background(), namespace)
	require.NoError(t, err)
	require.NotEmpty(t, snap.Entities)
	b, err := json.Marshal(snap)
	require.NoError(t, err)
	return b
}

// Re-ingesting a document with force, and redelivering its chunks, leave
// the graph byte-identical.
func TestForceAndRedeliveryLeaveTheGraphIdentical(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	doc := e2e.Corpus(41, 8000)

	s := start(t, dir)
	first := submit(t, s.client, map[string]any{"content": doc, "doc_id": "d1", "namespace": "f"})
	job, err := s.client.WaitJob(ctx, first["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"])
	s.stop()
	want := graphBytes(t, dir, "f")

	s = start(t, dir)
	forced := submit(t, s.client, map[string]any{"content": doc, "doc_id": "d1", "namespace": "f", "force": true})
	require.Equal(t, false, forced["duplicate"], "a forced submission is not a duplicate")
	job, err = s.client.WaitJob(ctx, forced["job_id"].(string), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "completed", job["status"], job)

	// Redeliver every chunk.extracted of the document under new event ids,
	// as a producer retrying with fresh ids would.
	nc, err := nats.Connect(s.ready.NATSURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	subject, _ := events.SubjectOf(events.TypeChunkExtracted)
	cons, err := js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	info, err := js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	st, err := info.Info(ctx, jetstream.WithSubjectFilter(subject))
	require.NoError(t, err)
	n := int(st.State.Subjects[subject])
	require.Positive(t, n)
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	republished := 0
	for m := range batch.Messages() {
		copyMsg := nats.NewMsg(m.Subject())
		for k, v := range m.Headers() {
			copyMsg.Header[k] = v
		}
		id := "redelivered-" + m.Headers().Get(events.HeaderID)
		copyMsg.Header.Set(events.HeaderID, id)
		copyMsg.Header.Set(events.HeaderMsgID, id)
		copyMsg.Data = m.Data()
		_, err := js.PublishMsg(ctx, copyMsg)
		require.NoError(t, err)
		republished++
	}
	require.Equal(t, n, republished)
	// Wait until the graph-writer has acknowledged everything in the stream.
	gw, err := js.Consumer(ctx, bus.StreamEvents, bus.ConsumerGraphWriter)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ci, err := gw.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	}, time.Minute, 50*time.Millisecond)
	s.stop()

	require.Equal(t, string(want), string(graphBytes(t, dir, "f")), "the graph changed")
}
