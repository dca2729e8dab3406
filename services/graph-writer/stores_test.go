package graphwriter_test

import (
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
)

// Both graph stores keep communities: New builds nothing for a store that
// does not, which must never happen to a real one unnoticed.
var (
	_ graphwriter.CommunityStore = (*sqlitegraph.Store)(nil)
	_ graphwriter.CommunityStore = (*neo4jgraph.Store)(nil)
)
