package vectorindexer

import (
	"context"

	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// Stores opens the stores the service uses (a backends.Set).
type Stores interface {
	Vectors(ctx context.Context) (vector.Store, error)
}

// Wire builds the service from its config, its bus, the embedder and its
// stores: the one composition both hosts (cmd/vector-indexer and kg serve)
// use. The embedder is the host's, since kg serve shares one with the
// query service.
func Wire(ctx context.Context, cfg Config, b bus.Bus, e Embedder, stores Stores) (*Service, error) {
	vectors, err := stores.Vectors(ctx)
	if err != nil {
		return nil, err
	}
	return New(cfg, b, e, vectors), nil
}
