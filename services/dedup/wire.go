package dedup

import (
	"context"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
)

// Stores opens the stores the service uses (a backends.Set: the host
// decides whether they are the process's own or shared with other services).
type Stores interface {
	KV(ctx context.Context, bucket string) (kv.Store, error)
	Documents(ctx context.Context) (*natsdocs.Store, error)
}

// Wire builds the service from its config, its bus and its stores: the one
// composition both hosts (cmd/dedup and kg serve) use.
func Wire(ctx context.Context, cfg Config, b bus.Bus, stores Stores) (*Service, error) {
	claims, err := stores.KV(ctx, bus.BucketDedup)
	if err != nil {
		return nil, err
	}
	// Job records tell dedup which submissions were cancelled or expired
	// and where a cancelled job's claim is.
	jobs, err := stores.KV(ctx, bus.BucketJobs)
	if err != nil {
		return nil, err
	}
	docs, err := stores.Documents(ctx)
	if err != nil {
		return nil, err
	}
	return New(cfg, b, claims, jobs, docs), nil
}
