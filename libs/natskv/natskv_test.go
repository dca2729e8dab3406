package natskv_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kgraph-dev/kgraph/libs/internal/natstest"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/kv/kvtest"
	"github.com/kgraph-dev/kgraph/libs/natskv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, conn := natstest.Run(t)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	return js
}

func TestContract(t *testing.T) {
	js := newJetStream(t)
	buckets := 0
	kvtest.Run(t, func(t *testing.T) kv.Store {
		buckets++
		s, err := natskv.Open(t.Context(), js, fmt.Sprintf("contract-%d", buckets))
		require.NoError(t, err)
		return s
	})
}

func TestReopenSharesBucket(t *testing.T) {
	ctx := t.Context()
	js := newJetStream(t)
	first, err := natskv.Open(ctx, js, "jobs")
	require.NoError(t, err)
	rev, err := first.Create(ctx, "job.one", []byte("queued"))
	require.NoError(t, err)

	second, err := natskv.Open(ctx, js, "jobs")
	require.NoError(t, err)
	value, gotRev, err := second.Get(ctx, "job.one")
	require.NoError(t, err)
	require.Equal(t, "queued", string(value))
	require.Equal(t, rev, gotRev)
	_, err = second.Create(ctx, "job.one", []byte("again"))
	require.ErrorIs(t, err, kv.ErrExists)
}

func TestOpenRejectsInvalidBucket(t *testing.T) {
	_, err := natskv.Open(t.Context(), newJetStream(t), "bad bucket")
	require.Error(t, err)
}
