package bus_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
)

// TestConsumerKeepsPullingBurstAfterBurst soaks the pull loop against a
// stall: nats.go's Messages iterator, used before, could skip asking for
// more while its previous pull request was still marked in progress, and
// then wait for a missed heartbeat (30 s) with events in the stream and
// none requested (the consumer showed 10 pending and no waiting pull).
// Bursts of events against a consumer of concurrency 1, with goroutines
// competing for the processors so that the client's goroutines are
// descheduled at any point, must each be handled well within that time.
// The race is rare: what showed it was the extractor's
// TestStoppedJobIsReadOnce, about once in a thousand runs (make soak runs
// both many times).
func TestConsumerKeepsPullingBurstAfterBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: hundreds of bursts")
	}
	e := setup(t)
	var handled atomic.Int64
	runWith(t, e, bus.ConsumerConfig{Consumer: bus.ConsumerDedup, Concurrency: 1, Routes: []bus.Route{
		bus.On(func(context.Context, events.Event[events.DocumentSubmitted]) error {
			handled.Add(1)
			return nil
		}),
	}})
	stopNoise := make(chan struct{})
	var noise sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		noise.Go(func() {
			for {
				select {
				case <-stopNoise:
					return
				default:
					runtime.Gosched()
				}
			}
		})
	}
	defer func() { close(stopNoise); noise.Wait() }()

	const bursts, burst = 500, 9
	ctx := context.Background()
	for b := range bursts {
		batch := make([]events.Event[events.DocumentSubmitted], burst)
		for i := range batch {
			batch[i] = submitted(fmt.Sprintf("b%d-%d", b, i))
		}
		require.NoError(t, bus.PublishAll(ctx, e.pub, batch))
		want := int64((b + 1) * burst)
		deadline := time.Now().Add(5 * time.Second)
		for handled.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("burst %d: %d of %d events handled after 5 s: the consumer stopped pulling", b, handled.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
