package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ingestapi "github.com/kgraph-dev/kgraph/services/ingest-api"
	"github.com/kgraph-dev/kgraph/tools/internal/cli"
	"github.com/kgraph-dev/kgraph/tools/internal/e2e"
	"github.com/kgraph-dev/kgraph/tools/internal/serve"
)

// decode parses a command's JSON output.
func decode[T any](t *testing.T, r result) T {
	t.Helper()
	require.NoError(t, r.err, r.stderr)
	var v T
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	return v
}

type jobsPage struct {
	Jobs []struct {
		JobID  string `json:"job_id"`
		Kind   string `json:"kind"`
		DocID  string `json:"doc_id"`
		Status string `json:"status"`
	} `json:"jobs"`
}

func (p jobsPage) status(id string) string {
	for _, j := range p.Jobs {
		if j.JobID == id {
			return j.Status
		}
	}
	return ""
}

type docsPage struct {
	Documents []struct {
		DocID  string `json:"doc_id"`
		Status string `json:"status"`
		Chunks int    `json:"chunks"`
	} `json:"documents"`
}

func (p docsPage) ids() []string {
	ids := []string{}
	for _, d := range p.Documents {
		ids = append(ids, d.DocID)
	}
	return ids
}

// answerOf is the answer part of kg query's output.
func answerOf(t *testing.T, out string) string {
	t.Helper()
	answer, _, ok := strings.Cut(out, "\n\nreferences: ")
	require.True(t, ok, out)
	return answer
}

func TestJobsDocsQueryAndDelete(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	dir := t.TempDir()
	file := filepath.Join(dir, "lovelace.txt")
	writeFile(t, file, e2e.Corpus(11, 2500))

	job := decode[map[string]any](t, k.run("", "ingest", file, "--json", "--namespace", "docs", "--doc-id", "lovelace"))
	require.Equal(t, "completed", job["status"])
	jobID := job["job_id"].(string)

	page := decode[jobsPage](t, k.run("", "jobs", "list", "--json", "--namespace", "docs"))
	require.Equal(t, "completed", page.status(jobID), page)
	r := k.run("", "jobs", "list", "--namespace", "docs")
	require.NoError(t, r.err)
	require.Regexp(t, `(?m)^JOB +KIND +STATUS +NAMESPACE +DOC +PROGRESS +CREATED$`, r.stdout)
	require.Regexp(t, `(?m)^`+jobID+` +ingest +completed +docs +lovelace +100% \d+/\d+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`, r.stdout)
	r = k.run("", "jobs", "list", "--namespace", "elsewhere")
	require.NoError(t, r.err)
	require.Equal(t, "no jobs\n", r.stdout)
	require.Empty(t, decode[jobsPage](t, k.run("", "jobs", "list", "--json", "--namespace", "docs", "--status", "failed")).Jobs)

	r = k.run("", "jobs", "show", jobID)
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "kind       ingest\n")
	require.Contains(t, r.stdout, "status     completed\n")
	require.Regexp(t, `(?m)^finished +\d{4}-`, r.stdout)

	// HTML is uploaded, and the server keeps its text only.
	page1 := filepath.Join(dir, "engines.html")
	writeFile(t, page1, `<html><head><title>Engines</title><style>p{color:red}</style></head>`+
		`<body><p>Charles Babbage designed the Difference Engine in London.</p><script>alert(1)</script></body></html>`)
	r = k.run("", "ingest", page1, "--namespace", "docs", "--doc-id", "engines")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^job_[0-9a-f]+ completed \(engines\): [1-9]\d* chunks`, r.stdout)
	r = k.run("", "docs", "show", "engines", "--namespace", "docs", "--content")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "Charles Babbage designed the Difference Engine in London.")
	require.Contains(t, r.stdout, "filename=engines.html")
	for _, markup := range []string{"<p>", "alert(1)", "color:red"} {
		require.NotContains(t, r.stdout, markup)
	}

	// A community rebuild between the two askings below changes the cache
	// key (it holds the communities' generation): ask once the namespace's
	// communities are up to date.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := k.run("", "stats", "--namespace", "docs")
		require.NoError(c, r.err)
		require.Regexp(c, `(?m)^communities built +\S+ \(up to date\)$`, r.stdout)
	}, 60*time.Second, 200*time.Millisecond)

	// The answer streams by default; without streaming it is the same.
	question := "Who worked beside Ada Lovelace?"
	r = k.run("", "query", question, "--mode", "local", "--namespace", "docs")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `references: [1-9]\d* entities, \d+ relations, [1-9]\d* chunks, \d+ reports`, r.stdout)
	require.Contains(t, r.stdout, "chunks: lovelace#")
	require.Regexp(t, `mode local, answered by \S+`, r.stdout)
	streamed := answerOf(t, r.stdout)
	require.NotEmpty(t, strings.TrimSpace(streamed))
	r = k.run("", "query", question, "--mode", "local", "--namespace", "docs", "--no-stream")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, streamed, answerOf(t, r.stdout))
	require.Contains(t, r.stdout, ", cached\n", "the second asking is answered from the cache")

	docs := decode[docsPage](t, k.run("", "docs", "list", "--json", "--namespace", "docs"))
	require.ElementsMatch(t, []string{"lovelace", "engines"}, docs.ids())
	r = k.run("", "docs", "list", "--namespace", "docs")
	require.NoError(t, r.err)
	require.Regexp(t, `(?m)^DOC +NAMESPACE +STATUS +CHUNKS +ENTITIES +RELATIONS +BYTES +CREATED +JOB$`, r.stdout)
	require.Regexp(t, `(?m)^lovelace +docs +ready +[1-9]\d* +[1-9]\d* +\d+ +\d+ +\S+ \S+ +`+jobID+`$`, r.stdout)

	r = k.run("", "docs", "show", "lovelace", "--namespace", "docs")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "status     ready\n")
	require.Contains(t, r.stdout, "job        "+jobID+" (completed)\n")
	require.NotContains(t, r.stdout, "Ada Lovelace", "the text only with --content")
	shown := decode[map[string]any](t, k.run("", "docs", "show", "lovelace", "--namespace", "docs", "--json"))
	require.Equal(t, "ready", shown["status"])
	require.NotContains(t, shown, "content")

	r = k.run("", "docs", "delete", "lovelace", "--namespace", "docs")
	require.NoError(t, r.err, r.stderr)
	m := regexp.MustCompile(`^(job_[0-9a-f]+) completed: deleted lovelace from namespace docs\n$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	deletion := m[1]

	require.Equal(t, []string{"engines"}, decode[docsPage](t, k.run("", "docs", "list", "--json", "--namespace", "docs")).ids())
	r = k.run("", "docs", "list", "--namespace", "docs")
	require.NoError(t, r.err)
	require.NotContains(t, r.stdout, "lovelace")
	r = k.run("", "docs", "show", "lovelace", "--namespace", "docs")
	var p *cli.ProblemError
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 404, p.Status)
	require.Equal(t, `Not Found: no document "lovelace" in namespace "docs" (HTTP 404)`, r.err.Error())
	r = k.run("", "docs", "delete", "lovelace", "--namespace", "docs")
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 404, p.Status)

	deletions := decode[jobsPage](t, k.run("", "jobs", "list", "--json", "--namespace", "docs", "--kind", "delete"))
	require.Len(t, deletions.Jobs, 1)
	require.Equal(t, deletion, deletions.Jobs[0].JobID)
	require.Equal(t, "completed", deletions.Jobs[0].Status)

	// The deletion is a job like any: --no-wait names it, watch follows it.
	r = k.run("", "docs", "delete", "engines", "--namespace", "docs", "--no-wait", "--json")
	del := decode[map[string]any](t, r)
	require.Equal(t, "engines", del["doc_id"])
	r = k.run("", "jobs", "watch", del["job_id"].(string))
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, del["job_id"].(string)+" completed: deleted engines from namespace docs\n", r.stdout)
}

func TestApproveAndCancel(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	dir := t.TempDir()

	// --no-wait: the job waits for approval with its estimate.
	r := k.run(e2e.Corpus(21, 1500), "ingest", "-", "--no-wait", "--require-approval", "--doc-id", "waiting")
	require.NoError(t, r.err, r.stderr)
	m := regexp.MustCompile(`^(job_[0-9a-f]+) awaits approval \(waiting\): [1-9]\d* chunks, no LLM calls \(offline extractor\); approve with: kg jobs approve (job_[0-9a-f]+)\n$`).
		FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, m[1], m[2])
	waiting := m[1]

	// Approving at once works: kg waits for the job to be recorded.
	r = k.run("", "jobs", "approve", waiting, "--wait")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, r.stdout)
	require.Regexp(t, `^`+waiting+` approved \(waiting\): now \w+$`, lines[0])
	require.Regexp(t, `^`+waiting+` completed \(waiting\): [1-9]\d* chunks`, lines[1])
	r = k.run("", "jobs", "show", waiting)
	require.NoError(t, r.err)
	require.Regexp(t, `(?m)^estimate +[1-9]\d* chunks, `, r.stdout)
	require.Regexp(t, `(?m)^approved +\d{4}-`, r.stdout)

	r = k.run("", "jobs", "approve", waiting)
	require.EqualError(t, r.err, "Conflict: job "+waiting+" is completed, not awaiting approval (HTTP 409)")

	// Waiting without --yes and without a terminal: kg says how to approve
	// and fails.
	file := filepath.Join(dir, "dear.txt")
	writeFile(t, file, e2e.Corpus(22, 1500))
	r = k.run("", "ingest", file, "--require-approval", "--doc-id", "dear")
	require.Error(t, r.err)
	m = regexp.MustCompile(`(?m)^(job_[0-9a-f]+) awaits approval \(dear\): .*; approve with: kg jobs approve job_`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	dear := m[1]
	require.EqualError(t, r.err, "job "+dear+" awaits approval: kg jobs approve "+dear)
	page := decode[jobsPage](t, k.run("", "jobs", "list", "--json", "--status", "awaiting_approval"))
	require.Equal(t, "awaiting_approval", page.status(dear))

	r = k.run("", "jobs", "cancel", dear, "--reason", "too dear")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, dear+" cancelled (dear): now cancelled\n", r.stdout)
	r = k.run("", "jobs", "watch", dear)
	require.EqualError(t, r.err, "job "+dear+" was cancelled")
	require.Equal(t, dear+" cancelled (dear)\n", r.stdout)
	r = k.run("", "jobs", "cancel", dear)
	require.EqualError(t, r.err, "Conflict: job "+dear+" already ended with status cancelled; nothing to cancel (HTTP 409)")
	require.Equal(t, "cancelled", decode[map[string]any](t, k.run("", "jobs", "show", dear, "--json"))["status"])

	// --yes approves, with or without waiting.
	r = k.run(e2e.Corpus(23, 1200), "ingest", "-", "--require-approval", "--yes", "--doc-id", "yes-wait")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^job_[0-9a-f]+ approved \(yes-wait\): [1-9]\d* chunks`, r.stdout)
	require.Regexp(t, `(?m)^job_[0-9a-f]+ completed \(yes-wait\)`, r.stdout)
	sub := decode[map[string]any](t, k.run(e2e.Corpus(24, 1200), "ingest", "-", "--require-approval", "--yes", "--no-wait", "--json"))
	require.Equal(t, "awaiting_approval", sub["status"], "the submission's reply, as it was")
	r = k.run("", "jobs", "watch", sub["job_id"].(string))
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^job_[0-9a-f]+ completed`, r.stdout)

	// Cancelling at once works too: kg waits for the job to be recorded.
	sub = decode[map[string]any](t, k.run(e2e.Corpus(27, 600), "ingest", "-", "--require-approval", "--no-wait", "--json"))
	r = k.run("", "jobs", "cancel", sub["job_id"].(string))
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^job_[0-9a-f]+ cancelled \(doc_[0-9a-f]+\): now cancelled\n$`, r.stdout)

	// Several jobs are watched at once.
	first := decode[map[string]any](t, k.run(e2e.Corpus(28, 600), "ingest", "-", "--no-wait", "--json", "--doc-id", "w1"))
	second := decode[map[string]any](t, k.run(e2e.Corpus(29, 600), "ingest", "-", "--no-wait", "--json", "--doc-id", "w2"))
	r = k.run("", "jobs", "watch", first["job_id"].(string), second["job_id"].(string))
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^`+first["job_id"].(string)+` completed \(w1\)`, r.stdout)
	require.Regexp(t, `(?m)^`+second["job_id"].(string)+` completed \(w2\)`, r.stdout)
	require.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 2)

	// A directory: every job waits; kg counts them and fails.
	tree := filepath.Join(dir, "tree")
	writeFile(t, filepath.Join(tree, "a.md"), e2e.Corpus(25, 600))
	writeFile(t, filepath.Join(tree, "b.md"), e2e.Corpus(26, 600))
	r = k.run("", "ingest", tree, "--require-approval")
	require.EqualError(t, r.err, "2 of 2 documents were not ingested (0 failed, 2 awaiting approval)")
	require.Contains(t, r.stdout, "2 documents: 0 completed, 0 duplicates, 0 failed, 2 awaiting approval\n")
	r = k.run("", "ingest", tree, "--require-approval", "--yes", "--force")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "2 documents: 2 completed, 0 duplicates, 0 failed\n")
}

func TestGraphStatsAndAdmin(t *testing.T) {
	k := kg{t: t, server: startKgraph(t)}
	r := k.run(e2e.Corpus(31, 3000), "ingest", "-", "--namespace", "g", "--doc-id", "corpus")
	require.NoError(t, r.err, r.stderr)

	r = k.run("", "graph", "search", "lovelace", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^NAME +TYPE +MENTIONS +DESCRIPTION$`, r.stdout)
	require.Regexp(t, `(?mi)^Ada Lovelace +\S+ +[1-9]\d* +`, r.stdout)
	found := decode[map[string]any](t, k.run("", "graph", "search", "lovelace", "--namespace", "g", "--json", "--limit", "1"))
	require.Len(t, found["entities"], 1)
	r = k.run("", "graph", "search", "lovelace", "--namespace", "empty")
	require.NoError(t, r.err)
	require.Equal(t, "no entities\n", r.stdout)

	r = k.run("", "graph", "entity", "Ada Lovelace", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?mi)^entity +Ada Lovelace$`, r.stdout)
	require.Regexp(t, `(?m)^relations \([1-9]\d*(, more not listed)?\):$`, r.stdout)
	require.Regexp(t, `(?m)^WITH +WEIGHT +MENTIONS +DESCRIPTION$`, r.stdout)
	r = k.run("", "graph", "entity", "Nobody At All", "--namespace", "g")
	require.ErrorContains(t, r.err, "(HTTP 404)")

	r = k.run("", "graph", "subgraph", "Ada Lovelace", "--depth", "2", "--max-nodes", "5", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?mi)^subgraph around Ada Lovelace: 5 entities, [1-9]\d* relations`, r.stdout)
	require.Regexp(t, `(?mi)^0 +Ada Lovelace +`, r.stdout)
	require.Regexp(t, `(?m)^FROM +TO +WEIGHT +DESCRIPTION$`, r.stdout)

	r = k.run("", "graph", "paths", "Ada Lovelace", "Charles Babbage", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^(1 shortest path|[2-9]\d* shortest paths) from Ada Lovelace to Charles Babbage`, r.stdout)
	require.Regexp(t, `(?mi)^1\. Ada Lovelace → (.+ → )?Charles Babbage \((1 hop|[2-9] hops)\)$`, r.stdout)

	r = k.run("", "stats", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^namespace +g$`, r.stdout)
	require.Regexp(t, `(?m)^documents +1$`, r.stdout)
	require.Regexp(t, `(?m)^entities +[1-9]\d*$`, r.stdout)
	require.Regexp(t, `(?m)^communities built +(never|\d{4}-\d\d-\d\dT\S+ \((up to date|stale)\))$`, r.stdout)
	stats := decode[map[string]any](t, k.run("", "stats", "--namespace", "g", "--json"))
	require.EqualValues(t, 1, stats["documents"])

	r = k.run("", "admin", "info")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^mode +embedded$`, r.stdout)
	require.Regexp(t, `(?m)^auth +OFF `, r.stdout)
	require.Regexp(t, `(?m)^you +key .*role admin, namespaces \*$`, r.stdout)
	info := decode[map[string]any](t, k.run("", "admin", "info", "--json"))
	require.Equal(t, false, info["auth"].(map[string]any)["enabled"])

	r = k.run("", "admin", "scheduler")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^approval +jobs awaiting approval expire after \S+$`, r.stdout)
	require.Regexp(t, `(?m)^next run +\d{4}-`, r.stdout)
	r = k.run("", "admin", "scheduler", "cleanup", "--dry-run")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^dry run: would expire 0 jobs awaiting approval and purge \d+ finished job records\n`, r.stdout)

	r = k.run("", "admin", "dead-letters")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "no dead letters\n", r.stdout)
	dls := decode[map[string]any](t, k.run("", "admin", "dead-letters", "list", "--json"))
	require.Empty(t, dls["dead_letters"])
	r = k.run("", "admin", "dead-letters", "show", "99")
	require.ErrorContains(t, r.err, "Not Found: no dead letter 99")

	r = k.run("", "query", "Ada Lovelace", "--namespace", "g", "--mode", "naive")
	require.NoError(t, r.err, r.stderr)
	r = k.run("", "admin", "cache-clear", "--namespace", "g")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^cleared [1-9]\d* cached answers in namespace g\n$`, r.stdout)
	r = k.run("", "query", "Ada Lovelace", "--namespace", "g", "--mode", "naive")
	require.NoError(t, r.err, r.stderr)
	require.NotContains(t, r.stdout, ", cached\n", "answered afresh after the cache was cleared")
}

func TestCommandUsageErrors(t *testing.T) {
	k := kg{t: t, server: "http://127.0.0.1:1"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"jobs"}, "jobs takes list, show, watch, approve or cancel"},
		{[]string{"jobs", "frob"}, `unknown jobs command "frob"`},
		{[]string{"jobs", "approve"}, "jobs approve takes one id"},
		{[]string{"jobs", "watch"}, "jobs watch takes one or more job ids"},
		{[]string{"docs"}, "docs takes list, show or delete"},
		{[]string{"docs", "show", "a", "b"}, "docs show takes one id"},
		{[]string{"graph", "paths", "a"}, "graph paths takes two entity names"},
		{[]string{"admin", "dead-letters", "show", "x"}, `dead letter "x": want its seq`},
		{[]string{"admin", "scheduler", "frob"}, `unknown scheduler command "frob"`},
		{[]string{"stats", "extra"}, "stats takes no arguments"},
		{[]string{"jobs", "list", "--namespace"}, "flag needs an argument"},
		{[]string{"jobs", "show", "x", "--namespace", "n"}, "flag provided but not defined: -namespace"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := k.run("", c.args...)
			require.ErrorContains(t, r.err, c.want)
		})
	}
	for _, name := range []string{"ingest", "jobs", "docs", "query", "graph", "stats", "health", "admin"} {
		require.True(t, cli.IsCommand(name), name)
	}
	require.Contains(t, cli.Usage, "KG_CONFIG")
}

// API key secrets of TestWithAPIKeys.
const (
	secretRoot      = "kg-test-root-secret"
	secretTeamWrite = "kg-test-team-write-secret"
	secretTeamRead  = "kg-test-team-read-secret"
)

func TestWithAPIKeys(t *testing.T) {
	key := func(id, secret string, role ingestapi.Role, ns ...string) ingestapi.APIKey {
		return ingestapi.APIKey{ID: id, SHA256: ingestapi.HashAPIKey(secret), ClientID: id + "-client", Namespaces: ns, Role: role, RateLimit: -1}
	}
	server := startKgraphWith(t, func(cfg *serve.Config) {
		cfg.Edge.Auth = ingestapi.AuthConfig{Keys: []ingestapi.APIKey{
			key("root", secretRoot, ingestapi.RoleAdmin, "*"),
			key("team-write", secretTeamWrite, ingestapi.RoleWrite, "team"),
			key("team-read", secretTeamRead, ingestapi.RoleRead, "team"),
		}}
	})

	// No key at all.
	anon := kg{t: t, server: server}
	r := anon.run("", "health")
	var p *cli.ProblemError
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 401, p.Status)
	require.Regexp(t, `^Unauthorized: .+ \(HTTP 401\)$`, r.err.Error())

	// The write key and the namespace from the config file, the server
	// from it too (KG_SERVER is not set).
	config := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, config, `{"server": "`+server+`", "api_key": "`+secretTeamWrite+`", "namespace": "team"}`)
	require.NoError(t, os.Chmod(config, 0o600))
	team := kg{t: t, env: map[string]string{"KG_CONFIG": config}}
	r = team.run(e2e.Corpus(41, 800), "ingest", "-", "--doc-id", "team-doc", "--json")
	job := decode[map[string]any](t, r)
	require.Equal(t, "completed", job["status"])
	require.Equal(t, "team", job["namespace"])
	require.Equal(t, "team-write-client", job["client_id"], "the key's client id is recorded on the job")
	require.Empty(t, r.stderr, "a private config file draws no warning")
	page := decode[jobsPage](t, team.run("", "jobs", "list", "--json"))
	require.Equal(t, "completed", page.status(job["job_id"].(string)))
	require.Equal(t, []string{"team-doc"}, decode[docsPage](t, team.run("", "docs", "list", "--json")).ids())
	r = team.run("", "admin", "info")
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `(?m)^auth +on, 3 keys$`, r.stdout)
	require.Regexp(t, `(?m)^you +key team-write, client team-write-client, role write, namespaces team$`, r.stdout)

	// Another namespace is refused; so are admin routes.
	r = team.run("x", "ingest", "-", "--namespace", "other")
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 403, p.Status)
	r = team.run("", "admin", "scheduler", "status")
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 403, p.Status)
	require.Contains(t, r.err.Error(), "(HTTP 403)")

	// --api-key beats the file: a read key reads but cannot write.
	r = team.run("", "docs", "list", "--api-key", secretTeamRead)
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "team-doc")
	r = team.run("", "docs", "delete", "team-doc", "--api-key", secretTeamRead)
	require.ErrorAs(t, r.err, &p)
	require.Equal(t, 403, p.Status)
	r = team.run("", "query", "Ada Lovelace", "--mode", "naive", "--api-key", secretTeamRead)
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "chunks: team-doc#", "the streamed query is authorised too")

	// KG_API_KEY beats the file as well: the root key administers.
	root := kg{t: t, env: map[string]string{"KG_CONFIG": config, "KG_API_KEY": secretRoot}}
	r = root.run("", "admin", "scheduler", "status")
	require.NoError(t, r.err, r.stderr)
	r = root.run("", "admin", "dead-letters")
	require.NoError(t, r.err, r.stderr)
	r = root.run("", "admin", "info", "--json")
	require.Equal(t, "root", decode[map[string]any](t, r)["caller"].(map[string]any)["key_id"])

	// The write key deletes its document.
	r = team.run("", "docs", "delete", "team-doc")
	require.NoError(t, r.err, r.stderr)
	require.Empty(t, decode[docsPage](t, team.run("", "docs", "list", "--json")).ids())
}

// The hint under a page repeats the listing's filters, never the key, and
// following it gives the next page.
func TestListPagesHintTheNextCommand(t *testing.T) {
	k := kg{t: t, server: startKgraph(t), env: map[string]string{"KG_API_KEY": "not-printed"}}
	var ids []string
	for i := range 3 {
		sub := decode[map[string]any](t, k.run(e2e.Corpus(uint64(40+i), 300), "ingest", "-", "--no-wait", "--json", "--namespace", "pages"))
		ids = append(ids, sub["job_id"].(string))
	}
	// Wait until the three are recorded.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := k.run("", "jobs", "list", "--json", "--namespace", "pages")
		require.NoError(c, r.err, r.stderr)
		var page jobsPage
		require.NoError(c, json.Unmarshal([]byte(r.stdout), &page), r.stdout)
		assert.Len(c, page.Jobs, 3)
	}, 30*time.Second, 50*time.Millisecond)

	r := k.run("", "jobs", "list", "--namespace", "pages", "--kind", "ingest", "--limit", "2")
	require.NoError(t, r.err, r.stderr)
	m := regexp.MustCompile(`^more: kg jobs list --kind ingest --limit 2 --namespace pages --cursor (\S+)\n$`).FindStringSubmatch(r.stderr)
	require.NotNil(t, m, r.stderr)
	require.NotContains(t, r.stderr, "not-printed")
	jobIDs := regexp.MustCompile(`(?m)^job_[0-9a-f]+`)
	listed := jobIDs.FindAllString(r.stdout, -1)
	require.Len(t, listed, 2)
	r = k.run("", "jobs", "list", "--namespace", "pages", "--kind", "ingest", "--limit", "2", "--cursor", m[1])
	require.NoError(t, r.err, r.stderr)
	require.Empty(t, r.stderr, "the last page has no hint")
	listed = append(listed, jobIDs.FindAllString(r.stdout, -1)...)
	require.ElementsMatch(t, ids, listed, "every job once")
}
