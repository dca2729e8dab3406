package metrics

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
)

// gather collects c through a pedantic registry (which checks that what
// is collected matches what is described) into "name{label=value,...}" →
// value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
	out := map[string]float64{}
	for _, mf := range families {
		require.Equal(t, dto.MetricType_GAUGE, mf.GetType(), mf.GetName())
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startJetStream runs an embedded server with the bus topology.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, nc := natstest.Run(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	set := bus.DefaultSettings()
	set.Storage = jetstream.MemoryStorage
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, bus.EnsureTopology(ctx, js, set))
	return js
}

func TestRegisterPipelineTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	js := &fakeJetStream{}
	jobs := &fakeStore{records: map[string]string{}}
	require.NoError(t, RegisterPipeline(reg, js, jobs, nil))
	require.NoError(t, RegisterPipeline(reg, js, jobs, nil), "a second edge on one registry keeps the first collectors")

	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range families {
		names = append(names, mf.GetName())
	}
	require.Equal(t, []string{"kgraph_consumer_ack_pending_messages", "kgraph_consumer_lag_up", "kgraph_consumer_pending_messages",
		"kgraph_consumer_redelivered_messages", "kgraph_deadletter_messages", "kgraph_jobs", "kgraph_jobs_up"}, names)
}
