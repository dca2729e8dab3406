package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/libs/vector"
)

// chunkSeparator separates the chunks of a naive context. nano-graphrag
// joins them with "--New Chunk--\n", which glues the marker to the end of
// the previous chunk; a line break before it keeps chunks apart.
const chunkSeparator = "\n--New Chunk--\n"

// planNaive builds nano-graphrag's naive query context (naive_query): the
// chunks nearest the question, best first, under the naive budget.
func (s *Service) planNaive(ctx context.Context, r request) (plan, error) {
	vec, err := s.embedQuestion(ctx, r.question)
	if err != nil {
		return plan{}, err
	}
	hits, err := s.vectors.Search(ctx, vector.Query{Namespace: r.namespace, Kind: KindChunk, Vector: vec, TopK: r.TopK})
	if err != nil {
		return plan{}, fmt.Errorf("search chunks: %w", err)
	}
	ids := make([]string, len(hits))
	score := make(map[string]float32, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
		score[h.ID] = h.Score
	}
	chunks, err := s.graph.Chunks(ctx, r.namespace, ids)
	if err != nil {
		return plan{}, fmt.Errorf("read chunks: %w", err)
	}
	_, kept := pack(chunks, r.NaiveMaxTokens, func(_ int, c graph.Chunk) string { return c.Text + chunkSeparator })
	if len(kept) == 0 {
		return s.nothingFound(r), nil
	}
	p := plan{refs: emptyReferences(), stage: "query-naive"}
	texts := make([]string, len(kept))
	for i, c := range kept {
		p.refs.Chunks = append(p.refs.Chunks, events.ChunkRef{ChunkID: c.ID, DocID: c.DocID, Index: c.Index, Score: score[c.ID]})
		texts[i] = c.Text
	}
	p.context = strings.Join(texts, chunkSeparator)
	if s.chat == nil {
		p.answerer = events.AnswererExtractive
		p.answer = extractiveAnswer(r.question, r.namespace, texts, nil)
		return p, nil
	}
	p.answerer = events.AnswererLLM
	messages := []llm.Message{
		{Role: llm.RoleSystem, Content: prompts.NaiveAnswer(p.context, r.ResponseType)},
		{Role: llm.RoleUser, Content: r.question},
	}
	p.final = func(context.Context, *usage) ([]llm.Message, string, error) { return messages, "", nil }
	return p, nil
}
