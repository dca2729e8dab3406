package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/graph/provenance"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// chunkFetchBatch is how many ranked chunk ids a local query reads at a
// time: reading stops once the text-unit budget is full, so a query over
// hub entities does not load every chunk they are mentioned in.
const chunkFetchBatch = 32

// rankedRelation is a relation with its rank, the sum of its endpoints'
// degrees (nano-graphrag's edge degree).
type rankedRelation struct {
	graph.Relation
	rank int
}

// localContext is what a local query retrieved and packed.
// maxEntitySearchSlack bounds how many entity hits a local query reads
// beyond top_k, to make up for vectors of deleted entities.
const maxEntitySearchSlack = 100

type localContext struct {
	entities  []graph.Entity
	degree    map[string]int
	relations []rankedRelation
	chunks    []graph.Chunk
	reports   []graph.Community
	text      string
}

// planLocal builds nano-graphrag's local query context
// (_build_local_query_context).
func (s *Service) planLocal(ctx context.Context, r request) (plan, error) {
	vec, err := s.embedQuestion(ctx, r.question)
	if err != nil {
		return plan{}, err
	}
	// An entity vector outlives its entity: vectors are shared by every
	// document that names the entity, so deleting a document leaves the
	// vectors of the entities that it alone named. The graph no longer has
	// those, so the search asks for more than top_k and the first top_k
	// entities that the graph still has are kept (localContext).
	hits, err := s.vectors.Search(ctx, vector.Query{Namespace: r.namespace, Kind: KindEntity, Vector: vec,
		TopK: r.TopK + min(r.TopK, maxEntitySearchSlack)})
	if err != nil {
		return plan{}, fmt.Errorf("search entities: %w", err)
	}
	keys := make([]string, len(hits))
	score := make(map[string]float32, len(hits))
	for i, h := range hits {
		keys[i] = h.ID
		score[h.ID] = h.Score
	}
	lc, err := s.localContext(ctx, r, keys)
	if err != nil {
		return plan{}, err
	}
	if len(lc.entities) == 0 {
		return s.nothingFound(r), nil
	}
	p := plan{refs: emptyReferences(), context: lc.text, stage: "query-local"}
	for _, e := range lc.entities {
		p.refs.Entities = append(p.refs.Entities, events.EntityRef{Key: e.Key, Name: e.Name, Type: e.Type, Score: score[e.Key]})
	}
	for _, rel := range lc.relations {
		p.refs.Relations = append(p.refs.Relations, events.RelationRef{Source: rel.Source, Target: rel.Target, Weight: rel.Weight})
	}
	for _, c := range lc.chunks {
		p.refs.Chunks = append(p.refs.Chunks, events.ChunkRef{ChunkID: c.ID, DocID: c.DocID, Index: c.Index})
	}
	p.refs.Reports = reportRefs(lc.reports)
	if s.chat == nil {
		p.answerer = events.AnswererExtractive
		var facts []string
		for _, e := range lc.entities[:min(len(lc.entities), extractiveFacts)] {
			facts = append(facts, fmt.Sprintf("%s (%s): %s", e.Name, e.Type, firstLine(e.Description)))
		}
		texts := make([]string, len(lc.chunks))
		for i, c := range lc.chunks {
			texts[i] = c.Text
		}
		p.answer = extractiveAnswer(r.question, r.namespace, texts, facts)
		return p, nil
	}
	p.answerer = events.AnswererLLM
	messages := []llm.Message{
		{Role: llm.RoleSystem, Content: prompts.LocalAnswer(lc.text, r.ResponseType)},
		{Role: llm.RoleUser, Content: r.question},
	}
	p.final = func(context.Context, *usage) ([]llm.Message, string, error) { return messages, "", nil }
	return p, nil
}

func reportRefs(reports []graph.Community) []events.ReportRef {
	refs := make([]events.ReportRef, len(reports))
	for i, c := range reports {
		refs[i] = events.ReportRef{ID: c.ID, Level: c.Level, Title: c.Title, Rating: c.Rating}
	}
	return refs
}

// localContext reads the retrieved entities' neighbourhood and packs the
// context's sections under the request's budgets.
func (s *Service) localContext(ctx context.Context, r request, keys []string) (localContext, error) {
	var lc localContext
	// The hits beyond top_k only stand in for entities deleted since their
	// vectors were written: they are read only if some of the first top_k
	// are missing, not with them (an entity's read is its mentions'
	// descriptions, the costliest read of the query).
	var ents []graph.Entity
	for rest := keys; len(rest) > 0 && len(ents) < r.TopK; {
		want := r.TopK - len(ents)
		batch := rest[:min(len(rest), want)]
		rest = rest[len(batch):]
		found, err := s.graph.Entities(ctx, r.namespace, batch)
		if err != nil {
			return lc, fmt.Errorf("read entities: %w", err)
		}
		ents = append(ents, found...) // in the order of keys, best first
	}
	if len(ents) == 0 {
		return lc, nil
	}
	lc.entities = ents
	entKeys := make([]string, len(ents))
	for i, e := range ents {
		entKeys[i] = e.Key
	}
	// A relation's rank is the sum of its endpoints' degrees, which the
	// store keeps. The store ranks the entities' relations and returns the
	// best that the budget could hold with their ranks, and only the
	// relations that get packed are read whole (descriptions and keywords).
	edges, err := s.graph.TopRelations(ctx, r.namespace, entKeys, relationLimit(r.MaxTokensLocalContext))
	if err != nil {
		return lc, fmt.Errorf("read relations: %w", err)
	}
	if lc.degree, err = s.graph.Degrees(ctx, r.namespace, entKeys); err != nil {
		return lc, fmt.Errorf("read degrees: %w", err)
	}
	relRows, err := s.packRelations(ctx, r, &lc, edges)
	if err != nil {
		return lc, err
	}
	chunkRows, err := s.packSources(ctx, r, &lc, edges)
	if err != nil {
		return lc, err
	}
	reportRows, err := s.packLocalReports(ctx, r, &lc, entKeys)
	if err != nil {
		return lc, err
	}
	entityRows := make([]string, len(ents))
	for i, e := range ents {
		entityRows[i] = csvRow(i, e.Key, cmp.Or(e.Type, graph.UnknownType), e.Description, lc.degree[e.Key])
	}
	lc.text = "\n-----Reports-----\n```csv\n" + csvTable([]any{"id", "content"}, reportRows) +
		"\n```\n-----Entities-----\n```csv\n" + csvTable([]any{"id", "entity", "type", "description", "rank"}, entityRows) +
		"\n```\n-----Relationships-----\n```csv\n" + csvTable([]any{"id", "source", "target", "description", "weight", "rank"}, relRows) +
		"\n```\n-----Sources-----\n```csv\n" + csvTable([]any{"id", "content"}, chunkRows) +
		"\n```\n"
	return lc, nil
}

// relationLimit is how many ranked relations a local query reads: as many
// as a relationship budget of budget tokens could hold at 16 tokens a row
// (a row holds two keys, a description, a weight and a rank), so no
// relation that would be packed is missed.
func relationLimit(budget int) int { return min(max(budget/16, 32), 512) }

// relationFetchBatch is how many ranked relations are read whole at a time
// while packing: reading stops once the budget is full.
const relationFetchBatch = 32

// packRelations orders the relations by rank, then weight, highest first
// (_find_most_related_edges_from_entities), and packs them under the
// budget, reading each relation's description only when it is its turn.
func (s *Service) packRelations(ctx context.Context, r request, lc *localContext, edges []graph.RankedEdge) ([]string, error) {
	slices.SortFunc(edges, provenance.RankedOrder)
	pk := packer{budget: r.MaxTokensLocalContext}
	for start := 0; start < len(edges) && !pk.full; start += relationFetchBatch {
		batch := edges[start:min(start+relationFetchBatch, len(edges))]
		pairs := make([][2]string, len(batch))
		for i, e := range batch {
			pairs[i] = [2]string{e.Source, e.Target}
		}
		rels, err := s.graph.RelationsBetween(ctx, r.namespace, pairs)
		if err != nil {
			return nil, fmt.Errorf("read relations: %w", err)
		}
		byPair := make(map[[2]string]graph.Relation, len(rels))
		for _, rel := range rels {
			byPair[[2]string{rel.Source, rel.Target}] = rel
		}
		for _, e := range batch {
			rel, ok := byPair[[2]string{e.Source, e.Target}]
			if !ok {
				continue // gone since it was ranked
			}
			if !pk.add(csvRow(len(pk.rows), rel.Source, rel.Target, rel.Description, rel.Weight, e.Rank)) {
				break
			}
			lc.relations = append(lc.relations, rankedRelation{rel, e.Rank})
		}
	}
	return pk.rows, nil
}

// maxSourceCandidates bounds the chunks a local query ranks for its
// sources. Candidates come in the order of the entities mentioning them,
// and a few chunks fill the text-unit budget, so only the chunks of the
// first entities matter; the bound keeps an entity named in thousands of
// chunks from making the query read all of them.
const maxSourceCandidates = 256

// packSources ranks the retrieved entities' chunks as
// _find_most_related_text_unit_from_entities does: by the rank of the
// first entity mentioning them, then by how many of that entity's
// relations lead to an entity the chunk also mentions; and packs their
// text under the text-unit budget. At most maxSourceCandidates chunks are
// ranked. Since the entity's rank comes first, the chunks are ranked and
// packed one entity at a time, and ranking stops with the budget full: the
// first entity's chunks usually fill it.
func (s *Service) packSources(ctx context.Context, r request, lc *localContext, rels []graph.RankedEdge) ([]string, error) {
	neighboursOf := map[string][]string{}
	for _, rel := range rels {
		if rel.Source == rel.Target {
			continue
		}
		neighboursOf[rel.Source] = append(neighboursOf[rel.Source], rel.Target)
		neighboursOf[rel.Target] = append(neighboursOf[rel.Target], rel.Source)
	}
	pk := packer{budget: r.MaxTokensTextUnit}
	seen := map[string]bool{}
	for _, e := range lc.entities {
		if pk.full || len(seen) == maxSourceCandidates {
			break
		}
		var ids []string
		for _, id := range e.ChunkIDs {
			if len(seen) == maxSourceCandidates {
				break
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if err := s.packChunksOf(ctx, r, lc, &pk, ids, neighboursOf[e.Key]); err != nil {
			return nil, err
		}
	}
	return pk.rows, nil
}

// packChunksOf ranks one entity's chunks ids by how many of its neighbours
// they mention, most first, and packs them in that order.
func (s *Service) packChunksOf(ctx context.Context, r request, lc *localContext, pk *packer, ids, neighbours []string) error {
	mentioned, err := s.graph.ChunkEntities(ctx, r.namespace, ids)
	if err != nil {
		return fmt.Errorf("read the entities of chunks: %w", err)
	}
	related := make(map[string]int, len(ids))
	for _, id := range ids {
		inChunk := set(mentioned[id])
		for _, other := range neighbours {
			if inChunk[other] {
				related[id]++
			}
		}
	}
	slices.SortStableFunc(ids, func(a, b string) int { return cmp.Compare(related[b], related[a]) })
	for start := 0; start < len(ids) && !pk.full; start += chunkFetchBatch {
		batch := ids[start:min(start+chunkFetchBatch, len(ids))]
		chunks, err := s.graph.Chunks(ctx, r.namespace, batch)
		if err != nil {
			return fmt.Errorf("read chunks: %w", err)
		}
		byID := map[string][]graph.Chunk{}
		for _, c := range chunks {
			byID[c.ID] = append(byID[c.ID], c)
		}
		for _, id := range batch {
			for _, c := range byID[id] {
				if !pk.add(csvRow(len(pk.rows), c.Text)) {
					break
				}
				lc.chunks = append(lc.chunks, c)
			}
		}
	}
	return nil
}

// packLocalReports packs the reports of the entities' communities, those
// with the most of the entities first, then the best rated
// (_find_most_related_community_from_entities). The matches come without
// the reports' bodies, which are read a few at a time in that order until
// the budget is full: of the dozens of communities twenty entities are in,
// a few reports fit.
func (s *Service) packLocalReports(ctx context.Context, r request, lc *localContext, keys []string) ([]string, error) {
	matches, err := s.graph.CommunitiesOf(ctx, r.namespace, keys, r.Level)
	if err != nil {
		return nil, fmt.Errorf("read communities: %w", err)
	}
	matches = slices.DeleteFunc(matches, func(m graph.CommunityMatch) bool {
		return m.Level > r.Level || m.Matched == 0 || !m.HasReport
	})
	slices.SortFunc(matches, func(a, b graph.CommunityMatch) int {
		return cmp.Or(cmp.Compare(b.Matched, a.Matched), cmp.Compare(b.Rating, a.Rating), cmp.Compare(a.ID, b.ID))
	})
	pk := packer{budget: r.MaxTokensCommunityReport}
	for start := 0; start < len(matches) && !pk.full; start += reportFetchBatch {
		reports, err := s.reportsOf(ctx, r.namespace, matches[start:min(start+reportFetchBatch, len(matches))])
		if err != nil {
			return nil, err
		}
		for _, c := range reports {
			if !pk.add(csvRow(len(pk.rows), reportString(c))) {
				break
			}
			lc.reports = append(lc.reports, c)
		}
	}
	return pk.rows, nil
}

// reportFetchBatch is how many community reports a local query reads at a
// time while packing.
const reportFetchBatch = 8

// reportsOf reads the communities of matches with their reports, in the
// order of matches; one that is gone (communities rebuilt in between) is
// skipped.
func (s *Service) reportsOf(ctx context.Context, ns string, matches []graph.CommunityMatch) ([]graph.Community, error) {
	byLevel := map[int][]string{}
	for _, m := range matches {
		byLevel[m.Level] = append(byLevel[m.Level], m.ID)
	}
	read := make(map[levelAndID]graph.Community, len(matches))
	for level, ids := range byLevel {
		cs, err := s.graph.CommunitiesByID(ctx, ns, level, ids)
		if err != nil {
			return nil, fmt.Errorf("read community reports: %w", err)
		}
		for _, c := range cs {
			read[levelAndID{c.Level, c.ID}] = c
		}
	}
	out := make([]graph.Community, 0, len(matches))
	for _, m := range matches {
		if c, ok := read[levelAndID{m.Level, m.ID}]; ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// levelAndID identifies a community.
type levelAndID struct {
	level int
	id    string
}

func (s *Service) embedQuestion(ctx context.Context, q string) ([]float32, error) {
	vecs, err := s.embed.Embed(ctx, []string{q})
	if err != nil {
		return nil, fmt.Errorf("embed question: %w", err)
	}
	if len(vecs) != 1 {
		return nil, fmt.Errorf("embed question: got %d vectors for one text", len(vecs))
	}
	return vecs[0], nil
}

func set(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
