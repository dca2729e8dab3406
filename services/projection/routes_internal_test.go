package projection

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
)

// The projection consumes every subject: a type without a route would be
// dead-lettered and missing from the fold.
func TestEveryEventTypeIsRouted(t *testing.T) {
	var want, routed []events.Type
	for _, spec := range events.Catalog() {
		want = append(want, spec.Type)
	}
	for _, r := range New(Config{}, bus.Bus{}, nil, nil).routes() {
		routed = append(routed, r.Type)
	}
	require.ElementsMatch(t, want, routed)
}
