package llmextract

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/libs/kv"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// scriptedChat answers each prompt kind with a scripted reply.
type scriptedChat struct {
	mu      sync.Mutex
	replies map[prompts.Kind][]string
	calls   map[prompts.Kind]int
	fail    error
}

func (c *scriptedChat) Model() string { return "test-model" }

func (c *scriptedChat) Complete(_ context.Context, req llm.ChatRequest) (llm.ChatResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return llm.ChatResponse{}, c.fail
	}
	kind := prompts.Detect(req.Messages[len(req.Messages)-1].Content)
	if c.calls == nil {
		c.calls = map[prompts.Kind]int{}
	}
	n := c.calls[kind]
	c.calls[kind]++
	replies := c.replies[kind]
	if len(replies) == 0 {
		return llm.ChatResponse{}, errors.New("unexpected prompt " + kind.String())
	}
	reply := replies[min(n, len(replies)-1)]
	return llm.ChatResponse{Content: reply, Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 10}, Model: "test-model"}, nil
}

type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) Get(_ context.Context, key string) ([]byte, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok {
		return nil, 0, kv.ErrNotFound
	}
	return v, 1, nil
}

func (c *memCache) Put(_ context.Context, key string, value []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[key] = value
	return 1, nil
}

const (
	first = `("entity"<|>"SCROOGE"<|>"PERSON"<|>"A miser.")##("entity"<|>MARLEY<|>PERSON<|>Scrooge's late partner.)##` +
		`("relationship"<|>SCROOGE<|>MARLEY<|>Former business partners.<|>9)<|COMPLETE|>`
	glean = `("entity"<|>"BOB CRATCHIT"<|>"PERSON"<|>"Scrooge's clerk.")##("relationship"<|>SCROOGE<|>BOB CRATCHIT<|>Employs him.<|>7)<|COMPLETE|>`
)

func TestExtractWithGleaning(t *testing.T) {
	cases := []struct {
		name          string
		gleaning      int
		loop          []string
		wantEntities  int
		wantRelations int
		wantCalls     int
	}{
		{"no gleaning", -1, nil, 2, 1, 1},
		{"one round", 1, nil, 3, 2, 2},
		{"two rounds, model says no", 2, []string{"NO"}, 3, 2, 3},   // extract, glean, loop → stop
		{"two rounds, model says yes", 2, []string{"YES"}, 4, 3, 4}, // extract, glean, loop, glean
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chat := &scriptedChat{replies: map[prompts.Kind][]string{
				prompts.KindExtraction:    {first},
				prompts.KindGleanContinue: {glean},
				prompts.KindGleanLoop:     c.loop,
			}}
			x, err := New(chat, &memCache{}, Config{Gleaning: c.gleaning})
			require.NoError(t, err)
			ents, rels, usage, err := x.Extract(context.Background(), "Marley was dead. Scrooge knew he was dead.")
			require.NoError(t, err)
			require.Len(t, ents, c.wantEntities)
			require.Len(t, rels, c.wantRelations)
			require.Equal(t, c.wantCalls, usage.Calls)
			require.Equal(t, 100*c.wantCalls, usage.PromptTokens)
			require.Zero(t, usage.SkippedRecords)
			require.Equal(t, "llm:test-model", x.Name())
		})
	}
}

func TestCachedExtractionCostsNoCall(t *testing.T) {
	chat := &scriptedChat{replies: map[prompts.Kind][]string{prompts.KindExtraction: {first}, prompts.KindGleanContinue: {glean}}}
	cache := &memCache{}
	x, err := New(chat, cache, Config{Prices: llm.PriceTable{"test-model": {PromptPerMillion: 1e6}}})
	require.NoError(t, err)
	ents1, rels1, u1, err := x.Extract(context.Background(), "Marley was dead.")
	require.NoError(t, err)
	require.Equal(t, 2, u1.Calls)
	require.InDelta(t, 200.0, u1.CostUSD, 1e-9, "priced by the table: 200 prompt tokens at $1 each")

	ents2, rels2, u2, err := x.Extract(context.Background(), "Marley was dead.")
	require.NoError(t, err)
	require.Zero(t, u2.Calls, "a re-run chunk costs no call")
	require.Equal(t, 2, u2.CachedCalls)
	require.Zero(t, u2.CostUSD)
	require.Equal(t, ents1, ents2)
	require.Equal(t, rels1, rels2)

	_, _, u3, err := x.Extract(context.Background(), "Another text.")
	require.NoError(t, err)
	require.Equal(t, 2, u3.Calls, "another prompt is another key")
}

func TestJunkIsSkippedNotFatal(t *testing.T) {
	chat := &scriptedChat{replies: map[prompts.Kind][]string{
		prompts.KindExtraction:    {`("entity"<|>SCROOGE<|>PERSON<|>A miser.)##("entity"<|>BROKEN)##(((<|>##garbage` + "\x00\xff"},
		prompts.KindGleanContinue: {"I could not find any more entities, sorry!"},
	}}
	x, err := New(chat, nil, Config{})
	require.NoError(t, err)
	ents, _, usage, err := x.Extract(context.Background(), "Scrooge.")
	require.NoError(t, err)
	require.Len(t, ents, 1)
	require.Positive(t, usage.SkippedRecords)
}

func TestJSONFormat(t *testing.T) {
	chat := &scriptedChat{replies: map[prompts.Kind][]string{
		prompts.KindExtractionJSON: {"```json\n" + `{"entities":[{"name":"Scrooge","type":"person","description":"A miser."},{"name":"Marley","type":"person","description":"Partner."}],` +
			`"relationships":[{"source":"Scrooge","target":"Marley","description":"Partners.","keywords":["business"],"strength":8}]}` + "\n```"},
		prompts.KindGleanContinue: {`not json at all`},
	}}
	x, err := New(chat, nil, Config{Format: FormatJSON})
	require.NoError(t, err)
	ents, rels, usage, err := x.Extract(context.Background(), "Scrooge and Marley.")
	require.NoError(t, err)
	require.Len(t, ents, 2)
	require.Len(t, rels, 1)
	require.Equal(t, 1, usage.SkippedRecords, "the gleaning answer without JSON is one bad record")
}

func TestProviderErrorIsReturned(t *testing.T) {
	x, err := New(&scriptedChat{fail: &llm.APIError{Status: 503, Message: "overloaded", Retryable: true}}, nil, Config{})
	require.NoError(t, err)
	_, _, _, err = x.Extract(context.Background(), "text")
	var apiErr *llm.APIError
	require.ErrorAs(t, err, &apiErr)
	require.True(t, strings.Contains(err.Error(), "extract"))
	_, err = New(&scriptedChat{}, nil, Config{Format: "yaml"})
	require.Error(t, err)
}
