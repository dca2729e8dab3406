package query_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/libs/sqlitegraph"
	"github.com/kgraph-dev/kgraph/services/query"
)

// fakeChat answers deterministically and records every call.
type fakeChat struct {
	model string
	// reply returns the content of a call, by the kind of its system
	// prompt; nil means defaultReply.
	reply func(kind prompts.Kind, system, question string) (string, error)
	// failStreamAfter > 0 fails a stream after that many deltas.
	failStreamAfter int

	mu    sync.Mutex
	calls []llm.ChatRequest
}

const fakeModel = "fake-gpt"

func newFakeChat() *fakeChat { return &fakeChat{model: fakeModel} }

func (f *fakeChat) Model() string { return f.model }

func defaultReply(kind prompts.Kind, _, question string) (string, error) {
	if kind == prompts.KindGlobalMap {
		return `{"points": [{"description": "A point about the reports.", "score": 50}]}`, nil
	}
	return fmt.Sprintf("The answer (%s) to %q is forty-two. It rests on the context given.", kind, question), nil
}

func (f *fakeChat) content(req llm.ChatRequest) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	reply := f.reply
	f.mu.Unlock()
	if reply == nil {
		reply = defaultReply
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != llm.RoleSystem || req.Messages[1].Role != llm.RoleUser {
		return "", fmt.Errorf("want a system and a user message, got %+v", req.Messages)
	}
	return reply(prompts.Detect(req.Messages[0].Content), req.Messages[0].Content, req.Messages[1].Content)
}

func usageOf(req llm.ChatRequest, content string) llm.Usage {
	n := 0
	for _, m := range req.Messages {
		n += len(m.Content)
	}
	return llm.Usage{PromptTokens: n / 4, CompletionTokens: len(content) / 4}
}

func (f *fakeChat) Complete(_ context.Context, req llm.ChatRequest) (llm.ChatResponse, error) {
	content, err := f.content(req)
	if err != nil {
		return llm.ChatResponse{}, err
	}
	return llm.ChatResponse{Content: content, Usage: usageOf(req, content), Model: f.model}, nil
}

// Stream sends the content word by word.
func (f *fakeChat) Stream(_ context.Context, req llm.ChatRequest, onDelta func(string) error) (llm.ChatResponse, error) {
	content, err := f.content(req)
	if err != nil {
		return llm.ChatResponse{}, err
	}
	for i, piece := range strings.SplitAfter(content, " ") {
		if f.failStreamAfter > 0 && i == f.failStreamAfter {
			return llm.ChatResponse{}, &llm.APIError{Status: 0, Message: "connection reset mid-stream", Attempts: 1}
		}
		if err := onDelta(piece); err != nil {
			return llm.ChatResponse{}, fmt.Errorf("delta handler: %w", err)
		}
	}
	return llm.ChatResponse{Content: content, Usage: usageOf(req, content), Model: f.model}, nil
}

func (f *fakeChat) recorded() []llm.ChatRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// kinds returns the prompt kinds of the calls so far, sorted.
func (f *fakeChat) kinds() []prompts.Kind {
	var out []prompts.Kind
	for _, c := range f.recorded() {
		out = append(out, prompts.Detect(c.Messages[0].Content))
	}
	slices.Sort(out)
	return out
}

// communityGraph is the sqlite store with community reports and a
// generation, as the store will have them.
type communityGraph struct {
	*sqlitegraph.Store
	communities           []graph.Community
	reportsRead           atomic.Int64 // communities CommunitiesByID returned
	generation            atomic.Uint64
	communitiesGeneration atomic.Uint64
}

func (g *communityGraph) CommunitiesBuilt(context.Context, string) (graph.CommunitiesBuild, error) {
	return graph.CommunitiesBuild{Generation: g.communitiesGeneration.Load()}, nil
}

func (g *communityGraph) Communities(_ context.Context, _ string, maxLevel int) ([]graph.Community, error) {
	var out []graph.Community
	for _, c := range g.communities {
		if c.Level <= maxLevel {
			out = append(out, c)
		}
	}
	return out, nil
}

func (g *communityGraph) CommunitiesOf(_ context.Context, _ string, keys []string, maxLevel int) ([]graph.CommunityMatch, error) {
	var out []graph.CommunityMatch
	for _, c := range g.communities {
		matched := 0
		for _, k := range slices.Compact(slices.Sorted(slices.Values(keys))) {
			if slices.Contains(c.Keys, k) {
				matched++
			}
		}
		if (maxLevel < 0 || c.Level <= maxLevel) && matched > 0 {
			m := graph.CommunityMatch{Community: c, Members: len(c.Keys), Matched: matched, HasReport: c.Title != "" || c.Summary != ""}
			m.Keys, m.Summary, m.RatingExplanation, m.Findings = nil, "", "", nil
			out = append(out, m)
		}
	}
	return out, nil
}

func (g *communityGraph) CommunitiesByID(_ context.Context, _ string, level int, ids []string) ([]graph.Community, error) {
	var out []graph.Community
	for _, c := range g.communities {
		if c.Level == level && slices.Contains(ids, c.ID) {
			c.Keys = nil
			out = append(out, c)
		}
	}
	slices.SortFunc(out, graph.ByLevelAndID)
	g.reportsRead.Add(int64(len(out)))
	return out, nil
}

func (g *communityGraph) TopCommunities(ctx context.Context, ns string, maxLevel, limit int) ([]graph.CommunityMatch, error) {
	var out []graph.CommunityMatch
	for _, c := range g.communities {
		if (maxLevel < 0 || c.Level <= maxLevel) && (c.Title != "" || c.Summary != "") {
			m := graph.CommunityMatch{Community: c, Members: len(c.Keys)}
			m.Keys = nil
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, graph.ByRating)
	return out[:min(len(out), limit)], nil
}

func (g *communityGraph) Generation(context.Context, string) (uint64, error) {
	return g.generation.Load(), nil
}

// testCommunities are reports over the corpus of query_test.go.
func testCommunities() []graph.Community {
	return []graph.Community{
		{ID: "c0-pioneers", Level: 0, Keys: []string{"ADA LOVELACE", "ANALYTICAL ENGINE", "CHARLES BABBAGE"},
			Title: "Computing pioneers", Summary: "Ada Lovelace and Charles Babbage worked on the Analytical Engine.", Rating: 8,
			Findings: []graph.Finding{{Summary: "Lovelace wrote the first program", Explanation: "Her notes describe an algorithm for the engine."}}},
		{ID: "c0-london", Level: 0, Keys: []string{"LONDON", "THAMES"},
			Title: "London and the Thames", Summary: "The Thames flows through London.", Rating: 3},
		{ID: "c1-pair", Level: 1, Parent: "c0-pioneers", Keys: []string{"ADA LOVELACE", "CHARLES BABBAGE"},
			Title: "Lovelace and Babbage", Summary: "Two collaborators on calculating machines.", Rating: 9},
		{ID: "c1-engine", Level: 1, Parent: "c0-pioneers", Keys: []string{"ANALYTICAL ENGINE"},
			Title: "The Analytical Engine", Summary: "A mechanical computer that was never finished.", Rating: 5},
		{ID: "c2-unwritten", Level: 2, Parent: "c1-pair", Keys: []string{"ADA LOVELACE"}},
		{ID: "c3-deep", Level: 3, Parent: "c1-pair", Keys: []string{"ADA LOVELACE"},
			Title: "Too deep", Summary: "Below the default level.", Rating: 10},
	}
}

func (s stores) withCommunities(comms []graph.Community) *communityGraph {
	g := &communityGraph{Store: s.graph, communities: comms}
	g.generation.Store(1)
	return g
}

// memCache is an in-memory Cache.
type memCache struct {
	mu   sync.Mutex
	m    map[string][]byte
	gets int
	puts int
}

func newMemCache() *memCache { return &memCache{m: map[string][]byte{}} }

func (c *memCache) Get(_ context.Context, key string) ([]byte, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	v, ok := c.m[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, kv.ErrNotFound)
	}
	return slices.Clone(v), 1, nil
}

func (c *memCache) Put(_ context.Context, key string, value []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	c.m[key] = slices.Clone(value)
	return 1, nil
}

func (c *memCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// estimateTokens is the service's documented estimate, ceil(bytes/4).
func estimateTokens(s string) int { return (len(s) + 3) / 4 }

var rowStart = regexp.MustCompile(`^\d+,\t`)

// section returns the rows of one CSV section of a local context (a row
// may span lines), without the header.
func section(t *testing.T, context, name string) []string {
	t.Helper()
	head := "-----" + name + "-----\n```csv\n"
	at := strings.Index(context, head)
	require.GreaterOrEqual(t, at, 0, "section %s in %q", name, context)
	body := context[at+len(head):]
	end := strings.Index(body, "\n```")
	require.GreaterOrEqual(t, end, 0)
	lines := strings.Split(body[:end], "\n")[1:] // the header is one line
	var rows []string
	for _, l := range lines {
		if rowStart.MatchString(l) || len(rows) == 0 {
			rows = append(rows, l)
			continue
		}
		rows[len(rows)-1] += "\n" + l
	}
	return rows
}

// rowTokens is what the rows take in a budget: each with its line break.
func rowTokens(rows []string) int {
	n := 0
	for _, r := range rows {
		n += estimateTokens(r + "\n")
	}
	return n
}

// requireReferencesExist checks every referenced id against the stores.
func requireReferencesExist(t *testing.T, g *communityGraph, ns string, refs events.References) {
	t.Helper()
	ctx := context.Background()
	for _, e := range refs.Entities {
		got, err := g.Entities(ctx, ns, []string{e.Key})
		require.NoError(t, err)
		require.Len(t, got, 1, "entity %s", e.Key)
		require.Equal(t, got[0].Name, e.Name)
	}
	for _, r := range refs.Relations {
		rels, err := g.RelationsOf(ctx, ns, []string{r.Source}, 0)
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(rels, func(x graph.Relation) bool {
			return x.Source == r.Source && x.Target == r.Target && x.Weight == r.Weight
		}), "relation %+v", r)
	}
	for _, c := range refs.Chunks {
		got, err := g.Chunks(ctx, ns, []string{c.ChunkID})
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(got, func(x graph.Chunk) bool { return x.DocID == c.DocID && x.Index == c.Index }), "chunk %+v", c)
	}
	for _, r := range refs.Reports {
		require.True(t, slices.ContainsFunc(g.communities, func(c graph.Community) bool {
			return c.ID == r.ID && c.Level == r.Level && c.Title == r.Title && c.Rating == r.Rating
		}), "report %+v", r)
	}
}

func ptr[T any](v T) *T { return &v }

// llmService builds a service with the fake chat over the stores.
func llmService(g query.Graph, s stores, searcher query.Searcher, chat query.Chat, opts ...query.Option) *query.Service {
	if searcher == nil {
		searcher = s.vectors
	}
	if chat != nil {
		opts = append(opts, query.WithChat(chat))
	}
	return query.New(query.Config{}, nil, discardLogger(), s.embed, searcher, g, opts...)
}
