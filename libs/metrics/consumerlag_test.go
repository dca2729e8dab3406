package metrics

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
)

func publish(t *testing.T, js jetstream.JetStream, typ events.Type, n int) {
	t.Helper()
	subject, err := events.SubjectOf(typ)
	require.NoError(t, err)
	for range n {
		_, err := js.Publish(t.Context(), subject, []byte("{}"))
		require.NoError(t, err)
	}
}

// fetchOne pulls the consumer's next message.
func fetchOne(t *testing.T, js jetstream.JetStream, consumer string) jetstream.Msg {
	t.Helper()
	c, err := js.Consumer(t.Context(), bus.StreamEvents, consumer)
	require.NoError(t, err)
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got jetstream.Msg
	for m := range batch.Messages() {
		got = m
	}
	require.NoError(t, batch.Error())
	require.NotNil(t, got, "consumer %s delivered nothing", consumer)
	return got
}

// lagSeries is the gathered series of every consumer at zero, overridden
// by nonzero.
func lagSeries(nonzero map[string]float64) map[string]float64 {
	out := map[string]float64{"kgraph_consumer_lag_up{}": 1, "kgraph_deadletter_messages{}": 0}
	for _, spec := range bus.Consumers() {
		for _, name := range []string{"kgraph_consumer_pending_messages", "kgraph_consumer_ack_pending_messages", "kgraph_consumer_redelivered_messages"} {
			out[name+"{consumer="+spec.Name+"}"] = 0
		}
	}
	for k, v := range nonzero {
		out[k] = v
	}
	return out
}

func TestConsumerLagReadsJetStream(t *testing.T) {
	js := startJetStream(t)
	publish(t, js, events.TypeDocumentSubmitted, 3)
	publish(t, js, events.TypeChunkCreated, 1)
	_, err := js.Publish(t.Context(), events.DeadLetterSubject(bus.ConsumerDedup), []byte("dead"))
	require.NoError(t, err)
	_, err = js.Publish(t.Context(), events.DeadLetterSubject(bus.ConsumerGraphWriter), []byte("dead"))
	require.NoError(t, err)

	// dedup: the first event acknowledged, the second refused and delivered
	// again, the third not yet delivered.
	require.NoError(t, fetchOne(t, js, bus.ConsumerDedup).DoubleAck(t.Context()))
	second := fetchOne(t, js, bus.ConsumerDedup)
	// A nak sent as a request is answered once the server has put the
	// event back; a plain Nak is a publish the server may take after the
	// next pull, which then gets the third event.
	_, err = js.Conn().Request(second.Reply(), []byte("-NAK"), 5*time.Second)
	require.NoError(t, err)
	again := fetchOne(t, js, bus.ConsumerDedup)
	require.Equal(t, second.Data(), again.Data())

	clock := newFakeClock()
	lag := NewConsumerLag(FromJetStream(js), ConsumerLagConfig{})
	lag.reading.now = clock.Now
	want := lagSeries(map[string]float64{
		"kgraph_consumer_pending_messages{consumer=dedup}":            1,
		"kgraph_consumer_ack_pending_messages{consumer=dedup}":        1,
		"kgraph_consumer_redelivered_messages{consumer=dedup}":        1,
		"kgraph_consumer_pending_messages{consumer=extractor-chunks}": 1,
		"kgraph_consumer_pending_messages{consumer=projection}":       4,
		"kgraph_deadletter_messages{}":                                2,
	})
	require.Equal(t, want, gather(t, lag))

	// Within the cache period a scrape does not read JetStream again.
	publish(t, js, events.TypeDocumentSubmitted, 1)
	clock.advance(DefaultLagCacheFor - time.Millisecond)
	require.Equal(t, want, gather(t, lag))

	clock.advance(time.Millisecond)
	want["kgraph_consumer_pending_messages{consumer=dedup}"] = 2
	want["kgraph_consumer_pending_messages{consumer=projection}"] = 5
	// The server counts a consumer's pending events after the stored
	// publish has been acknowledged, in the consumer's own time: read
	// again, a cache period later each time, until it has.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, gather(t, lag))
		clock.advance(DefaultLagCacheFor)
	}, 5*time.Second, 5*time.Millisecond)
}

// fakeJetStream serves consumer states, failing the consumers in fail and
// holding StreamInfo until the context ends when hang is set.
type fakeJetStream struct {
	mu       sync.Mutex
	fail     map[string]bool
	hang     bool
	requests int
}

func (f *fakeJetStream) ConsumerInfo(_ context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if stream != bus.StreamEvents {
		return nil, errors.New("wrong stream " + stream)
	}
	if f.fail[consumer] {
		return nil, jetstream.ErrConsumerNotFound
	}
	return &jetstream.ConsumerInfo{Name: consumer, NumPending: 7, NumAckPending: 3, NumRedelivered: 1}, nil
}

func (f *fakeJetStream) StreamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	f.mu.Lock()
	f.requests++
	hang := f.hang
	f.mu.Unlock()
	if stream != bus.StreamDeadLetter {
		return nil, errors.New("wrong stream " + stream)
	}
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &jetstream.StreamInfo{State: jetstream.StreamState{Msgs: 9}}, nil
}

func (f *fakeJetStream) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func TestConsumerLagLeavesFailedPartsOutWithinTheTimeout(t *testing.T) {
	src := &fakeJetStream{fail: map[string]bool{bus.ConsumerDedup: true}, hang: true}
	clock := newFakeClock()
	lag := NewConsumerLag(src, ConsumerLagConfig{Timeout: 50 * time.Millisecond, CacheFor: time.Minute})
	lag.reading.now = clock.Now

	start := time.Now()
	got := gather(t, lag)
	require.Less(t, time.Since(start), 5*time.Second, "a hanging JetStream must not hold the scrape")
	require.Equal(t, 0.0, got["kgraph_consumer_lag_up{}"])
	require.NotContains(t, got, "kgraph_deadletter_messages{}")
	require.NotContains(t, got, "kgraph_consumer_pending_messages{consumer=dedup}")
	require.Equal(t, 7.0, got["kgraph_consumer_pending_messages{consumer=projection}"])
	require.Equal(t, 3.0, got["kgraph_consumer_ack_pending_messages{consumer=graph-writer}"])
	require.Equal(t, 1.0, got["kgraph_consumer_redelivered_messages{consumer=vector-indexer}"])
	require.Len(t, got, 1+3*(len(bus.Consumers())-1))

	// The failure is cached like a success: a down JetStream is not asked
	// on every scrape.
	requests := src.requestCount()
	gather(t, lag)
	require.Equal(t, requests, src.requestCount())

	src.mu.Lock()
	src.fail, src.hang = nil, false
	src.mu.Unlock()
	clock.advance(time.Minute)
	got = gather(t, lag)
	require.Equal(t, 1.0, got["kgraph_consumer_lag_up{}"])
	require.Equal(t, 9.0, got["kgraph_deadletter_messages{}"])
	require.Equal(t, 7.0, got["kgraph_consumer_pending_messages{consumer=dedup}"])
}
