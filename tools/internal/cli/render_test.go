package cli

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDocIDFromPath(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	cases := map[string]string{
		"a.md":                "a.md",
		"notes/2024 plan.txt": "notes_2024_plan.txt",
		".hidden.md":          "d_.hidden.md",
		"über/ä.txt":          "_ber___.txt",
		"x:y-z_w.md":          "x:y-z_w.md",
	}
	for in, want := range cases {
		got := DocIDFromPath(in)
		if in == "über/ä.txt" {
			require.True(t, valid.MatchString(got), got)
			continue
		}
		require.Equal(t, want, got, in)
		require.True(t, valid.MatchString(got), got)
	}
	long := strings.Repeat("a", 200) + ".md"
	got := DocIDFromPath(long)
	require.Len(t, got, maxDocID)
	require.True(t, valid.MatchString(got))
	require.NotEqual(t, got, DocIDFromPath(strings.Repeat("a", 201)+".md"), "truncated ids keep apart")
}

func TestRendererOnTerminalRedrawsInPlace(t *testing.T) {
	var b bytes.Buffer
	r := newRenderer(&b, true, true)
	v := jobView{JobID: "job_1", DocID: "d", Status: "processing",
		Progress: progress{Stage: "extracting", Percent: 52, ChunksProcessed: 21, ChunksTotal: 40, Entities: 310}}
	r.progress(v)
	r.progress(v) // unchanged: not redrawn
	v.Progress.Percent = 60
	r.progress(v)
	v.Status, v.Progress = statusCompleted, progress{Stage: "done", Percent: 100, ChunksProcessed: 40, ChunksTotal: 40, Entities: 400, Relations: 300}
	r.progress(v) // terminal views are left to the final line
	r.finish(v, finalLine(v))
	require.Equal(t,
		"job_1 [#####.....]  52% extracting 21/40 chunks, 310 entities (d)\x1b[K\n"+
			"\x1b[1A\rjob_1 [######....]  60% extracting 21/40 chunks, 310 entities (d)\x1b[K\n"+
			"\x1b[1A\r\x1b[Jjob_1 completed (d): 40 chunks, 400 entities, 300 relations\n", b.String())
	require.Equal(t, []string{"job_1 completed (d): 40 chunks, 400 entities, 300 relations"}, screen(b.String()))
}

func TestRendererKeepsALiveLinePerJob(t *testing.T) {
	var b bytes.Buffer
	r := newRenderer(&b, true, true)
	r.width = 40
	view := func(id string, pct int) jobView {
		return jobView{JobID: id, DocID: "doc-" + id, Status: "processing", Progress: progress{Stage: "extracting", Percent: pct, ChunksProcessed: pct / 10, ChunksTotal: 10}}
	}
	r.progress(view("a", 10))
	r.progress(view("b", 20))
	require.Equal(t, []string{
		"a [#.........]  10% extracting 1/10 ch…",
		"b [##........]  20% extracting 2/10 ch…",
	}, screen(b.String()), "one line per job, cut to the width")
	r.progress(view("a", 50))
	r.println("a note")
	r.finish(jobView{JobID: "b"}, "b is done")
	require.Equal(t, []string{"a note", "b is done", "a [#####.....]  50% extracting 5/10 ch…"}, screen(b.String()))
	r.progress(view("c", 0))
	r.done()
	require.Equal(t, []string{"a note", "b is done"}, screen(b.String()), "done takes the live lines away")
	for _, l := range screen(b.String()) {
		require.LessOrEqual(t, len([]rune(l)), r.width-1)
	}
}

func TestRendererAskTakesTheLiveLinesAside(t *testing.T) {
	var out, errOut bytes.Buffer
	r := newRenderer(&out, true, true)
	r.ew = &errOut
	r.progress(jobView{JobID: "a", Status: "awaiting_approval", Progress: progress{Stage: "awaiting_approval"}})
	answer, err := r.ask("approve? [y/N] ", bufio.NewReader(strings.NewReader(" Y \nmore\n")))
	require.NoError(t, err)
	require.Equal(t, "Y", answer)
	require.Equal(t, "approve? [y/N] ", errOut.String())
	require.Equal(t, []string{"a [..........]   0% awaiting_approval"}, screen(out.String()), "the live line comes back")
	_, err = r.ask("again? ", bufio.NewReader(strings.NewReader("")))
	require.Error(t, err, "no answer at all is an error, not a no")
}

// screen plays terminal output: it interprets the few controls the
// renderer writes (\r, \n, cursor up, erase line, erase below) and returns
// the lines on the screen.
func screen(out string) []string {
	lines := [][]rune{nil}
	row, col := 0, 0
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\r':
			col = 0
		case c == '\n':
			row, col = row+1, 0
			for len(lines) <= row {
				lines = append(lines, nil)
			}
		case c == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			n := 0
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				n = n*10 + int(rs[j]-'0')
				j++
			}
			switch rs[j] {
			case 'A':
				row = max(row-max(n, 1), 0)
			case 'K':
				lines[row] = lines[row][:min(col, len(lines[row]))]
			case 'J':
				lines[row] = lines[row][:min(col, len(lines[row]))]
				lines = lines[:row+1]
			default:
				panic("unexpected control " + string(rs[j]))
			}
			i = j
		default:
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = c
			col++
		}
	}
	var out2 []string
	for _, l := range lines {
		out2 = append(out2, string(l))
	}
	for len(out2) > 0 && out2[len(out2)-1] == "" {
		out2 = out2[:len(out2)-1]
	}
	return out2
}

func TestRendererWithoutWatchPrintsOnlyEnds(t *testing.T) {
	var b bytes.Buffer
	r := newRenderer(&b, false, false)
	r.progress(jobView{JobID: "job_1", Status: "processing"})
	r.println(finalLine(jobView{JobID: "job_1", DocID: "d", Status: statusDuplicate, ExistingJobID: "job_0"}))
	r.println(finalLine(jobView{JobID: "job_2", DocID: "e", Status: statusFailed, Error: "boom"}))
	require.Equal(t, "job_1 duplicate (d): same content as earlier job job_0\njob_2 failed (e): boom\n", b.String())
}
