package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/events"
)

// barWidth is the number of cells of a progress bar.
const barWidth = 10

// defaultColumns is the terminal width assumed when it cannot be asked.
const defaultColumns = 80

// terminalWidth is the width of the terminal w is: asked of the terminal,
// else $COLUMNS, else 80.
func terminalWidth(w io.Writer, getenv func(string) string) int {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		if n := windowColumns(f); n > 0 {
			return n
		}
	}
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return defaultColumns
}

// progressLine is a job's one-line progress:
// job_… [#####.....]  52% extracting 21/40 chunks, 310 entities (doc).
func progressLine(v jobView) string {
	p := v.Progress
	pct := min(max(p.Percent, 0), 100)
	filled := pct * barWidth / 100
	bar := strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled)
	stage := p.Stage
	if stage == "" {
		stage = v.Status
	}
	line := fmt.Sprintf("%s [%s] %3d%% %s", v.JobID, bar, pct, stage)
	if p.ChunksTotal > 0 {
		line += fmt.Sprintf(" %d/%d chunks, %d entities", p.ChunksProcessed, p.ChunksTotal, p.Entities)
	}
	if v.DocID != "" {
		line += " (" + v.DocID + ")"
	}
	return line
}

// finalLine says how a job ended, or where it stands.
func finalLine(v jobView) string {
	switch v.Status {
	case statusCompleted:
		if v.Kind == kindDelete {
			return fmt.Sprintf("%s completed: deleted %s from namespace %s", v.JobID, v.DocID, v.Namespace)
		}
		return fmt.Sprintf("%s completed (%s): %d chunks, %d entities, %d relations",
			v.JobID, v.DocID, v.Progress.ChunksTotal, v.Progress.Entities, v.Progress.Relations)
	case statusDuplicate:
		earlier := v.ExistingJobID
		if earlier == "" {
			earlier = "unknown"
		}
		return fmt.Sprintf("%s duplicate (%s): same content as earlier job %s", v.JobID, v.DocID, earlier)
	case statusFailed:
		return fmt.Sprintf("%s failed (%s): %s", v.JobID, v.DocID, v.Error)
	case statusCancelled:
		if v.Progress.ChunksTotal > 0 {
			return fmt.Sprintf("%s cancelled (%s) after %d of %d chunks", v.JobID, v.DocID, v.Progress.ChunksProcessed, v.Progress.ChunksTotal)
		}
		return fmt.Sprintf("%s cancelled (%s)", v.JobID, v.DocID)
	case statusExpired:
		return fmt.Sprintf("%s expired (%s): not approved in time", v.JobID, v.DocID)
	case statusAwaitingApproval:
		return fmt.Sprintf("%s awaits approval (%s): %s; approve with: kg jobs approve %s", v.JobID, v.DocID, estimateText(v.Estimate), v.JobID)
	}
	return progressLine(v)
}

// estimateText is a cost estimate in a few words.
func estimateText(e *events.Estimate) string {
	if e == nil {
		return "no estimate"
	}
	model := e.Model
	if model == "" || model == "offline" {
		return fmt.Sprintf("%d chunks, no LLM calls (offline extractor)", e.Chunks)
	}
	return fmt.Sprintf("%d chunks, %d tokens in, %d–%d tokens out, $%.4f–$%.4f with %s",
		e.Chunks, e.TokensIn, e.TokensOutLow, e.TokensOutHigh, e.CostLowUSD, e.CostHighUSD, model)
}

// renderer serialises the output of jobs followed concurrently. On a
// terminal each job being watched has a live line at the bottom, redrawn in
// place (cursor up, rewrite); lines that stay are printed above them.
// Elsewhere a job's progress line is printed once per change.
type renderer struct {
	mu       sync.Mutex
	w, ew    io.Writer
	terminal bool
	// watch: show progress, not only how jobs end.
	watch bool
	// width bounds a live line, which must not wrap for the redraw to work.
	width int
	// live are the jobs with a live line, in order of appearance.
	live []string
	last map[string]string
	// drawn is how many live lines are on the screen.
	drawn int
}

func newRenderer(w io.Writer, terminal, watch bool) *renderer {
	return &renderer{w: w, ew: io.Discard, terminal: terminal, watch: watch, width: defaultColumns, last: map[string]string{}}
}

// renderer is a renderer of the environment's output.
func (e *environment) renderer(watch bool) *renderer {
	r := newRenderer(e.stdout, e.terminal, watch)
	r.ew, r.width = e.stderr, e.width
	return r
}

// progress shows a job's latest view, when watching.
func (r *renderer) progress(v jobView) {
	if !r.watch || v.terminal() {
		return
	}
	line := progressLine(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last[v.JobID] == line {
		return
	}
	r.last[v.JobID] = line
	if !r.terminal {
		fmt.Fprintln(r.w, line)
		return
	}
	if !slices.Contains(r.live, v.JobID) {
		r.live = append(r.live, v.JobID)
	}
	r.paint(nil)
}

// paint rewrites the live block, with lines that stay above it.
func (r *renderer) paint(stay []byte) {
	var b bytes.Buffer
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r", r.drawn)
	}
	if len(stay) > 0 {
		if r.drawn > 0 {
			b.WriteString("\x1b[J") // what stays may be shorter than the live lines
		}
		b.Write(stay)
	}
	for _, id := range r.live {
		b.WriteString(r.fit(r.last[id]) + "\x1b[K\n")
	}
	if len(r.live) < r.drawn && len(stay) == 0 {
		b.WriteString("\x1b[J") // the lines of jobs no longer live
	}
	r.drawn = len(r.live)
	_, _ = r.w.Write(b.Bytes()) // like fmt.Print: the terminal is gone if this fails
}

// fit cuts a live line to the terminal's width.
func (r *renderer) fit(line string) string {
	limit := max(r.width-1, barWidth)
	if utf8.RuneCountInString(line) <= limit {
		return line
	}
	runes := []rune(line)
	return string(runes[:limit-1]) + "…"
}

// println prints a line that stays.
func (r *renderer) println(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stay([]byte(line + "\n"))
}

// finish prints how a job ended and drops its live line.
func (r *renderer) finish(v jobView, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live = slices.DeleteFunc(r.live, func(id string) bool { return id == v.JobID })
	r.stay([]byte(line + "\n"))
}

func (r *renderer) stay(b []byte) {
	if r.drawn > 0 {
		r.paint(b)
		return
	}
	_, _ = r.w.Write(b)
}

// json prints a raw JSON reply on one line.
func (r *renderer) json(raw []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return fmt.Errorf("reply is not JSON: %w", err)
	}
	b.WriteByte('\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stay(b.Bytes())
	return nil
}

// eprintln prints a line on stderr without garbling the live lines.
func (r *renderer) eprintln(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aside(func() { fmt.Fprintln(r.ew, line) })
}

// ask prints a question on stderr and reads the answer's line from in.
func (r *renderer) ask(question string, in *bufio.Reader) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var answer string
	var err error
	r.aside(func() {
		fmt.Fprint(r.ew, question)
		answer, err = in.ReadString('\n')
	})
	if err != nil && (err != io.EOF || answer == "") {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(answer), nil
}

// aside takes the live lines off the screen while f writes elsewhere.
func (r *renderer) aside(f func()) {
	if r.drawn == 0 {
		f()
		return
	}
	fmt.Fprintf(r.w, "\x1b[%dA\r\x1b[J", r.drawn)
	r.drawn = 0
	f()
	r.paint(nil)
}

// done takes the live lines off the screen.
func (r *renderer) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live = nil
	if r.drawn > 0 {
		fmt.Fprintf(r.w, "\x1b[%dA\r\x1b[J", r.drawn)
		r.drawn = 0
	}
}

// table prints rows aligned in columns under a header.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	return nil
}

// fields prints "key  value" lines, skipping empty values.
func fields(w io.Writer, rows [][2]string) {
	width := 10
	for _, r := range rows {
		if r[1] != "" {
			width = max(width, len(r[0]))
		}
	}
	for _, r := range rows {
		if r[1] != "" {
			fmt.Fprintf(w, "%-*s %s\n", width, r[0], r[1])
		}
	}
}

// clock formats a time for tables, in the local zone.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// clip shortens a cell of free text to n runes, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// printJSON prints a raw reply on one line.
func (e *environment) printJSON(raw []byte) error {
	return newRenderer(e.stdout, false, false).json(raw)
}
