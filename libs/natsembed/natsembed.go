// Package natsembed runs a nats-server with JetStream inside the process,
// for `kg serve` and for tests.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config of the embedded server.
type Config struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Listen is host:port for outside NATS clients; empty means no TCP
	// listener (in-process connections only). Port 0 picks a free port.
	Listen string
	// MaxMemory and MaxStore bound JetStream (0 = server defaults).
	MaxMemory, MaxStore int64
	// SyncAlways fsyncs every write, so an acknowledged publish survives a
	// power loss (slower; the default syncs every two minutes, which survives
	// a process crash but not a machine crash).
	SyncAlways bool
}

// Server is a running embedded server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats needs a store dir")
	}
	opts := &server.Options{
		ServerName:         "kgraph-embedded",
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		NoLog:              true,
		NoSigs:             true,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		SyncAlways:         cfg.SyncAlways,
		MaxPayload:         8 << 20,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, portStr, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats server did not become ready in 30s")
	}
	return &Server{ns: ns}, nil
}

// Connect opens an in-process client connection (no TCP).
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the URL for outside clients ("" without a TCP listener).
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
