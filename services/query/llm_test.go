package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/libs/vector"
	"github.com/kgraph-dev/kgraph/services/query"
)

// chunkTurin mentions Babbage alone; its id sorts before the others.
var chunkTurin = strings.Repeat("0", 32)

// newLocalFixture adds the Turin chunk to the corpus, so that Babbage's
// chunks rank by their relations rather than by id, and retrieves Babbage
// then Ada for every local question.
func newLocalFixture(t *testing.T) (stores, *communityGraph, *fixedSearcher) {
	t.Helper()
	s := newStores(t)
	_, err := s.graph.MergeChunk(context.Background(), graph.ChunkGraph{
		Namespace: "books", DocID: "travels", JobID: "job_3", ChunkID: chunkTurin, Index: 0, Tokens: 10,
		Text:     "Charles Babbage lectured in Turin in 1840.",
		Entities: []events.Entity{{Name: "Charles Babbage", Type: "PERSON", Description: "Inventor of calculating machines."}},
	})
	require.NoError(t, err)
	searcher := &fixedSearcher{hits: map[string][]vector.Hit{
		query.KindEntity: {{ID: "CHARLES BABBAGE", Score: 0.9}, {ID: "ADA LOVELACE", Score: 0.8}},
		query.KindChunk:  {{ID: chunkAda, DocID: "lovelace", Score: 0.7}, {ID: chunkTurin, DocID: "travels", Score: 0.6}},
	}}
	return s, s.withCommunities(testCommunities()), searcher
}

func TestLocalContextAndPrompt(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	chat := newFakeChat()
	svc := llmService(g, s, searcher, chat)
	ctx := context.Background()
	question := "What did Babbage and Lovelace build?"

	only, err := svc.Answer(ctx, events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books", OnlyContext: true})
	require.NoError(t, err)
	require.Empty(t, chat.recorded(), "only_context calls no LLM")
	require.Equal(t, events.AnswererContextOnly, only.Answerer)
	require.Empty(t, only.Answer)
	c := only.Context

	var at []int
	for _, name := range []string{"Reports", "Entities", "Relationships", "Sources"} {
		i := strings.Index(c, "-----"+name+"-----\n```csv\n")
		require.GreaterOrEqual(t, i, 0, name)
		at = append(at, i)
	}
	require.IsIncreasing(t, at, "sections in nano-graphrag's order")
	require.Contains(t, c, "```csv\n\"id\",\t\"entity\",\t\"type\",\t\"description\",\t\"rank\"\n")

	require.Equal(t, []string{
		"0,\t\"CHARLES BABBAGE\",\t\"PERSON\",\t\"Inventor of calculating machines.\",\t2",
		"1,\t\"ADA LOVELACE\",\t\"PERSON\",\t\"English mathematician.\nWrote notes on the engine.\",\t2",
	}, section(t, c, "Entities"), "every retrieved entity with its degree")
	// Every relation has rank 4 (the engine's degree of 2 needs the read
	// of the neighbours' relations), so weight decides.
	require.Equal(t, []string{
		"0,\t\"ANALYTICAL ENGINE\",\t\"CHARLES BABBAGE\",\t\"designed\",\t3,\t4",
		"1,\t\"ADA LOVELACE\",\t\"CHARLES BABBAGE\",\t\"worked with\",\t2,\t4",
		"2,\t\"ADA LOVELACE\",\t\"ANALYTICAL ENGINE\",\t\"wrote a program for\",\t1,\t4",
	}, section(t, c, "Relationships"))
	// Babbage comes first: of his chunks, the Ada chunk also mentions both
	// of his neighbours, the engine chunk one, the Turin chunk none.
	require.Equal(t, []events.ChunkRef{
		{ChunkID: chunkAda, DocID: "lovelace", Index: 0},
		{ChunkID: chunkEngine, DocID: "lovelace", Index: 1},
		{ChunkID: chunkTurin, DocID: "travels", Index: 0},
	}, only.References.Chunks)
	require.Equal(t, "2,\t\"Charles Babbage lectured in Turin in 1840.\"", section(t, c, "Sources")[2])
	// Both communities holding both people, the better rated first; the
	// report without text and the level-3 one are left out.
	require.Equal(t, []events.ReportRef{
		{ID: "c1-pair", Level: 1, Title: "Lovelace and Babbage", Rating: 9},
		{ID: "c0-pioneers", Level: 0, Title: "Computing pioneers", Rating: 8},
	}, only.References.Reports)
	require.Equal(t, "1,\t\"# Computing pioneers\n\nAda Lovelace and Charles Babbage worked on the Analytical Engine.\n\n"+
		"## Lovelace wrote the first program\n\nHer notes describe an algorithm for the engine.\"", section(t, c, "Reports")[1])
	require.Equal(t, []events.EntityRef{
		{Key: "CHARLES BABBAGE", Name: "Charles Babbage", Type: "PERSON", Score: 0.9},
		{Key: "ADA LOVELACE", Name: "Ada Lovelace", Type: "PERSON", Score: 0.8},
	}, only.References.Entities)
	requireReferencesExist(t, g, "books", only.References)

	res, err := svc.Answer(ctx, events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books"})
	require.NoError(t, err)
	calls := chat.recorded()
	require.Len(t, calls, 1)
	require.Equal(t, prompts.LocalAnswer(c, query.DefaultResponseType), calls[0].Messages[0].Content, "the context is the system prompt")
	require.Equal(t, question, calls[0].Messages[1].Content)
	require.Equal(t, "query-local", calls[0].Stage)
	want, err := defaultReply(prompts.KindLocalAnswer, "", question)
	require.NoError(t, err)
	require.Equal(t, want, res.Answer)
	require.Equal(t, events.AnswererLLM, res.Answerer)
	require.Equal(t, fakeModel, res.Model)
	require.Equal(t, only.References, res.References)
	require.Equal(t, 1, res.Usage.Calls)
	require.Positive(t, res.Usage.PromptTokens)
	require.False(t, res.Cached)
}

func TestLocalBudgets(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	svc := llmService(g, s, searcher, nil)
	ctx := context.Background()
	ask := func(t *testing.T, textUnit, localContext, reports int) events.QueryResponse {
		t.Helper()
		res, err := svc.Answer(ctx, events.QueryRequest{Question: "Babbage?", Mode: events.ModeLocal, Namespace: "books", OnlyContext: true,
			MaxTokensTextUnit: textUnit, MaxTokensLocalContext: localContext, MaxTokensCommunityReport: reports})
		require.NoError(t, err)
		requireReferencesExist(t, g, "books", res.References)
		return res
	}
	const roomy = 100_000
	full := ask(t, roomy, roomy, roomy)
	sections := []struct {
		name  string
		count func(events.References) int
		ask   func(t *testing.T, budget int) events.QueryResponse
	}{
		{"Sources", func(r events.References) int { return len(r.Chunks) },
			func(t *testing.T, b int) events.QueryResponse { return ask(t, b, roomy, roomy) }},
		{"Relationships", func(r events.References) int { return len(r.Relations) },
			func(t *testing.T, b int) events.QueryResponse { return ask(t, roomy, b, roomy) }},
		{"Reports", func(r events.References) int { return len(r.Reports) },
			func(t *testing.T, b int) events.QueryResponse { return ask(t, roomy, roomy, b) }},
	}
	for _, sec := range sections {
		t.Run(sec.name, func(t *testing.T) {
			all := section(t, full.Context, sec.name)
			require.Len(t, all, sec.count(full.References))
			require.GreaterOrEqual(t, len(all), 2)
			// A budget of exactly k rows keeps those k; one token less
			// drops the k-th, the lowest ranked.
			for k := 1; k <= len(all); k++ {
				for _, c := range []struct {
					budget int
					want   int
				}{{rowTokens(all[:k]), k}, {rowTokens(all[:k]) - 1, k - 1}} {
					res := sec.ask(t, c.budget)
					rows := section(t, res.Context, sec.name)
					require.Equal(t, all[:c.want], append([]string{}, rows...), "budget %d", c.budget)
					require.LessOrEqual(t, rowTokens(rows), c.budget)
					require.Equal(t, c.want, sec.count(res.References))
				}
			}
		})
	}
	// The other sections are untouched by one section's budget.
	res := ask(t, 1, roomy, roomy)
	require.Empty(t, res.References.Chunks)
	require.Equal(t, full.References.Relations, res.References.Relations)
	require.Equal(t, full.References.Reports, res.References.Reports)
	require.Equal(t, full.References.Entities, res.References.Entities, "entities are not budgeted, as in nano-graphrag")
}

// TestLocalReadsOnlyReportsItPacks checks that a local query over entities
// in many communities reads the report bodies of the few that fit, not all.
func TestLocalReadsOnlyReportsItPacks(t *testing.T) {
	s, _, searcher := newLocalFixture(t)
	g := s.withCommunities(equalReports(40))
	svc := llmService(g, s, searcher, nil)
	ask := func(budget int) events.QueryResponse {
		res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "Babbage?", Mode: events.ModeLocal, Namespace: "books",
			OnlyContext: true, MaxTokensCommunityReport: budget})
		require.NoError(t, err)
		return res
	}
	all := ask(100_000)
	rows := section(t, all.Context, "Reports")
	require.Len(t, all.References.Reports, 16, "the communities of the two entities found")
	require.EqualValues(t, 16, g.reportsRead.Load())

	g.reportsRead.Store(0)
	one := ask(rowTokens(rows[:1]))
	require.Len(t, one.References.Reports, 1)
	require.Equal(t, all.References.Reports[:1], one.References.Reports)
	require.LessOrEqual(t, g.reportsRead.Load(), int64(8), "the bodies of one batch are read, not of all 16")
}

// equalReports are n level-0 communities with reports of the same length,
// rated n down to 1, over the corpus' entities.
func equalReports(n int) []graph.Community {
	keys := []string{"ADA LOVELACE", "CHARLES BABBAGE", "ANALYTICAL ENGINE", "LONDON", "THAMES"}
	out := make([]graph.Community, n)
	for i := range out {
		out[i] = graph.Community{ID: fmt.Sprintf("c%d", i), Level: 0, Keys: []string{keys[i%len(keys)]},
			Title: fmt.Sprintf("Report %c", 'A'+i), Summary: strings.Repeat(fmt.Sprintf("%c", 'a'+i), 200), Rating: float64(n - i)}
	}
	return out
}

func TestGlobalMapReduce(t *testing.T) {
	s := newStores(t)
	ctx := context.Background()
	const question = "What are the main themes?"
	messy := "Sure! Here are the points:\n```json\n" + `{"points": [
		{"description": "good point", "score": 70},
		{"description": 5, "score": 1},
		{"score": 10},
		{"description": "zero point", "score": 0},
		{"description": "string score", "score": "40"},
		{"description": "bad score", "score": "high"},
		{"description": "no score"},
		{"description": "negative", "score": -3}
	]}` + "\n```\nHope this helps."
	// mapBy answers each map call by the report title in its batch.
	mapBy := func(replies map[string]string) func(prompts.Kind, string, string) (string, error) {
		return func(kind prompts.Kind, system, question string) (string, error) {
			if kind != prompts.KindGlobalMap {
				return defaultReply(kind, system, question)
			}
			for title, reply := range replies {
				if strings.Contains(system, "# "+title+"\n") {
					return reply, nil
				}
			}
			return "", fmt.Errorf("no reply for %q", system)
		}
	}
	// rowBudget is the tokens of one report row of equalReports.
	rowBudget := func(t *testing.T, comms []graph.Community) int {
		t.Helper()
		res, err := llmService(s.withCommunities(comms), s, nil, nil).Answer(ctx,
			events.QueryRequest{Question: question, Mode: events.ModeGlobal, Namespace: "books", OnlyContext: true})
		require.NoError(t, err)
		rows := section(t, res.Context, "Reports")
		require.Len(t, rows, len(comms))
		return rowTokens(rows[:1])
	}
	four := equalReports(4)
	one := rowBudget(t, four)

	cases := []struct {
		name        string
		comms       []graph.Community
		req         events.QueryRequest
		reply       func(prompts.Kind, string, string) (string, error)
		maps        int
		reduce      bool
		answer      string // "" for the fake's reduce answer
		reports     []string
		wantAnalyst string // the reduce prompt's analysts' reports, when set
	}{
		{name: "one batch", comms: four, maps: 1, reduce: true, reports: []string{"c0", "c1", "c2", "c3"}},
		{name: "a batch per report", comms: four, req: events.QueryRequest{GlobalMaxTokensReport: one},
			maps: 4, reduce: true, reports: []string{"c0", "c1", "c2", "c3"}},
		{name: "two reports a batch", comms: four, req: events.QueryRequest{GlobalMaxTokensReport: 2 * one},
			maps: 2, reduce: true, reports: []string{"c0", "c1", "c2", "c3"}},
		{name: "a report longer than the budget is cut", comms: four, req: events.QueryRequest{GlobalMaxTokensReport: one / 2},
			maps: 4, reduce: true, reports: []string{"c0", "c1", "c2", "c3"}},
		{name: "bad points skipped, zero and negative scores dropped", comms: equalReports(2),
			req:   events.QueryRequest{GlobalMaxTokensReport: one},
			reply: mapBy(map[string]string{"Report A": messy, "Report B": "I cannot answer in JSON, sorry."}),
			maps:  2, reduce: true, reports: []string{"c0", "c1"},
			wantAnalyst: "----Analyst 1----\nImportance Score: 70\ngood point\n\n" +
				"----Analyst 1----\nImportance Score: 40\nstring score\n\n" +
				"----Analyst 1----\nImportance Score: 1\nno score\n"},
		{name: "points of every batch, best first", comms: equalReports(2),
			req: events.QueryRequest{GlobalMaxTokensReport: one},
			reply: mapBy(map[string]string{"Report A": `{"points":[{"description":"a1","score":10},{"description":"a2","score":90}]}`,
				"Report B": `{"points":[{"description":"b1","score":50}]}`}),
			maps: 2, reduce: true, reports: []string{"c0", "c1"},
			wantAnalyst: "----Analyst 1----\nImportance Score: 90\na2\n\n" +
				"----Analyst 2----\nImportance Score: 50\nb1\n\n" +
				"----Analyst 1----\nImportance Score: 10\na1\n"},
		{name: "no useful point: fail response, no reduce", comms: four,
			reply: mapBy(map[string]string{"Report A": `{"points":[{"description":"nothing relevant","score":0}]}`}),
			maps:  1, answer: prompts.FailResponse, reports: []string{"c0", "c1", "c2", "c3"}},
		{name: "no communities: fail response, no call", comms: nil, answer: prompts.FailResponse, reports: []string{}},
		{name: "reports not written yet: fail response, no call", comms: []graph.Community{{ID: "c0", Keys: []string{"LONDON"}}},
			answer: prompts.FailResponse, reports: []string{}},
		{name: "level 0 leaves deeper reports out", comms: testCommunities(), req: events.QueryRequest{Level: ptr(0)},
			maps: 1, reduce: true, reports: []string{"c0-pioneers", "c0-london"}},
		{name: "default level 2", comms: testCommunities(),
			maps: 1, reduce: true, reports: []string{"c1-pair", "c0-pioneers", "c1-engine", "c0-london"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chat := newFakeChat()
			chat.reply = c.reply
			g := s.withCommunities(c.comms)
			req := c.req
			req.Question, req.Mode, req.Namespace = question, events.ModeGlobal, "books"
			res, err := llmService(g, s, nil, chat).Answer(ctx, req)
			require.NoError(t, err)

			var want []prompts.Kind
			for range c.maps {
				want = append(want, prompts.KindGlobalMap)
			}
			if c.reduce {
				want = append(want, prompts.KindGlobalReduce)
			}
			require.Equal(t, want, chat.kinds())
			require.Equal(t, c.maps+map[bool]int{true: 1}[c.reduce], res.Usage.Calls)
			var ids []string
			for _, r := range res.References.Reports {
				ids = append(ids, r.ID)
			}
			if len(c.reports) > 0 {
				require.Equal(t, c.reports, ids)
			} else {
				require.Empty(t, ids)
				require.Equal(t, events.AnswererNoContext, res.Answerer)
			}
			requireReferencesExist(t, g, "books", res.References)

			for _, call := range chat.recorded() {
				require.Equal(t, question, call.Messages[1].Content)
				if prompts.Detect(call.Messages[0].Content) == prompts.KindGlobalMap {
					require.True(t, call.JSON, "map calls ask for JSON")
					require.Equal(t, "query-map", call.Stage)
					if req.GlobalMaxTokensReport > 0 {
						rows := section(t, call.Messages[0].Content, "Reports")
						require.LessOrEqual(t, rowTokens(rows), req.GlobalMaxTokensReport, "a batch fits the budget")
					}
				}
			}
			if c.answer != "" {
				require.Equal(t, c.answer, res.Answer)
				return
			}
			calls := chat.recorded()
			reduce := calls[len(calls)-1]
			require.Equal(t, "query-reduce", reduce.Stage)
			if c.wantAnalyst != "" {
				require.Equal(t, prompts.GlobalReduce(c.wantAnalyst, query.DefaultResponseType), reduce.Messages[0].Content)
			}
			want0, err := defaultReply(prompts.KindGlobalReduce, "", question)
			require.NoError(t, err)
			require.Equal(t, want0, res.Answer)
			require.Equal(t, events.AnswererLLM, res.Answerer)
		})
	}
}

func TestGlobalMapFailureFailsTheQuery(t *testing.T) {
	s := newStores(t)
	chat := newFakeChat()
	chat.reply = func(kind prompts.Kind, _, _ string) (string, error) {
		return "", &llm.APIError{Status: http.StatusUnauthorized, Message: "bad key", Attempts: 1}
	}
	svc := llmService(s.withCommunities(equalReports(4)), s, nil, chat)
	_, err := svc.Answer(context.Background(), events.QueryRequest{Question: "themes?", Mode: events.ModeGlobal, Namespace: "books", GlobalMaxTokensReport: 60})
	var apiErr *llm.APIError
	require.ErrorAs(t, err, &apiErr)
	var qe *query.Error
	require.False(t, errors.As(err, &qe))
	require.NotContains(t, chat.kinds(), prompts.KindGlobalReduce)
}

func TestGlobalWithoutLLM(t *testing.T) {
	s := newStores(t)
	g := s.withCommunities(testCommunities())
	res, err := llmService(g, s, nil, nil).Answer(context.Background(), events.QueryRequest{Question: "themes?", Mode: events.ModeGlobal, Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.AnswererExtractive, res.Answerer)
	require.Equal(t, "Extractive answer (no LLM configured).\nTop community reports:\n"+
		"- Lovelace and Babbage (rating 9): Two collaborators on calculating machines.\n"+
		"- Computing pioneers (rating 8): Ada Lovelace and Charles Babbage worked on the Analytical Engine.\n"+
		"- The Analytical Engine (rating 5): A mechanical computer that was never finished.\n"+
		"- London and the Thames (rating 3): The Thames flows through London.", res.Answer)
	require.Len(t, res.References.Reports, 4)
	requireReferencesExist(t, g, "books", res.References)

	res, err = llmService(s.withCommunities(nil), s, nil, nil).Answer(context.Background(),
		events.QueryRequest{Question: "themes?", Mode: events.ModeGlobal, Namespace: "books"})
	require.NoError(t, err)
	require.Equal(t, events.AnswererNoContext, res.Answerer)
	require.Contains(t, res.Answer, `No community reports yet in namespace "books"`)
}

func TestNaiveWithLLM(t *testing.T) {
	s := newStores(t)
	chat := newFakeChat()
	svc := query.New(query.Config{Prices: llm.PriceTable{fakeModel: {PromptPerMillion: 1e6, CompletionPerMillion: 2e6}}},
		nil, discardLogger(), s.embed, s.vectors, s.withCommunities(nil), query.WithChat(chat))
	question := "Who wrote the first computer program?"
	res, err := svc.Answer(context.Background(), events.QueryRequest{Question: question, Mode: events.ModeNaive, Namespace: "books",
		TopK: 2, ResponseType: "Single Paragraph"})
	require.NoError(t, err)
	hits := s.search(t, "books", query.KindChunk, question, 2)
	texts := map[string]string{}
	for _, c := range corpus() {
		texts[c.ChunkID] = c.Text
	}
	calls := chat.recorded()
	require.Len(t, calls, 1)
	require.Equal(t, prompts.NaiveAnswer(texts[hits[0].ID]+"\n--New Chunk--\n"+texts[hits[1].ID], "Single Paragraph"), calls[0].Messages[0].Content)
	require.Equal(t, "query-naive", calls[0].Stage)
	require.Len(t, res.References.Chunks, 2)
	require.Equal(t, hits[0].ID, res.References.Chunks[0].ChunkID)
	u := usageOf(calls[0], res.Answer)
	require.Equal(t, &events.QueryUsage{Calls: 1, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		CostUSD: float64(u.PromptTokens) + 2*float64(u.CompletionTokens)}, res.Usage)

	// The naive budget drops the lower-ranked chunk.
	res, err = svc.Answer(context.Background(), events.QueryRequest{Question: question, Mode: events.ModeNaive, Namespace: "books",
		TopK: 2, NaiveMaxTokens: estimateTokens(texts[hits[0].ID] + "\n--New Chunk--\n")})
	require.NoError(t, err)
	require.Len(t, res.References.Chunks, 1)
	require.Equal(t, prompts.NaiveAnswer(texts[hits[0].ID], query.DefaultResponseType), chat.recorded()[1].Messages[0].Content)
}

func TestOnlyContextCallsNoLLM(t *testing.T) {
	s := newStores(t)
	chat := newFakeChat()
	svc := llmService(s.withCommunities(testCommunities()), s, nil, chat)
	for _, c := range []struct {
		mode string
		has  string
	}{
		{events.ModeLocal, "-----Entities-----"},
		{events.ModeGlobal, "-----Reports-----"},
		{events.ModeNaive, "Ada Lovelace wrote the first computer program."},
	} {
		res, err := svc.Answer(context.Background(), events.QueryRequest{Question: "Ada Lovelace?", Mode: c.mode, Namespace: "books", OnlyContext: true})
		require.NoError(t, err, c.mode)
		require.Contains(t, res.Context, c.has, c.mode)
		require.Empty(t, res.Answer, c.mode)
		require.Equal(t, events.AnswererContextOnly, res.Answerer, c.mode)
		require.Equal(t, 0, res.Usage.Calls)
	}
	require.Empty(t, chat.recorded())
}

func TestParameterValidation(t *testing.T) {
	s := newStores(t)
	chat := newFakeChat()
	svc := llmService(s.withCommunities(nil), s, nil, chat)
	cases := []struct {
		name  string
		req   events.QueryRequest
		field string
	}{
		{"empty question", events.QueryRequest{Mode: events.ModeLocal}, "question"},
		{"unknown mode", events.QueryRequest{Question: "q", Mode: "psychic"}, "mode"},
		{"negative top_k", events.QueryRequest{Question: "q", Mode: events.ModeLocal, TopK: -1}, "top_k"},
		{"huge top_k", events.QueryRequest{Question: "q", Mode: events.ModeNaive, TopK: 5000}, "top_k"},
		{"top_k checked in global too", events.QueryRequest{Question: "q", Mode: events.ModeGlobal, TopK: -3}, "top_k"},
		{"negative text unit budget", events.QueryRequest{Question: "q", Mode: events.ModeLocal, MaxTokensTextUnit: -1}, "max_tokens_text_unit"},
		{"negative local context budget", events.QueryRequest{Question: "q", Mode: events.ModeLocal, MaxTokensLocalContext: -10}, "max_tokens_local_context"},
		{"huge report budget", events.QueryRequest{Question: "q", Mode: events.ModeLocal, MaxTokensCommunityReport: 2_000_000}, "max_tokens_community_report"},
		{"negative global budget", events.QueryRequest{Question: "q", Mode: events.ModeGlobal, GlobalMaxTokensReport: -1}, "global_max_tokens_report"},
		{"negative naive budget", events.QueryRequest{Question: "q", Mode: events.ModeNaive, NaiveMaxTokens: -1}, "naive_max_tokens"},
		{"negative level", events.QueryRequest{Question: "q", Mode: events.ModeGlobal, Level: ptr(-1)}, "level"},
		{"long response type", events.QueryRequest{Question: "q", Mode: events.ModeLocal, ResponseType: strings.Repeat("x", 300)}, "response_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.Answer(context.Background(), c.req)
			var qe *query.Error
			require.ErrorAs(t, err, &qe)
			require.Equal(t, http.StatusBadRequest, qe.Status)
			require.Contains(t, qe.Msg, c.field)
		})
	}
	require.Empty(t, chat.recorded())
}

func TestCache(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	chat := newFakeChat()
	cache := newMemCache()
	svc := llmService(g, s, searcher, chat, query.WithCache(cache))
	ctx := context.Background()
	ask := func(t *testing.T, req events.QueryRequest) events.QueryResponse {
		t.Helper()
		req.Mode, req.Namespace = cmpOr(req.Mode, events.ModeLocal), "books"
		res, err := svc.Answer(ctx, req)
		require.NoError(t, err)
		return res
	}
	first := ask(t, events.QueryRequest{Question: "What did Babbage build?"})
	require.False(t, first.Cached)
	require.Len(t, chat.recorded(), 1)
	require.Equal(t, 1, cache.size())

	again := ask(t, events.QueryRequest{Question: "  what did   BABBAGE build? "})
	require.True(t, again.Cached, "the normalised question hits")
	require.Len(t, chat.recorded(), 1, "no LLM call for a hit")
	require.Equal(t, first.Answer, again.Answer)
	require.Equal(t, first.References, again.References)
	require.Equal(t, first.Model, again.Model)
	require.Equal(t, &events.QueryUsage{}, again.Usage)

	cases := []struct {
		name string
		req  events.QueryRequest
		bump func()
	}{
		{name: "another parameter", req: events.QueryRequest{ResponseType: "Single Paragraph"}},
		{name: "another mode", req: events.QueryRequest{Mode: events.ModeNaive}},
		{name: "another level", req: events.QueryRequest{Level: ptr(1)}},
		{name: "the graph changed", bump: func() { g.generation.Add(1) }},
		{name: "the reports changed", bump: func() { g.communitiesGeneration.Add(1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.bump != nil {
				c.bump()
			}
			before := len(chat.recorded())
			req := c.req
			req.Question = "What did Babbage build?"
			res := ask(t, req)
			require.False(t, res.Cached)
			require.Len(t, chat.recorded(), before+1)
			res = ask(t, req)
			require.True(t, res.Cached, "and the new answer is cached")
			require.Len(t, chat.recorded(), before+1)
		})
	}

	t.Run("no_cache", func(t *testing.T) {
		before, stored := len(chat.recorded()), cache.size()
		res := ask(t, events.QueryRequest{Question: "What did Babbage build?", NoCache: true})
		require.False(t, res.Cached)
		require.Len(t, chat.recorded(), before+1)
		require.Equal(t, stored, cache.size(), "no_cache does not write either")
		res = ask(t, events.QueryRequest{Question: "Something never asked", NoCache: true})
		require.False(t, res.Cached)
		require.Equal(t, stored, cache.size())
	})

	t.Run("failures are not cached", func(t *testing.T) {
		stored := cache.size()
		chat.reply = func(prompts.Kind, string, string) (string, error) {
			return "", &llm.APIError{Status: http.StatusServiceUnavailable, Retryable: true, Attempts: 6}
		}
		_, err := svc.Answer(ctx, events.QueryRequest{Question: "A new question", Mode: events.ModeLocal, Namespace: "books"})
		require.Error(t, err)
		require.Equal(t, stored, cache.size())
		chat.reply = nil
	})

	t.Run("a stream hit", func(t *testing.T) {
		before := len(chat.recorded())
		evs, err := collect(svc, events.QueryRequest{Question: "What did Babbage build?", Mode: events.ModeLocal, Namespace: "books"})
		require.NoError(t, err)
		require.Len(t, chat.recorded(), before)
		require.Equal(t, []string{events.StreamReferences, events.StreamDelta, events.StreamDone}, types(evs))
		require.True(t, evs[0].Cached)
		require.Equal(t, first.Answer, evs[1].Delta)
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func collect(svc *query.Service, req events.QueryRequest) ([]query.StreamEvent, error) {
	var evs []query.StreamEvent
	err := svc.AnswerStream(context.Background(), req, func(e query.StreamEvent) error {
		evs = append(evs, e)
		return nil
	})
	return evs, err
}

func types(evs []query.StreamEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func deltas(evs []query.StreamEvent) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == events.StreamDelta {
			b.WriteString(e.Delta)
		}
	}
	return b.String()
}

func TestAnswerStream(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	g.communities = append(g.communities, equalReports(3)...)
	question := "What did Babbage build?"
	for _, mode := range events.QueryModes() {
		t.Run(mode, func(t *testing.T) {
			chat := newFakeChat()
			svc := llmService(g, s, searcher, chat)
			req := events.QueryRequest{Question: question, Mode: mode, Namespace: "books", GlobalMaxTokensReport: 100}
			evs, err := collect(svc, req)
			require.NoError(t, err)
			res, err := svc.Answer(context.Background(), req)
			require.NoError(t, err)

			require.GreaterOrEqual(t, len(evs), 4)
			require.Equal(t, events.StreamReferences, evs[0].Type)
			require.Equal(t, events.StreamDone, evs[len(evs)-1].Type)
			for _, e := range evs[1 : len(evs)-1] {
				require.Equal(t, events.StreamDelta, e.Type)
				require.NotEmpty(t, e.Delta)
			}
			require.Equal(t, res.Answer, deltas(evs), "the deltas make the answer")
			require.Greater(t, len(evs), 3, "streamed in pieces")
			require.Equal(t, res.References, *evs[0].References)
			require.Equal(t, mode, evs[0].Mode)
			require.Equal(t, events.AnswererLLM, evs[0].Answerer)
			require.Equal(t, fakeModel, evs[0].Model)
			done := evs[len(evs)-1]
			require.Equal(t, res.Usage, done.Usage)
			require.Positive(t, done.LatencyMS)
		})
	}

	t.Run("extractive answer as one delta", func(t *testing.T) {
		svc := llmService(g, s, searcher, nil)
		evs, err := collect(svc, events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books"})
		require.NoError(t, err)
		require.Equal(t, []string{events.StreamReferences, events.StreamDelta, events.StreamDone}, types(evs))
		require.Contains(t, evs[1].Delta, "Extractive answer")
		require.Equal(t, &events.QueryUsage{}, evs[2].Usage)
	})

	t.Run("LLM error mid-stream", func(t *testing.T) {
		chat := newFakeChat()
		chat.failStreamAfter = 3
		evs, err := collect(llmService(g, s, searcher, chat), events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books"})
		var apiErr *llm.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, []string{events.StreamReferences, events.StreamDelta, events.StreamDelta, events.StreamDelta, events.StreamError}, types(evs))
		require.Equal(t, &events.QueryError{Status: http.StatusBadGateway, Message: "the LLM provider failed to answer"}, evs[4].Error)
	})

	t.Run("invalid request: one error event", func(t *testing.T) {
		evs, err := collect(llmService(g, s, searcher, newFakeChat()), events.QueryRequest{Question: question, Mode: events.ModeLocal, TopK: -1})
		require.Error(t, err)
		require.Equal(t, []string{events.StreamError}, types(evs))
		require.Equal(t, http.StatusBadRequest, evs[0].Error.Status)
		require.Contains(t, evs[0].Error.Message, "top_k")
	})

	t.Run("a failing consumer stops the stream", func(t *testing.T) {
		chat := newFakeChat()
		gone := errors.New("consumer gone")
		var evs []query.StreamEvent
		err := llmService(g, s, searcher, chat).AnswerStream(context.Background(),
			events.QueryRequest{Question: question, Mode: events.ModeLocal, Namespace: "books"},
			func(e query.StreamEvent) error {
				evs = append(evs, e)
				if e.Type == events.StreamDelta {
					return gone
				}
				return nil
			})
		require.ErrorIs(t, err, gone)
		require.Equal(t, []string{events.StreamReferences, events.StreamDelta}, types(evs), "nothing after the failure")
	})
}

// streamMsg is one message of a streamed answer.
type streamMsg struct {
	header nats.Header
	event  query.StreamEvent
}

// streamAsk publishes a stream request and reads the events up to the last.
func streamAsk(t *testing.T, nc *nats.Conn, data []byte) []streamMsg {
	t.Helper()
	msgs, err := readStream(nc, data)
	require.NoError(t, err)
	return msgs
}

// readStream is streamAsk for goroutines other than the test's.
func readStream(nc *nats.Conn, data []byte) (_ []streamMsg, err error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, sub.Unsubscribe()) }()
	if err := nc.PublishRequest(events.QueryStreamSubject, inbox, data); err != nil {
		return nil, err
	}
	var out []streamMsg
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("after %d events: %w", len(out), err)
		}
		var e query.StreamEvent
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return nil, fmt.Errorf("event %q: %w", m.Data, err)
		}
		if h := m.Header.Get(events.StreamEventHeader); h != e.Type {
			return nil, fmt.Errorf("header names a %q event, the body a %q", h, e.Type)
		}
		out = append(out, streamMsg{m.Header, e})
		if e.Type == events.StreamDone || e.Type == events.StreamError {
			return out, nil
		}
	}
}

func streamAnswer(msgs []streamMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.event.Delta)
	}
	return b.String()
}

func streamTypes(msgs []streamMsg) []string {
	evs := make([]query.StreamEvent, len(msgs))
	for i, m := range msgs {
		evs[i] = m.event
	}
	return types(evs)
}

func TestStreamOverNATS(t *testing.T) {
	s, g, searcher := newLocalFixture(t)
	req := events.QueryRequest{Question: "What did Babbage build?", Mode: events.ModeLocal, Namespace: "books"}
	data, err := json.Marshal(req)
	require.NoError(t, err)

	t.Run("answer", func(t *testing.T) {
		env := startNATS(t)
		run(t, env, query.New(query.Config{}, env.nc, discardLogger(), s.embed, searcher, g, query.WithChat(newFakeChat())))
		msgs := streamAsk(t, env.nc, data)
		require.Greater(t, len(msgs), 3)
		require.Equal(t, events.StreamReferences, msgs[0].event.Type)
		require.Equal(t, events.StreamDone, msgs[len(msgs)-1].event.Type)
		var answer strings.Builder
		for _, m := range msgs[1 : len(msgs)-1] {
			require.Equal(t, events.StreamDelta, m.event.Type)
			answer.WriteString(m.event.Delta)
		}
		require.Empty(t, msgs[len(msgs)-1].header.Get(micro.ErrorCodeHeader))
		require.Equal(t, 1, msgs[len(msgs)-1].event.Usage.Calls)

		// The request/reply endpoint gives the same answer.
		r := askJSON(t, env.nc, req)
		require.Empty(t, r.status, r.desc)
		require.Equal(t, r.answer.Answer, answer.String())
		require.Equal(t, r.answer.References, *msgs[0].event.References)

		// Concurrent streams do not mix.
		var wg sync.WaitGroup
		results := make([][]streamMsg, 4)
		errs := make([]error, len(results))
		for i := range results {
			wg.Go(func() { results[i], errs[i] = readStream(env.nc, data) })
		}
		wg.Wait()
		for i, msgs := range results {
			require.NoError(t, errs[i])
			require.Equal(t, streamTypes(results[0]), streamTypes(msgs))
			require.Equal(t, answer.String(), streamAnswer(msgs))
		}

		// A refused request is one error event, with the service error
		// headers of a request/reply error.
		for _, bad := range []string{`{"question":`, `{"question": "q", "mode": "local", "top_k": -2}`} {
			msgs := streamAsk(t, env.nc, []byte(bad))
			require.Len(t, msgs, 1)
			require.Equal(t, events.StreamError, msgs[0].event.Type)
			require.Equal(t, http.StatusBadRequest, msgs[0].event.Error.Status)
			require.Equal(t, "400", msgs[0].header.Get(micro.ErrorCodeHeader))
			require.Equal(t, msgs[0].event.Error.Message, msgs[0].header.Get(micro.ErrorHeader))
		}
	})

	t.Run("LLM failure mid-stream", func(t *testing.T) {
		env := startNATS(t)
		chat := newFakeChat()
		chat.failStreamAfter = 2
		run(t, env, query.New(query.Config{}, env.nc, discardLogger(), s.embed, searcher, g, query.WithChat(chat)))
		msgs := streamAsk(t, env.nc, data)
		require.Equal(t, []string{events.StreamReferences, events.StreamDelta, events.StreamDelta, events.StreamError}, streamTypes(msgs))
		require.Equal(t, http.StatusBadGateway, msgs[3].event.Error.Status)
		require.Empty(t, msgs[3].header.Get(micro.ErrorCodeHeader), "the stream had begun: an error event only")
	})
}
