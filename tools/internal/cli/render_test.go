package cli

import (
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
	r.println(finalLine(v))
	require.Equal(t,
		"\rjob_1 [#####.....]  52% extracting 21/40 chunks, 310 entities (d)\x1b[K"+
			"\rjob_1 [######....]  60% extracting 21/40 chunks, 310 entities (d)\x1b[K"+
			"\r\x1b[Kjob_1 completed (d): 40 chunks, 400 entities, 300 relations\n", b.String())
}

func TestRendererWithoutWatchPrintsOnlyEnds(t *testing.T) {
	var b bytes.Buffer
	r := newRenderer(&b, false, false)
	r.progress(jobView{JobID: "job_1", Status: "processing"})
	r.println(finalLine(jobView{JobID: "job_1", DocID: "d", Status: statusDuplicate, ExistingJobID: "job_0"}))
	r.println(finalLine(jobView{JobID: "job_2", DocID: "e", Status: statusFailed, Error: "boom"}))
	require.Equal(t, "job_1 duplicate (d): same content as earlier job job_0\njob_2 failed (e): boom\n", b.String())
}
