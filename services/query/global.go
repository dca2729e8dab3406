package query

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kgraph-dev/kgraph/events"
	"github.com/kgraph-dev/kgraph/libs/graph"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// extractiveReports is how many reports an extractive global answer lists.
const extractiveReports = 5

// reportHeader is the header of the community table of a map call.
var reportHeader = []any{"id", "content", "rating", "importance"}

// planGlobal prepares nano-graphrag's global query (global_query): the
// reports of the communities up to the level, best rated (then largest)
// first, in batches under the global budget. The map step runs when the
// answer is written, after the references are out.
func (s *Service) planGlobal(ctx context.Context, r request) (plan, error) {
	// The store returns them ordered and cut, so a global query reads at
	// most GlobalMaxCommunities reports however many the namespace has.
	comms, err := s.graph.TopCommunities(ctx, r.namespace, r.Level, s.cfg.GlobalMaxCommunities)
	if err != nil {
		return plan{}, fmt.Errorf("read communities: %w", err)
	}
	batches, used := batchReports(comms, r.GlobalMaxTokensReport)
	if len(used) == 0 {
		p := s.nothingFound(r)
		if s.chat == nil {
			p.answer = fmt.Sprintf("No community reports yet in namespace %q: global queries answer from the reports written "+
				"about the graph's communities, and none are there (yet) up to level %d.", r.namespace, r.Level)
		}
		return p, nil
	}
	p := plan{refs: emptyReferences(), stage: "query-reduce"}
	p.refs.Reports = reportRefs(used)
	p.context = strings.Join(batches, "\n")
	if s.chat == nil {
		top := used[:min(len(used), extractiveReports)]
		if !r.OnlyContext { // the references are what the answer quotes
			p.refs.Reports = reportRefs(top)
		}
		p.answerer = events.AnswererExtractive
		p.answer = extractiveReportAnswer(top)
		return p, nil
	}
	p.answerer = events.AnswererLLM
	p.final = func(ctx context.Context, u *usage) ([]llm.Message, string, error) {
		points, err := s.mapReports(ctx, r.question, batches, u)
		if err != nil {
			return nil, "", err
		}
		analysts, ok := reducePoints(points, r.GlobalMaxTokensReport)
		if !ok {
			return nil, prompts.FailResponse, nil
		}
		return []llm.Message{
			{Role: llm.RoleSystem, Content: prompts.GlobalReduce(analysts, r.ResponseType)},
			{Role: llm.RoleUser, Content: r.question},
		}, "", nil
	}
	return p, nil
}

// batchReports groups the reports into map contexts whose rows fit in
// budget each. A report too long for a batch of its own is cut to fit
// (nano-graphrag would loop forever on it). It returns the contexts and
// the communities they hold, in order.
func batchReports(comms []graph.CommunityMatch, budget int) (contexts []string, used []graph.Community) {
	pk := packer{budget: budget}
	flush := func() {
		if len(pk.rows) > 0 {
			contexts = append(contexts, "-----Reports-----\n```csv\n"+csvTable(reportHeader, pk.rows)+"\n```")
		}
		pk = packer{budget: budget}
	}
	for _, c := range comms {
		row := func(report string) string {
			return csvRow(len(pk.rows), report, c.Rating, c.Members)
		}
		report := reportString(c.Community)
		if pk.add(row(report)) {
			used = append(used, c.Community)
			continue
		}
		flush()
		if pk.add(row(report)) {
			used = append(used, c.Community)
			continue
		}
		// Alone and still too long: cut the report until the row fits.
		for tokens := budget - estimateTokens(row("")+"\n"); tokens > 0; tokens = tokens * 9 / 10 {
			pk.full = false
			if pk.add(row(truncateToTokens(report, tokens))) {
				used = append(used, c.Community)
				break
			}
		}
		pk.full = false
	}
	flush()
	return contexts, used
}

// point is one key point of a map call's answer.
type point struct {
	analyst     int // the batch, from 1
	description string
	score       float64
}

// mapReports runs one map call per batch, concurrently, and returns the
// points of every batch in batch order. A reply that is not the expected
// JSON contributes no points; a failed call fails the query.
func (s *Service) mapReports(ctx context.Context, question string, batches []string, u *usage) ([]point, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]point, len(batches))
	slots := make(chan struct{}, s.cfg.MapConcurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i, batch := range batches {
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return
			}
			resp, err := s.chat.Complete(ctx, llm.ChatRequest{
				Messages: []llm.Message{
					{Role: llm.RoleSystem, Content: prompts.GlobalMap(batch)},
					{Role: llm.RoleUser, Content: question},
				},
				JSON:  true,
				Stage: "query-map",
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("map batch %d of %d: %w", i+1, len(batches), err)
				}
				mu.Unlock()
				cancel()
				return
			}
			u.add(resp, s.cost(resp))
			pts, skipped := parsePoints(resp.Content)
			if skipped > 0 {
				s.log.Warn("map reply has unusable points", "batch", i+1, "skipped", skipped, "kept", len(pts))
			}
			for j := range pts {
				pts[j].analyst = i + 1
			}
			results[i] = pts
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil { // the caller's context ended while calls waited
		return nil, fmt.Errorf("map step: %w", context.Cause(ctx))
	}
	return slices.Concat(results...), nil
}

// parsePoints reads {"points":[{"description","score"}]} tolerantly: the
// object may be wrapped in prose or a code fence, a bare array of points is
// accepted, a point without a score scores 1 (as in nano-graphrag), and a
// point without a description or with a score that is not a number is
// skipped and counted. A reply with no such object yields no points.
func parsePoints(content string) (points []point, skipped int) {
	var raw []json.RawMessage
	data := []byte(strings.TrimSpace(content))
	if !decodePoints(data, &raw) {
		start, end := bytes.IndexAny(data, "{["), bytes.LastIndexAny(data, "}]")
		if start < 0 || end <= start || !decodePoints(data[start:end+1], &raw) {
			return nil, 1
		}
	}
	for _, item := range raw {
		var p struct {
			Description any `json:"description"`
			Score       any `json:"score"`
		}
		if json.Unmarshal(item, &p) != nil {
			skipped++
			continue
		}
		desc, ok := p.Description.(string)
		score, scoreOK := scoreOf(p.Score)
		if !ok || strings.TrimSpace(desc) == "" || !scoreOK {
			skipped++
			continue
		}
		points = append(points, point{description: strings.TrimSpace(desc), score: score})
	}
	return points, skipped
}

// decodePoints decodes an object with a points array, or a bare array.
func decodePoints(data []byte, raw *[]json.RawMessage) bool {
	var obj struct {
		Points []json.RawMessage `json:"points"`
	}
	if json.Unmarshal(data, &obj) == nil && obj.Points != nil {
		*raw = obj.Points
		return true
	}
	return json.Unmarshal(data, raw) == nil
}

func scoreOf(v any) (float64, bool) {
	switch s := v.(type) {
	case nil:
		return 1, true
	case float64:
		return s, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil
	default:
		return 0, false
	}
}

// reducePoints keeps the points scoring above 0, best first, and renders
// them as the analysts' reports under budget; ok is false when none is
// left, and the answer is then nano-graphrag's fail response.
func reducePoints(points []point, budget int) (analysts string, ok bool) {
	points = slices.DeleteFunc(points, func(p point) bool { return p.score <= 0 })
	slices.SortStableFunc(points, func(a, b point) int { return cmp.Compare(b.score, a.score) })
	rows, _ := pack(points, budget, func(_ int, p point) string {
		return fmt.Sprintf("----Analyst %d----\nImportance Score: %s\n%s\n", p.analyst, formatNumber(p.score), p.description)
	})
	if len(rows) == 0 {
		return "", false
	}
	return strings.Join(rows, "\n"), true
}

// extractiveReportAnswer lists the best-rated reports' titles and summaries.
func extractiveReportAnswer(reports []graph.Community) string {
	var b strings.Builder
	b.WriteString("Extractive answer (no LLM configured).\nTop community reports:")
	for _, c := range reports {
		fmt.Fprintf(&b, "\n- %s (rating %s): %s", cmp.Or(c.Title, "Report"), formatNumber(c.Rating), firstLine(c.Summary))
	}
	return b.String()
}
