package graphwriter_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	graphwriter "github.com/kgraph-dev/kgraph/services/graph-writer"
)

// fakeChat answers summary and community report prompts and counts the
// calls by prompt kind.
type fakeChat struct {
	mu           sync.Mutex
	calls        map[prompts.Kind]int
	reportInputs []string
	badReports   bool
	notJSON      int
}

func newFakeChat() *fakeChat { return &fakeChat{calls: map[prompts.Kind]int{}} }

func (f *fakeChat) Model() string { return "fake-model" }

func (f *fakeChat) Complete(_ context.Context, req llm.ChatRequest) (llm.ChatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prompt := req.Messages[len(req.Messages)-1].Content
	kind := prompts.Detect(prompt)
	f.calls[kind]++
	resp := llm.ChatResponse{Model: "fake-model", Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 10}}
	switch kind {
	case prompts.KindSummarize:
		name, descriptions, _ := prompts.SummarizeInput(prompt)
		resp.Content = fmt.Sprintf("%s, summarised from %d descriptions.", name, len(descriptions))
	case prompts.KindCommunityReport:
		input, _ := prompts.CommunityReportInput(prompt)
		f.reportInputs = append(f.reportInputs, input)
		if !req.JSON {
			f.notJSON++
		}
		if f.badReports {
			resp.Content = "Sorry, no JSON today."
			break
		}
		report, err := json.Marshal(map[string]any{
			"title":              fmt.Sprintf("Report %d", f.calls[kind]),
			"summary":            "A community from the fake LLM.",
			"rating":             "6.5",
			"rating_explanation": "Fake.",
			"findings":           []map[string]string{{"summary": "A finding", "explanation": "Because."}},
		})
		if err != nil {
			return llm.ChatResponse{}, err
		}
		// Fenced, as models often answer: the parse must cope.
		resp.Content = "```json\n" + string(report) + "\n```"
	default:
		return llm.ChatResponse{}, &llm.APIError{Status: 400, Message: "unexpected prompt " + kind.String()}
	}
	return resp, nil
}

func (f *fakeChat) count(kind prompts.Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[kind]
}

func (f *fakeChat) setBadReports(bad bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.badReports = bad
}

func (f *fakeChat) inputs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reportInputs...)
}

const booksNS = "books"

var (
	firstJob  = events.JobRef{JobID: "job-1", DocID: "doc-1", Namespace: booksNS}
	secondJob = events.JobRef{JobID: "job-2", DocID: "doc-2", Namespace: booksNS}
)

// clique is four entities named prefix1..prefix4, all related to each
// other.
func clique(prefix string) ([]events.Entity, []events.Relation) {
	var es []events.Entity
	var rs []events.Relation
	for i := 1; i <= 4; i++ {
		name := prefix + strconv.Itoa(i)
		es = append(es, events.Entity{Name: name, Type: "PERSON", Description: fmt.Sprintf("Member %d of %s.", i, prefix)})
		for j := i + 1; j <= 4; j++ {
			other := prefix + strconv.Itoa(j)
			rs = append(rs, events.Relation{Source: name, Target: other, Description: name + " works with " + other + ".", Weight: 5})
		}
	}
	return es, rs
}

func chunkOf(ref events.JobRef, index, total int, entities []events.Entity, relations []events.Relation) events.ChunkExtracted {
	sum := md5.Sum([]byte(ref.DocID + "/" + strconv.Itoa(index)))
	return events.ChunkExtracted{
		JobRef:        ref,
		ChunkPosition: events.ChunkPosition{ChunkID: hex.EncodeToString(sum[:]), Index: index, ChunksTotal: total},
		Text:          "text", Tokens: 10, Entities: entities, Relations: relations, Extractor: "offline",
	}
}

// twoClusters is a document of two cliques, Alpha and Beta, joined by one
// weak relation.
func twoClusters(ref events.JobRef) []events.ChunkExtracted {
	alpha, alphaRelations := clique("Alpha")
	beta, betaRelations := clique("Beta")
	bridge := events.Relation{Source: "Alpha1", Target: "Beta1", Description: "Alpha1 once met Beta1.", Weight: 1}
	return []events.ChunkExtracted{
		chunkOf(ref, 0, 2, alpha, append(alphaRelations, bridge)),
		chunkOf(ref, 1, 2, beta, betaRelations),
	}
}

// alphaOnly changes only the Alpha cluster: a new description of Alpha2 and
// a stronger Alpha2–Alpha3 relation.
func alphaOnly(ref events.JobRef) events.ChunkExtracted {
	return chunkOf(ref, 0, 1,
		[]events.Entity{{Name: "Alpha2", Type: "PERSON", Description: "Alpha2 also leads."}},
		[]events.Relation{{Source: "Alpha2", Target: "Alpha3", Description: "Alpha2 trusts Alpha3.", Weight: 1}})
}

// ingest publishes the chunks and waits until they are merged.
func (h harness) ingest(t *testing.T, eventID string, chunks ...events.ChunkExtracted) {
	t.Helper()
	for i, c := range chunks {
		id := fmt.Sprintf("%s-%d", eventID, i)
		require.NoError(t, bus.Publish(context.Background(), h.bus.Pub, events.New(id, "test", c, time.Now())))
		h.waitMerged(t, id)
	}
}

// complete publishes job.completed and returns its stream sequence.
func (h harness) complete(t *testing.T, eventID string, ref events.JobRef) uint64 {
	t.Helper()
	msg, err := events.Encode(events.New(eventID, "test", events.JobCompleted{JobRef: ref, ChunksTotal: 1}, time.Now()))
	require.NoError(t, err)
	ack, err := h.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(eventID))
	require.NoError(t, err)
	return ack.Sequence
}

// findUpdated returns the communities.updated event caused by causeID.
// findUpdated takes a require.TestingT so that an EventuallyWithT
// condition can call it with its CollectT.
func (h harness) findUpdated(t require.TestingT, causeID string) (events.Event[events.CommunitiesUpdated], bool) {
	if th, ok := t.(interface{ Helper() }); ok {
		th.Helper()
	}
	ctx := context.Background()
	subject, err := events.SubjectOf(events.TypeCommunitiesUpdated)
	require.NoError(t, err)
	st, err := h.js.Stream(ctx, bus.StreamEvents)
	require.NoError(t, err)
	want := events.DerivedID(causeID, string(events.TypeCommunitiesUpdated))
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return events.Event[events.CommunitiesUpdated]{}, false
		}
		seq = m.Sequence + 1
		env, err := events.DecodeEnvelope(m.Header, m.Data)
		require.NoError(t, err)
		if env.ID != want {
			continue
		}
		e, err := events.Decode[events.CommunitiesUpdated](env, h.bus.Validator)
		require.NoError(t, err)
		return e, true
	}
}

func (h harness) waitUpdated(t *testing.T, causeID string) events.Event[events.CommunitiesUpdated] {
	t.Helper()
	var found events.Event[events.CommunitiesUpdated]
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var ok bool
		found, ok = h.findUpdated(c, causeID)
		assert.True(c, ok)
	}, 15*time.Second, 20*time.Millisecond, "no communities.updated for %s", causeID)
	require.Equal(t, graphwriter.Source, found.Source)
	return found
}

// requireNoRebuild waits until the job.completed at seq is handled and
// asserts it caused no communities.updated.
func (h harness) requireNoRebuild(t *testing.T, causeID string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		cons, err := h.js.Consumer(ctx, bus.StreamEvents, bus.ConsumerCommunities)
		require.NoError(c, err)
		info, err := cons.Info(ctx)
		require.NoError(c, err)
		assert.GreaterOrEqual(c, info.AckFloor.Stream, seq)
		assert.Zero(c, info.NumAckPending)
	}, 15*time.Second, 20*time.Millisecond, "job.completed %s not handled", causeID)
	_, rebuilt := h.findUpdated(t, causeID)
	require.False(t, rebuilt, "job.completed %s rebuilt unchanged communities", causeID)
}

func (h harness) communities(t *testing.T) []graph.Community {
	t.Helper()
	cs, err := h.graph.Communities(context.Background(), booksNS, -1)
	require.NoError(t, err)
	return cs
}

func (h harness) generation(t *testing.T) uint64 {
	t.Helper()
	g, err := h.graph.Generation(context.Background(), booksNS)
	require.NoError(t, err)
	return g
}

func (h harness) description(t *testing.T, key string) string {
	t.Helper()
	es, err := h.graph.Entities(context.Background(), booksNS, []string{key})
	require.NoError(t, err)
	require.Len(t, es, 1)
	return es[0].Description
}

// byCluster maps "ALPHA" and "BETA" to their community.
func byCluster(t *testing.T, cs []graph.Community) map[string]graph.Community {
	t.Helper()
	out := map[string]graph.Community{}
	for _, c := range cs {
		require.NotEmpty(t, c.Keys)
		cluster := strings.TrimRight(c.Keys[0], "0123456789")
		require.NotContains(t, out, cluster, "two communities of %s", cluster)
		out[cluster] = c
	}
	return out
}

func cliqueKeys(prefix string) []string {
	return []string{prefix + "1", prefix + "2", prefix + "3", prefix + "4"}
}

func TestCommunitiesAndReportsAfterJobCompleted(t *testing.T) {
	h := newHarness(t)
	chat := newFakeChat()
	h.runGraphWriterWith(t, graphwriter.Config{Chat: chat})

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	updated := h.waitUpdated(t, "completed-1")
	require.Equal(t, events.CommunitiesUpdated{
		JobRef: firstJob, Generation: h.generation(t), Communities: 2, Levels: 1, ReportsGenerated: 2,
		Usage: &events.Usage{Calls: 2, PromptTokens: 200, CompletionTokens: 20},
	}, updated.Data)
	require.Equal(t, firstJob.JobID, updated.Subject)
	built, err := h.graph.CommunitiesBuilt(context.Background(), booksNS)
	require.NoError(t, err)
	require.Equal(t, h.generation(t), built.Generation)
	require.False(t, built.At.IsZero(), "the build time is recorded")

	before := byCluster(t, h.communities(t))
	require.Len(t, before, 2)
	for cluster, c := range before {
		require.Equal(t, cliqueKeys(cluster), c.Keys)
		require.Zero(t, c.Level)
		require.Empty(t, c.Parent)
		require.Regexp(t, `^c0-[0-9a-f]{12}$`, c.ID)
		require.Regexp(t, `^Report [12]$`, c.Title)
		require.Equal(t, "A community from the fake LLM.", c.Summary)
		require.Equal(t, 6.5, c.Rating)
		require.Equal(t, "Fake.", c.RatingExplanation)
		require.Equal(t, []graph.Finding{{Summary: "A finding", Explanation: "Because."}}, c.Findings)
		require.True(t, strings.HasPrefix(c.Hash, "llm:"), c.Hash)
	}
	require.NotEqual(t, before["ALPHA"].Title, before["BETA"].Title)
	require.Equal(t, 2, chat.count(prompts.KindCommunityReport))
	require.Zero(t, chat.count(prompts.KindSummarize))
	require.Zero(t, chat.notJSON, "reports are asked in JSON mode")

	// Each report is written from its own community's tables: members and
	// the relations between them, not the bridge to the other community.
	for _, input := range chat.inputs() {
		require.Contains(t, input, "-----Entities-----\n```csv\nid,\tentity,\ttype,\tdescription,\tdegree\n")
		require.Contains(t, input, "-----Relationships-----\n```csv\nid,\tsource,\ttarget,\tdescription,\trank\n")
		require.NotContains(t, input, "once met")
		alpha, beta := strings.Contains(input, `"Alpha1"`), strings.Contains(input, `"Beta1"`)
		require.True(t, alpha != beta, "one cluster per report: %s", input)
	}

	// A completion with nothing changed rebuilds nothing.
	seq := h.complete(t, "completed-2", firstJob)
	h.requireNoRebuild(t, "completed-2", seq)
	require.Equal(t, 2, chat.count(prompts.KindCommunityReport))
	require.Equal(t, before, byCluster(t, h.communities(t)))

	// A change inside Alpha rewrites Alpha's report only.
	h.ingest(t, "extracted-2", alphaOnly(secondJob))
	h.complete(t, "completed-3", secondJob)
	updated = h.waitUpdated(t, "completed-3")
	require.Equal(t, events.CommunitiesUpdated{
		JobRef: secondJob, Generation: h.generation(t), Communities: 2, Levels: 1, ReportsGenerated: 1, ReportsReused: 1,
		Usage: &events.Usage{Calls: 1, PromptTokens: 100, CompletionTokens: 10},
	}, updated.Data)
	require.Equal(t, 3, chat.count(prompts.KindCommunityReport))
	after := byCluster(t, h.communities(t))
	require.Equal(t, before["BETA"], after["BETA"], "Beta's report is reused")
	require.Equal(t, before["ALPHA"].ID, after["ALPHA"].ID, "same members, same id")
	require.Equal(t, "Report 3", after["ALPHA"].Title)
	require.NotEqual(t, before["ALPHA"].Hash, after["ALPHA"].Hash)
	require.Contains(t, chat.inputs()[2], "Alpha2 also leads.")
	h.requireNoDeadLetters(t)
}

func TestExtractiveReportsWithoutLLM(t *testing.T) {
	h := newHarness(t)
	h.runGraphWriter(t)

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	updated := h.waitUpdated(t, "completed-1")
	require.Equal(t, events.CommunitiesUpdated{
		JobRef: firstJob, Generation: h.generation(t), Communities: 2, Levels: 1, ReportsGenerated: 2,
	}, updated.Data, "no usage without an LLM")

	cs := byCluster(t, h.communities(t))
	alpha := cs["ALPHA"]
	require.Equal(t, cliqueKeys("ALPHA"), alpha.Keys)
	require.True(t, strings.HasPrefix(alpha.Hash, "extractive:"), alpha.Hash)
	// Every member has degree 3: the first three keys name the community.
	require.Equal(t, "Alpha1, Alpha2 and Alpha3", alpha.Title)
	require.Contains(t, alpha.Summary, "4 entities and 6 relations")
	require.Contains(t, alpha.Summary, "Alpha1: Member 1 of Alpha.")
	require.InDelta(t, 7.8, alpha.Rating, 1e-9)
	require.Len(t, alpha.Findings, 5)
	require.Equal(t, graph.Finding{Summary: "Alpha1 and Alpha2", Explanation: "Alpha1 works with Alpha2. (weight 5)"}, alpha.Findings[0])
	require.Equal(t, "Beta1, Beta2 and Beta3", cs["BETA"].Title)

	// The change in Alpha leaves Beta's report as it was.
	h.ingest(t, "extracted-2", alphaOnly(secondJob))
	h.complete(t, "completed-2", secondJob)
	updated = h.waitUpdated(t, "completed-2")
	require.Equal(t, 1, updated.Data.ReportsGenerated)
	require.Equal(t, 1, updated.Data.ReportsReused)
	require.Equal(t, graph.Finding{Summary: "Alpha2 and Alpha3", Explanation: "Alpha2 works with Alpha3. Alpha2 trusts Alpha3. (weight 6)"},
		byCluster(t, h.communities(t))["ALPHA"].Findings[0], "the strongest relation comes first")
	h.requireNoDeadLetters(t)
}

func TestUnusableReportFallsBackToExtractive(t *testing.T) {
	h := newHarness(t)
	chat := newFakeChat()
	chat.setBadReports(true)
	h.runGraphWriterWith(t, graphwriter.Config{Chat: chat})

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	updated := h.waitUpdated(t, "completed-1")
	require.Equal(t, 2, updated.Data.ReportsGenerated)
	require.Equal(t, &events.Usage{Calls: 4, PromptTokens: 400, CompletionTokens: 40, SkippedRecords: 4}, updated.Data.Usage,
		"each report is asked twice")
	require.Equal(t, 4, chat.count(prompts.KindCommunityReport))
	cs := byCluster(t, h.communities(t))
	require.Equal(t, "Alpha1, Alpha2 and Alpha3", cs["ALPHA"].Title)
	require.True(t, strings.HasPrefix(cs["BETA"].Hash, "fallback:"), cs["BETA"].Hash)
	h.requireNoDeadLetters(t)

	// Fallbacks are not kept once the LLM answers: the next build asks
	// again for Beta, whose community did not change.
	chat.setBadReports(false)
	h.ingest(t, "extracted-2", alphaOnly(secondJob))
	h.complete(t, "completed-2", secondJob)
	updated = h.waitUpdated(t, "completed-2")
	require.Equal(t, 2, updated.Data.ReportsGenerated)
	require.Zero(t, updated.Data.ReportsReused)
	require.Equal(t, 6, chat.count(prompts.KindCommunityReport))
	for _, c := range h.communities(t) {
		require.True(t, strings.HasPrefix(c.Hash, "llm:"), c.Hash)
		require.True(t, strings.HasPrefix(c.Title, "Report "), c.Title)
	}
}

func TestLongDescriptionsSummarisedOnce(t *testing.T) {
	h := newHarness(t)
	chat := newFakeChat()
	// 40 tokens: about 160 bytes.
	h.runGraphWriterWith(t, graphwriter.Config{Chat: chat, SummaryThresholdTokens: 40})
	ctx := context.Background()

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	// The second document makes Alpha1's descriptions long.
	long := strings.Repeat("Alpha1 keeps a long diary. ", 7)
	h.ingest(t, "extracted-2", chunkOf(secondJob, 0, 1, []events.Entity{{Name: "Alpha1", Type: "PERSON", Description: long}}, nil))
	joined := "Member 1 of Alpha.\n" + long
	require.Equal(t, joined, h.description(t, "ALPHA1"))

	h.complete(t, "completed-1", secondJob)
	updated := h.waitUpdated(t, "completed-1")
	require.Equal(t, 3, updated.Data.Usage.Calls, "one summary and two reports")
	require.Equal(t, 1, chat.count(prompts.KindSummarize))
	summary := "Alpha1, summarised from 2 descriptions."
	require.Equal(t, summary, h.description(t, "ALPHA1"))
	require.Equal(t, "Member 2 of Alpha.", h.description(t, "ALPHA2"), "short descriptions stay as they are")
	alphaInputs := 0
	for _, input := range chat.inputs() {
		if strings.Contains(input, `"Alpha1"`) {
			alphaInputs++
			require.Contains(t, input, summary, "the report is written from the summary")
			require.NotContains(t, input, "long diary")
		}
	}
	require.Equal(t, 1, alphaInputs)

	// Deleting the document that made the descriptions long brings the
	// joined description back at once, without asking the LLM.
	require.NoError(t, h.graph.DeleteDocument(ctx, booksNS, secondJob.DocID))
	require.Equal(t, "Member 1 of Alpha.", h.description(t, "ALPHA1"))
	h.complete(t, "completed-2", secondJob)
	updated = h.waitUpdated(t, "completed-2")
	require.Equal(t, 1, updated.Data.ReportsGenerated, "Alpha's members' descriptions changed")
	require.Equal(t, 1, updated.Data.ReportsReused)
	require.Equal(t, 1, chat.count(prompts.KindSummarize))
	require.Equal(t, "Member 1 of Alpha.", h.description(t, "ALPHA1"))
	h.requireNoDeadLetters(t)
}

// blockingChat answers nothing: every call waits until its context ends.
type blockingChat struct{ started chan struct{} }

func (c *blockingChat) Model() string { return "blocking" }

func (c *blockingChat) Complete(ctx context.Context, _ llm.ChatRequest) (llm.ChatResponse, error) {
	select {
	case c.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return llm.ChatResponse{}, ctx.Err()
}

func TestShutdownInterruptsBuild(t *testing.T) {
	h := newHarness(t)
	chat := &blockingChat{started: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- graphwriter.New(graphwriter.Config{Chat: chat}, h.bus, h.graph).Run(ctx) }()

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	select {
	case <-chat.started:
	case <-time.After(15 * time.Second):
		t.Fatal("the build never asked the LLM")
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited for the build")
	}
	require.Empty(t, h.communities(t), "an interrupted build stores nothing")
	built, err := h.graph.CommunitiesBuilt(context.Background(), booksNS)
	require.NoError(t, err)
	require.Zero(t, built)
}

// TestRebuildWaitsForQuiet: a job completed while the namespace is still
// ingesting waits for the namespace to go quiet, so two jobs in a row cost
// one rebuild, with reports for the final communities only.
func TestRebuildWaitsForQuiet(t *testing.T) {
	h := newHarness(t)
	chat := newFakeChat()
	h.runGraphWriterWith(t, graphwriter.Config{Chat: chat, QuietPeriod: time.Second, MaxStaleness: time.Minute})

	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	h.ingest(t, "extracted-2", alphaOnly(secondJob))
	h.complete(t, "completed-2", secondJob)

	updated := h.waitUpdated(t, "completed-1")
	require.Equal(t, h.generation(t), updated.Data.Generation, "the rebuild covers the second job")
	require.Equal(t, 2, updated.Data.ReportsGenerated)
	// The second completion finds the communities built.
	time.Sleep(2 * time.Second)
	_, found := h.findUpdated(t, "completed-2")
	require.False(t, found, "a second rebuild")
	require.Equal(t, 2, chat.count(prompts.KindCommunityReport), "one report per final community")
	h.requireNoDeadLetters(t)
}

// TestRebuildStalenessIsBounded: a namespace that never goes quiet still
// gets its communities rebuilt, MaxStaleness after the job completed.
func TestRebuildStalenessIsBounded(t *testing.T) {
	h := newHarness(t)
	h.runGraphWriterWith(t, graphwriter.Config{QuietPeriod: time.Hour, MaxStaleness: 2 * time.Second})

	start := time.Now()
	h.ingest(t, "extracted-1", twoClusters(firstJob)...)
	h.complete(t, "completed-1", firstJob)
	// Keep changing the graph.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			c := alphaOnly(secondJob)
			c.Entities[0].Description = fmt.Sprintf("Alpha2, version %d.", i)
			_ = bus.Publish(context.Background(), h.bus.Pub, events.New(fmt.Sprintf("busy-%d", i), "test", c, time.Now()))
		}
	}()
	updated := h.waitUpdated(t, "completed-1")
	require.Less(t, time.Since(start), 20*time.Second)
	require.NotZero(t, updated.Data.Communities)
}
