package events

// QueryHealthSubject is the query service's health endpoint (NATS
// request/reply): it checks the stores it reads, the graph and vector
// stores the edge of a services deployment does not open itself, so the
// edge's GET /api/v1/health can report every backend of the deployment.
const QueryHealthSubject = "kgraph.svc.query.health"

// HealthReport is the reply on QueryHealthSubject: one entry per backend
// the service checked, by the name its store is known by (graph, neo4j,
// vectors, qdrant, kv, redis).
type HealthReport struct {
	Backends []BackendCheck `json:"backends"`
}

// BackendCheck is one backend's verdict: Error is empty when it answered.
type BackendCheck struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}
