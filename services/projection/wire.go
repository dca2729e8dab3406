package projection

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/kv"
)

// Stores opens the stores the service uses (a backends.Set).
type Stores interface {
	KV(ctx context.Context, bucket string) (kv.Store, error)
}

// Wire builds the service from its config, its bus, the NATS connection it
// answers job requests on, and its stores: the one composition both hosts
// (cmd/projection and kg serve) use.
func Wire(ctx context.Context, cfg Config, b bus.Bus, nc *nats.Conn, stores Stores) (*Service, error) {
	jobs, err := stores.KV(ctx, bus.BucketJobs)
	if err != nil {
		return nil, err
	}
	return New(cfg, b, jobs, nc), nil
}
