package query_test

import (
	"github.com/kgraph-dev/kgraph/libs/neo4jgraph"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/services/query"
)

// Both graph stores are whole Graphs: New falls back to a reader without
// communities and generations for a store that is not, which must never
// happen to a real one unnoticed.
var (
	_ query.Graph = (*sqlitegraph.Store)(nil)
	_ query.Graph = (*neo4jgraph.Store)(nil)
)
