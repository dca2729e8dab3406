// Package vector holds the value types shared by vector stores: the items
// they index, the queries they answer and the hits they return.
//
// Stores are partitioned by Namespace (a tenant or knowledge graph) and by
// Kind (what the vector embeds, e.g. "chunk" or "entity"); a search never
// crosses either boundary. Scores are cosine similarities, so callers may
// pass vectors of any non-zero length. Store is the contract every vector
// store implements (sqlitevec, qdrantvec), checked by the one suite in
// vectortest.
package vector

import "context"

// Item is one indexed vector. (Namespace, Kind, ID) identifies it; DocID
// names the source document so that every vector derived from a document can
// be removed together. DocID may be empty for vectors not tied to a document.
type Item struct {
	Namespace string
	Kind      string
	ID        string
	DocID     string
	Vector    []float32
}

// Query asks for the TopK items of (Namespace, Kind) most similar to Vector.
// A non-empty DocID restricts the search to that document's items.
//
// Stores answer from an approximate nearest-neighbour index where they have
// one, which may miss a few of the true TopK; Exact asks for an exhaustive
// search instead (the reference the index is measured against).
type Query struct {
	Namespace string
	Kind      string
	Vector    []float32
	TopK      int
	DocID     string
	Exact     bool
}

// Hit is one search result. Score is the cosine similarity in [-1, 1];
// hits are ordered by descending score.
type Hit struct {
	ID    string
	DocID string
	Score float32
}

// Store is the vector store contract.
//
// Upsert replaces items with the same (Namespace, Kind, ID) and is atomic per
// call: a batch with one invalid item (empty vector, zero vector, NaN or Inf,
// dimension different from the vectors already stored under its namespace and
// kind) stores nothing. Search returns at most TopK hits by descending cosine
// similarity and rejects a zero vector, a dimension mismatch and TopK < 1.
// DeleteDocument removes every item of the document in the namespace,
// whatever its kind.
type Store interface {
	Upsert(ctx context.Context, items []Item) error
	Search(ctx context.Context, q Query) ([]Hit, error)
	DeleteDocument(ctx context.Context, namespace, docID string) error
	Count(ctx context.Context, namespace, kind string) (int, error)
	Close() error
}
