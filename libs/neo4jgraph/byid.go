package neo4jgraph

import (
	"context"
	"fmt"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// communitiesOfCommunityUIDs reads communities by their unique uid,
// leaving the member lists on the server.
const communitiesOfCommunityUIDs = `
UNWIND $uids AS uid
MATCH (c:Community {uid: uid})
RETURN c.community_id AS id, c.level AS level, c.parent AS parent, [] AS keys, c.title AS title,
  c.summary AS summary, c.rating AS rating, c.rating_explanation AS rating_explanation,
  c.findings AS findings, c.hash AS hash`

// CommunitiesByID returns the stored communities of the level with the
// given ids, without their member lists, sorted by id.
func (s *Store) CommunitiesByID(ctx context.Context, namespace string, level int, ids []string) ([]graph.Community, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("read communities by id: %w", err)
	}
	ids = distinct(ids)
	uids := make([]string, len(ids))
	for i, id := range ids {
		uids[i] = s.communityUID(namespace, level, id)
	}
	var out []graph.Community
	err := s.read(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var err error
		out, err = collect(ctx, tx, communitiesOfCommunityUIDs, map[string]any{"uids": uids}, communityOf)
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read communities by id of %s: %w", namespace, err)
	}
	slices.SortFunc(out, graph.ByLevelAndID)
	return out, nil
}
