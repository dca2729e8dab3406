package boot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/bus/bustest"
)

// Every host builds its bus here, so every host classifies a store that
// cannot be reached as an outage (kg serve once did not, and dead-lettered
// what the binaries retried).
func TestNewBusClassifiesOutages(t *testing.T) {
	env := bustest.New(t)
	b, err := NewBus(context.Background(), env.NC, bus.DefaultSettings(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NotNil(t, b.Unavailable)

	// A real refused connection: a port that was just listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, dialErr := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, dialErr)
	require.True(t, b.Unavailable(fmt.Errorf("merge chunk: %w", dialErr)), "a refused connection is an outage")
	require.False(t, b.Unavailable(fmt.Errorf("merge chunk: %w", bus.Permanent(fmt.Errorf("bad key")))), "a data error is not")
}
