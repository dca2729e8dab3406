package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
)

func (e *environment) jobs(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "show" && args[0] != "watch" {
		fmt.Fprintln(e.stderr, "Usage: kg jobs show ID | kg jobs watch ID")
		return errors.New("jobs takes show ID or watch ID")
	}
	sub := args[0]
	var g globals
	fs := e.flags("jobs "+sub, &g)
	watch := fs.Bool("watch", e.terminal, "show progress while waiting (watch only; default when stdout is a terminal)")
	positional, err := parse(fs, args[1:])
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 1 {
		return fmt.Errorf("jobs %s takes one job id", sub)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	out := newRenderer(e.stdout, e.terminal, *watch && !g.json)

	var v jobView
	if sub == "show" {
		v, err = c.getJob(ctx, positional[0])
	} else {
		v, err = c.waitJob(ctx, positional[0], out.progress)
		out.done()
	}
	if err != nil {
		return err
	}
	switch {
	case g.json:
		if err := out.json(v.raw); err != nil {
			return err
		}
	case sub == "show":
		printJob(e, v)
	default:
		out.println(finalLine(v))
	}
	if v.Status == statusFailed {
		return fmt.Errorf("job %s failed: %s", v.JobID, v.Error)
	}
	return nil
}

func printJob(e *environment, v jobView) {
	w := e.stdout
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(w, "%-10s %s\n", k, val)
		}
	}
	row("job", v.JobID)
	row("doc", v.DocID)
	row("namespace", v.Namespace)
	row("status", v.Status)
	row("earlier", v.ExistingJobID)
	row("progress", strings.TrimPrefix(progressLine(jobView{Progress: v.Progress, Status: v.Status}), " "))
	row("relations", fmt.Sprint(v.Progress.Relations))
	row("extractor", v.Extractor)
	u := v.Usage
	if u.Calls > 0 {
		row("llm", fmt.Sprintf("%d calls (%d cached), %d prompt + %d completion tokens, $%.4f",
			u.Calls, u.CachedCalls, u.PromptTokens, u.CompletionTokens, u.CostUSD))
	}
	if !v.CreatedAt.IsZero() {
		row("created", v.CreatedAt.Format(time.RFC3339))
		row("updated", v.UpdatedAt.Format(time.RFC3339))
	}
	row("error", v.Error)
}

// queryReply is POST /api/v1/query.
type queryReply struct {
	Answer     string            `json:"answer"`
	Mode       string            `json:"mode"`
	LatencyMS  float64           `json:"latency_ms"`
	Answerer   string            `json:"answerer"`
	Model      string            `json:"model"`
	Context    string            `json:"context"`
	Cached     bool              `json:"cached"`
	References events.References `json:"references"`
}

// listedReferences is how many chunk and entity references are named.
const listedReferences = 5

func (e *environment) query(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("query", &g)
	mode := fs.String("mode", events.ModeLocal, "local, global or naive")
	namespace := fs.String("namespace", "", "namespace; the server's default when empty")
	topK := fs.Int("top-k", 0, "entities (local) or chunks (naive) retrieved; the server's default when 0")
	onlyContext := fs.Bool("only-context", false, "print the retrieved context without asking the LLM")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: kg query "QUESTION" [flags]`)
		fs.PrintDefaults()
	}
	positional, err := parse(fs, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 1 {
		fs.Usage()
		return errors.New(`query takes one question (quote it: kg query "Who is …?")`)
	}
	if !slices.Contains(events.QueryModes(), *mode) {
		return fmt.Errorf("--mode %q: want one of %s", *mode, strings.Join(events.QueryModes(), ", "))
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	body := map[string]any{"question": positional[0], "mode": *mode, "only_context": *onlyContext}
	if *namespace != "" {
		body["namespace"] = *namespace
	}
	if *topK > 0 {
		body["top_k"] = *topK
	}
	raw, err := c.do(ctx, http.MethodPost, "/api/v1/query", body)
	if err != nil {
		return err
	}
	if g.json {
		return newRenderer(e.stdout, false, false).json(raw)
	}
	var r queryReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	text := r.Answer
	if *onlyContext {
		text = r.Context
	}
	fmt.Fprintln(e.stdout, strings.TrimRight(text, "\n"))
	fmt.Fprintln(e.stdout)
	printReferences(e, r)
	return nil
}

func printReferences(e *environment, r queryReply) {
	w := e.stdout
	refs := r.References
	fmt.Fprintf(w, "references: %d entities, %d relations, %d chunks, %d reports\n",
		len(refs.Entities), len(refs.Relations), len(refs.Chunks), len(refs.Reports))
	if len(refs.Chunks) > 0 {
		var ids []string
		for _, ch := range refs.Chunks[:min(len(refs.Chunks), listedReferences)] {
			ids = append(ids, fmt.Sprintf("%s#%d", ch.DocID, ch.Index))
		}
		fmt.Fprintf(w, "  chunks: %s%s\n", strings.Join(ids, ", "), more(len(refs.Chunks)))
	}
	if len(refs.Entities) > 0 {
		var names []string
		for _, en := range refs.Entities[:min(len(refs.Entities), listedReferences)] {
			names = append(names, en.Name)
		}
		fmt.Fprintf(w, "  entities: %s%s\n", strings.Join(names, ", "), more(len(refs.Entities)))
	}
	if len(refs.Reports) > 0 {
		var titles []string
		for _, rep := range refs.Reports[:min(len(refs.Reports), listedReferences)] {
			titles = append(titles, rep.Title)
		}
		fmt.Fprintf(w, "  reports: %s%s\n", strings.Join(titles, ", "), more(len(refs.Reports)))
	}
	answerer := r.Answerer
	if r.Model != "" {
		answerer += " " + r.Model
	}
	cached := ""
	if r.Cached {
		cached = ", cached"
	}
	fmt.Fprintf(w, "mode %s, answered by %s in %.0f ms%s\n", r.Mode, answerer, r.LatencyMS, cached)
}

func more(n int) string {
	if n > listedReferences {
		return fmt.Sprintf(" … (%d more)", n-listedReferences)
	}
	return ""
}

// healthReply is GET /api/v1/health.
type healthReply struct {
	Status   string `json:"status"`
	Backends map[string]struct {
		Status    string  `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
		Error     string  `json:"error"`
	} `json:"backends"`
}

func (e *environment) health(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("health", &g)
	positional, err := parse(fs, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 0 {
		return errors.New("health takes no arguments")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	r, err := c.send(ctx, http.MethodGet, "/api/v1/health", nil)
	if err != nil {
		return err
	}
	var h healthReply
	// An unhealthy edge answers 503 with the same body, which says why.
	if r.contentType != "application/json" || json.Unmarshal(r.raw, &h) != nil || h.Status == "" {
		return r.problem()
	}
	if g.json {
		if err := newRenderer(e.stdout, false, false).json(r.raw); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%s (%s)\n", h.Status, c.base)
		names := make([]string, 0, len(h.Backends))
		for name := range h.Backends {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			b := h.Backends[name]
			line := fmt.Sprintf("  %-8s %s %.1f ms", name, b.Status, b.LatencyMS)
			if b.Error != "" {
				line += ": " + b.Error
			}
			fmt.Fprintln(e.stdout, line)
		}
	}
	if h.Status == "unhealthy" {
		return fmt.Errorf("kgraph at %s is unhealthy", c.base)
	}
	return nil
}
