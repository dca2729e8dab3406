package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/kgraph-dev/kgraph/events"
)

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

// streamReferences opens a streamed answer.
type streamReferences struct {
	Mode    string `json:"mode"`
	Context string `json:"context"`
	events.References
}

// streamDone ends a streamed answer.
type streamDone struct {
	LatencyMS float64 `json:"latency_ms"`
	Cached    bool    `json:"cached"`
	Model     string  `json:"model"`
	Answerer  string  `json:"answerer"`
}

// streamError ends a streamed answer that failed.
type streamError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// listedReferences is how many chunk and entity references are named.
const listedReferences = 5

func (e *environment) query(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("query", &g, true)
	mode := fs.String("mode", events.ModeLocal, "local, global or naive")
	topK := fs.Int("top-k", 0, "entities (local) or chunks (naive) retrieved; the server's default when 0")
	onlyContext := fs.Bool("only-context", false, "print the retrieved context without asking the LLM")
	noCache := fs.Bool("no-cache", false, "answer afresh, bypassing the cache of answers")
	noStream := fs.Bool("no-stream", false, "wait for the whole answer instead of printing it as it is written")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: kg query "QUESTION" [flags]`)
		fs.PrintDefaults()
	}
	positional, err := e.parse(fs, &g, args)
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
	body := map[string]any{"question": positional[0], "mode": *mode, "only_context": *onlyContext, "no_cache": *noCache}
	if ns := g.namespace(); ns != "" {
		body["namespace"] = ns
	}
	if *topK > 0 {
		body["top_k"] = *topK
	}
	// --json is for scripts: the one reply of the plain endpoint.
	if !*noStream && !g.json {
		return e.streamQuery(ctx, c, body, *onlyContext)
	}
	raw, err := c.do(ctx, http.MethodPost, "/api/v1/query", body)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
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

// streamQuery prints the answer as its pieces arrive, then the references
// and how it was answered.
func (e *environment) streamQuery(ctx context.Context, c *client, body map[string]any, onlyContext bool) error {
	var refs streamReferences
	var done streamDone
	finished, wrote, endsLine := false, false, true
	err := c.stream(ctx, http.MethodPost, "/api/v1/query/stream", body, func(event string, data []byte) error {
		switch event {
		case events.StreamReferences:
			if err := json.Unmarshal(data, &refs); err != nil {
				return fmt.Errorf("decode references: %w", err)
			}
		case events.StreamDelta:
			var d struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			if d.Text == "" {
				return nil
			}
			if _, err := fmt.Fprint(e.stdout, d.Text); err != nil {
				return fmt.Errorf("print answer: %w", err)
			}
			wrote, endsLine = true, strings.HasSuffix(d.Text, "\n")
		case events.StreamDone:
			if err := json.Unmarshal(data, &done); err != nil {
				return fmt.Errorf("decode end of answer: %w", err)
			}
			finished = true
		case events.StreamError:
			var se streamError
			if err := json.Unmarshal(data, &se); err != nil {
				return fmt.Errorf("decode query error: %w", err)
			}
			return &ProblemError{Status: se.Status, Title: http.StatusText(se.Status), Detail: se.Message}
		}
		return nil
	})
	if wrote && !endsLine {
		fmt.Fprintln(e.stdout)
	}
	if err != nil {
		return err
	}
	if !finished {
		return errors.New("the answer's stream ended before the answer did")
	}
	if onlyContext {
		fmt.Fprintln(e.stdout, strings.TrimRight(refs.Context, "\n"))
	}
	fmt.Fprintln(e.stdout)
	printReferences(e, queryReply{Mode: refs.Mode, References: refs.References, Answerer: done.Answerer, Model: done.Model,
		LatencyMS: done.LatencyMS, Cached: done.Cached})
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
