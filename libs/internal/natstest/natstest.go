// Package natstest starts an embedded NATS server with JetStream for tests.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

// readyTimeout bounds how long Run waits for the embedded server to accept
// connections; a loaded CI machine can take a while.
const readyTimeout = 10 * time.Second

// Run starts a JetStream-enabled server on a random local port, storing its
// data under t.TempDir(), and returns it with a connection to it. Both are
// closed when the test ends: the connection first, then the server.
func Run(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("create embedded NATS server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		t.Fatalf("embedded NATS server not ready after %s", readyTimeout)
	}
	conn, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		t.Fatalf("connect to embedded NATS server: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv, conn
}

// LeakOptions are the goleak options of a package whose tests publish to
// JetStream asynchronously. nats.go v1.55 starts a goroutine that reads
// the publisher's status channel when it first runs; when the connection
// closes before that, the close has set the channel to nil and the
// goroutine waits on it forever (jetstream.(*jetStream).cleanupReplySub
// racing resetPendingAcksOnReconnect). That is nats.go's, not a leak of
// ours, and it made a CI run fail.
func LeakOptions() []goleak.Option {
	return []goleak.Option{goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")}
}
