package graphwriter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
	"github.com/kgraph-dev/kgraph/services/graph-writer/internal/community"
)

// Kinds of report, the prefix of a community's Hash. A report is reused
// only by a build that would write the same kind: reports written without
// an LLM are replaced once one is configured, and fallbacks for unusable
// LLM answers are retried by the next build.
const (
	reportLLM        = "llm"
	reportExtractive = "extractive"
	reportFallback   = "fallback"
)

// reportAttempts is how often a report is asked for before an unusable
// answer gets the extractive fallback.
const reportAttempts = 2

// handleCompleted rebuilds the namespace's communities unless they were
// built from the graph as it is now, once the namespace has been quiet for
// QuietPeriod (at most MaxStaleness after the job completed). A burst of
// completions thus costs one build: the first waits for the burst to end
// and sees all of its changes, the others find them built.
func (s *Service) handleCompleted(ctx context.Context, e events.Event[events.JobCompleted]) error {
	ns := e.Data.Namespace
	generation, err := s.graph.Generation(ctx, ns)
	if err != nil {
		return err
	}
	built, err := s.graph.CommunitiesBuilt(ctx, ns)
	if err != nil {
		return err
	}
	if generation == built.Generation {
		return nil
	}
	if generation, err = s.awaitQuiet(ctx, ns, generation, e.Time); err != nil {
		return err
	}
	b, err := s.build(ctx, ns, generation)
	if err != nil {
		return fmt.Errorf("build communities of %s at generation %d: %w", ns, generation, err)
	}
	updated := events.CommunitiesUpdated{JobRef: e.Data.JobRef, Generation: generation, Communities: len(b.communities),
		Levels: b.levels, ReportsGenerated: b.generated, ReportsReused: b.reused}
	if s.llm != nil {
		updated.Usage = &b.usage
	}
	s.bus.Logger.Info("communities rebuilt", "namespace", ns, "generation", generation, "communities", len(b.communities),
		"reports_generated", b.generated, "reports_reused", b.reused)
	return bus.Publish(ctx, s.bus.Pub, events.Caused(e, Source, updated, s.now()))
}

// awaitQuiet waits until the namespace's generation has not changed for
// QuietPeriod, or until MaxStaleness has passed since completed, and
// returns the generation then. The delivery stays in progress meanwhile
// (the consumer extends it), and a restart redelivers it.
func (s *Service) awaitQuiet(ctx context.Context, ns string, generation uint64, completed time.Time) (uint64, error) {
	if s.cfg.QuietPeriod <= 0 {
		return generation, nil
	}
	deadline := completed.Add(s.cfg.MaxStaleness)
	lastChange := s.now()
	poll := min(s.cfg.QuietPeriod/4, time.Second)
	for s.now().Sub(lastChange) < s.cfg.QuietPeriod && s.now().Before(deadline) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
		g, err := s.graph.Generation(ctx, ns)
		if err != nil {
			return 0, err
		}
		if g != generation {
			generation, lastChange = g, s.now()
		}
	}
	return generation, nil
}

// build is one rebuild's outcome.
type build struct {
	communities []graph.Community
	levels      int
	generated   int
	reused      int
	usage       events.Usage
}

// contentBatchKeys bounds the members whose entities and relations a
// rebuild holds at once: communities are filled, hashed and reported a
// batch at a time, so a rebuild's memory is the clustering's edge list plus
// one batch, not the namespace's descriptions.
const contentBatchKeys = 4096

// build clusters the graph, summarises long descriptions of clustered
// entities, writes the reports of new and changed communities and stores
// the communities as built from generation.
func (s *Service) build(ctx context.Context, ns string, generation uint64) (build, error) {
	var b build
	detected, err := s.cluster(ctx, ns)
	if err != nil {
		return b, err
	}
	if s.llm != nil {
		var clustered []string
		for _, d := range detected {
			if d.Level == 0 {
				clustered = append(clustered, d.Keys...)
			}
		}
		if err := s.summarize(ctx, ns, clustered, &b.usage); err != nil {
			return b, err
		}
	}
	kind := reportExtractive
	if s.llm != nil {
		kind = reportLLM
	}
	b.communities = make([]graph.Community, len(detected))
	for i, d := range detected {
		b.communities[i] = d.Community
		b.levels = max(b.levels, d.Level+1)
	}
	// Deepest level first, so that a community whose tables overflow the
	// budget can be described by its sub-communities' reports.
	for level := b.levels - 1; level >= 0; level-- {
		var atLevel []int
		for i, d := range detected {
			if d.Level == level {
				atLevel = append(atLevel, i)
			}
		}
		for len(atLevel) > 0 {
			n, keys := 0, 0
			for n < len(atLevel) && (n == 0 || keys+len(detected[atLevel[n]].Keys) <= contentBatchKeys) {
				keys += len(detected[atLevel[n]].Keys)
				n++
			}
			if err := s.reportBatch(ctx, ns, kind, detected, atLevel[:n], &b); err != nil {
				return b, err
			}
			atLevel = atLevel[n:]
		}
	}
	if err := s.graph.ReplaceCommunities(ctx, ns, generation, b.communities); err != nil {
		return b, err
	}
	return b, nil
}

// cluster clusters the namespace's edges as the store streams them; the
// clustering's memory is let go on return, before the reports.
func (s *Service) cluster(ctx context.Context, ns string) ([]community.Community, error) {
	return community.Cluster(func(fn func(graph.Edge) error) error { return s.graph.EachEdge(ctx, ns, fn) },
		community.Options{MaxClusterSize: s.cfg.MaxClusterSize, Seed: s.cfg.Seed})
}

// reportBatch reads the content of the communities batch indexes, reuses
// the reports of those whose content is unchanged, writes the others', and
// lets the content go.
func (s *Service) reportBatch(ctx context.Context, ns, kind string, detected []community.Community, batch []int,
	b *build) error {
	var keys []string
	ptrs := make([]*community.Community, len(batch))
	for j, i := range batch {
		keys = append(keys, detected[i].Keys...)
		ptrs[j] = &detected[i]
	}
	ents, err := s.graph.Entities(ctx, ns, keys)
	if err != nil {
		return err
	}
	// Only the relations among the batch's members: their relations to the
	// rest of the graph (thousands for a hub) are no community's content.
	rels, err := s.graph.RelationsAmong(ctx, ns, keys)
	if err != nil {
		return err
	}
	byKey := make(map[string]graph.Entity, len(ents))
	for _, e := range ents {
		byKey[e.Key] = e
	}
	community.Fill(ptrs, byKey, rels)
	defer func() {
		for _, p := range ptrs {
			p.Entities, p.Relations = nil, nil
		}
	}()

	// The reports a batch can keep are read with it, by id (the same
	// members at the same level have the same id), not held for the whole
	// namespace while the new ones are written. A batch is of one level.
	ids := make([]string, len(batch))
	for j, i := range batch {
		ids[j] = detected[i].ID
	}
	stored, err := s.graph.CommunitiesByID(ctx, ns, detected[batch[0]].Level, ids)
	if err != nil {
		return err
	}
	previous := make(map[string]graph.Community, len(stored))
	for _, c := range stored {
		previous[c.ID] = c
	}
	var todo []int
	for _, i := range batch {
		b.communities[i].Hash = kind + ":" + detected[i].ContentHash
		if c, ok := previous[detected[i].ID]; ok && c.Hash == b.communities[i].Hash {
			community.ReportOf(c).ApplyTo(&b.communities[i])
			b.reused++
			continue
		}
		todo = append(todo, i)
	}
	usages := make([]events.Usage, len(todo))
	err = parallel(ctx, len(todo), s.cfg.LLMConcurrency, func(ctx context.Context, j int) error {
		i := todo[j]
		subs := make([]community.SubReport, 0, len(detected[i].Children))
		for _, child := range detected[i].Children {
			subs = append(subs, community.SubReport{Keys: b.communities[child].Keys, Report: community.ReportOf(b.communities[child])})
		}
		r, kind, err := s.report(ctx, ns, detected[i], subs, &usages[j])
		if err != nil {
			return err
		}
		r.ApplyTo(&b.communities[i])
		b.communities[i].Hash = kind + ":" + detected[i].ContentHash
		return nil
	})
	if err != nil {
		return err
	}
	b.generated += len(todo)
	for _, u := range usages {
		b.usage = b.usage.Add(u)
	}
	return nil
}

// report writes one community's report and returns its kind.
func (s *Service) report(ctx context.Context, ns string, c community.Community, subs []community.SubReport, usage *events.Usage) (community.Report, string, error) {
	if s.llm == nil {
		return community.Extractive(c), reportExtractive, nil
	}
	req := llm.ChatRequest{
		Messages: []llm.Message{{Role: llm.RoleUser, Content: prompts.CommunityReport(community.Pack(c, subs, s.cfg.ReportBudgetTokens))}},
		JSON:     true,
		Stage:    "report",
	}
	parses := func(answer string) bool { _, err := community.ParseReport(answer); return err == nil }
	answer, ok, err := s.llm.Complete(ctx, req, reportAttempts, parses, usage)
	if err != nil {
		if err := s.llmFailure(ctx, err); err != nil {
			return community.Report{}, "", err
		}
		s.bus.Logger.Warn("community report failed, using an extractive one", "namespace", ns, "community", c.ID, "err", err)
		return community.Extractive(c), reportFallback, nil
	}
	if !ok {
		s.bus.Logger.Warn("community report unusable, using an extractive one", "namespace", ns, "community", c.ID,
			"attempts", reportAttempts, "answer", clip(answer, 50))
		return community.Extractive(c), reportFallback, nil
	}
	r, err := community.ParseReport(answer)
	if err != nil {
		return community.Report{}, "", fmt.Errorf("community %s: %w", c.ID, err) // accepted answers parse
	}
	return r, reportLLM, nil
}

// summarize asks for a summary of every entity of keys whose description
// (joined descriptions, or a summary) exceeds the threshold, and stores the
// summaries, reading the entities a batch at a time. A stored summary is
// clipped to the threshold, so a summarised entity never qualifies again
// while its descriptions stay the same; the reads that follow (the
// communities' content) see the summaries.
func (s *Service) summarize(ctx context.Context, ns string, keys []string, usage *events.Usage) error {
	threshold := s.cfg.SummaryThresholdTokens
	for batch := range slices.Chunk(keys, contentBatchKeys) {
		ents, err := s.graph.Entities(ctx, ns, batch)
		if err != nil {
			return err
		}
		var todo []graph.Entity
		for _, e := range ents {
			if community.EstimateTokens(e.Description) > threshold {
				todo = append(todo, e)
			}
		}
		summaries := make([]graph.Summary, len(todo))
		usages := make([]events.Usage, len(todo))
		err = parallel(ctx, len(todo), s.cfg.LLMConcurrency, func(ctx context.Context, j int) error {
			e := todo[j]
			req := llm.ChatRequest{
				Messages:  []llm.Message{{Role: llm.RoleUser, Content: prompts.SummarizeDescriptions(e.Name, strings.Split(e.Description, "\n"))}},
				MaxTokens: threshold,
				Stage:     "summarize",
			}
			nonEmpty := func(answer string) bool { return strings.TrimSpace(answer) != "" }
			answer, ok, err := s.llm.Complete(ctx, req, 1, nonEmpty, &usages[j])
			if err != nil {
				if err := s.llmFailure(ctx, err); err != nil {
					return err
				}
				s.bus.Logger.Warn("description summary failed, keeping the descriptions", "namespace", ns, "entity", e.Key, "err", err)
				return nil
			}
			if ok {
				summaries[j] = graph.Summary{Key: e.Key, SourceHash: graph.DescriptionHash(e.Description), Text: clip(answer, threshold)}
			}
			return nil
		})
		if err != nil {
			return err
		}
		var made []graph.Summary
		for j, sum := range summaries {
			*usage = usage.Add(usages[j])
			if sum.Key != "" {
				made = append(made, sum)
			}
		}
		if len(made) > 0 {
			if err := s.graph.SetSummaries(ctx, ns, made); err != nil {
				return err
			}
		}
	}
	return nil
}

// llmFailure decides what a failed LLM call means for the build: nil when
// the request itself was refused (a client error no retry fixes; the build
// goes on without that answer), otherwise the error to end the build with,
// marked unavailable when the provider is down so that the build is retried
// for as long as the outage lasts.
func (s *Service) llmFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	var apiErr *llm.APIError
	if errors.As(err, &apiErr) && !apiErr.Retryable {
		return nil
	}
	return bus.Unavailable(err)
}

// clip trims text to at most maxTokens estimated tokens, at a sentence end
// when one is in its second half.
func clip(text string, maxTokens int) string {
	text = strings.TrimSpace(text)
	limit := maxTokens * 4
	if len(text) <= limit {
		return text
	}
	for limit > 0 && !utf8.RuneStart(text[limit]) {
		limit--
	}
	cut := text[:limit]
	if i := strings.LastIndex(cut, ". "); i >= len(cut)/2 {
		cut = cut[:i+1]
	}
	return strings.TrimSpace(cut)
}

// parallel runs fn for 0..n-1 on at most workers goroutines and returns the
// first error, which cancels the calls still to come.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	slots := make(chan struct{}, max(1, workers))
launch:
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
