package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// barWidth is the number of cells of a progress bar.
const barWidth = 10

// progressLine is a job's one-line progress:
// job_… [#####.....] 52% extracting 21/40 chunks, 310 entities (doc).
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

// finalLine says how a job ended.
func finalLine(v jobView) string {
	switch v.Status {
	case statusCompleted:
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
	}
	return progressLine(v)
}

// renderer serialises the output of jobs followed concurrently. On a
// terminal the live progress line is redrawn in place with \r; elsewhere a
// job's progress line is printed once per change.
type renderer struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	// watch: show progress, not only how jobs end.
	watch bool
	// live: a progress line is drawn and not yet ended by a newline.
	live bool
	last map[string]string
}

func newRenderer(w io.Writer, terminal, watch bool) *renderer {
	return &renderer{w: w, terminal: terminal, watch: watch, last: map[string]string{}}
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
	if r.terminal {
		// \x1b[K clears what a longer previous line left behind.
		fmt.Fprint(r.w, "\r"+line+"\x1b[K")
		r.live = true
		return
	}
	fmt.Fprintln(r.w, line)
}

// println prints a line that stays.
func (r *renderer) println(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearLive()
	fmt.Fprintln(r.w, line)
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
	r.clearLive()
	_, err := r.w.Write(b.Bytes())
	return err
}

func (r *renderer) clearLive() {
	if r.live {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.live = false
	}
}

// done ends the live line, if any.
func (r *renderer) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearLive()
}
