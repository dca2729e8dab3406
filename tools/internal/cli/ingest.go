package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
)

// ingestInFlight bounds the documents of a directory submitted and followed
// at once.
const ingestInFlight = 4

// maxDocID is the edge's limit on a doc id.
const maxDocID = 128

// metadataFlag collects repeated --metadata k=v.
type metadataFlag map[string]string

func (m metadataFlag) String() string { return fmt.Sprint(map[string]string(m)) }

func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	m[k] = v
	return nil
}

// document is one thing to submit.
type document struct {
	// label names it in messages: a path or "-".
	label string
	docID string
	read  func() ([]byte, error)
	// html documents are uploaded as files: the edge reduces them to text.
	html bool
}

// ingestResult is how one document's submission ended.
type ingestResult struct {
	view jobView
	err  error
}

// ingestOptions are what kg ingest was asked to do.
type ingestOptions struct {
	namespace       string
	metadata        map[string]string
	force           bool
	requireApproval bool
	yes             bool
	noWait          bool
	json            bool
}

// ingestRun submits and follows documents.
type ingestRun struct {
	c   *client
	out *renderer
	opt ingestOptions
	// answers reads approval answers; nil when kg may not ask.
	answers *bufio.Reader
}

const ingestUsage = `Usage: kg ingest FILE|DIR|- [flags]

DIR submits every .txt, .md, .html and .htm file under it, each its own job
(hidden directories skipped); - reads one document from stdin. HTML files
are uploaded and reduced to their text by the server.

A job that awaits approval (--require-approval, or a namespace whose policy
requires it) shows its cost estimate; --yes approves it, otherwise kg asks
"approve? [y/N]" when it can (stdin and stderr a terminal, the document not
read from stdin) and else leaves it waiting, prints how to approve it and
exits with status 1. With --no-wait kg only submits (and approves, with
--yes) and exits 0 unless a submission failed.

--json prints each job's final view, one a line (with --no-wait, each
submission's reply).`

func (e *environment) ingest(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("ingest", &g, true)
	docID := fs.String("doc-id", "", "document id (a single file or stdin only); derived from the content when empty")
	force := fs.Bool("force", false, "re-ingest even if the same content was already ingested")
	metadata := metadataFlag{}
	fs.Var(metadata, "metadata", "metadata key=value kept with the job (repeatable)")
	noWait := fs.Bool("no-wait", false, "print the job ids and return without waiting")
	watch := fs.Bool("watch", e.terminal, "show progress while waiting (default when stdout is a terminal)")
	yes := fs.Bool("yes", false, "approve jobs that await approval without asking")
	requireApproval := fs.Bool("require-approval", false, "hold the jobs in awaiting_approval with a cost estimate (auto_approve=false)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), ingestUsage+"\n\n")
		fs.PrintDefaults()
	}
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 1 {
		fs.Usage()
		return errors.New("ingest takes one FILE, DIR or - (stdin)")
	}
	docs, err := e.documents(positional[0], *docID)
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()

	run := &ingestRun{c: c, out: e.renderer(*watch && !*noWait && !g.json), opt: ingestOptions{
		namespace: g.namespace(), metadata: metadata, force: *force, requireApproval: *requireApproval,
		yes: *yes, noWait: *noWait, json: g.json,
	}}
	defer run.out.done()
	if e.interactive && positional[0] != "-" {
		run.answers = e.answers()
	}

	if positional[0] == "-" || !isDir(positional[0]) {
		r := run.one(ctx, docs[0])
		if r.err != nil {
			return r.err
		}
		if *noWait {
			return nil
		}
		return r.view.unsuccessful()
	}

	results := make([]ingestResult, len(docs))
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(ingestInFlight)
	for i, d := range docs {
		grp.Go(func() error {
			results[i] = run.one(gctx, d)
			if results[i].err != nil {
				run.out.eprintln(fmt.Sprintf("kg: %s: %v", d.label, results[i].err))
			}
			// One document's failure does not stop the others; only the
			// command's context does.
			return nil
		})
	}
	_ = grp.Wait()
	run.out.done()
	return e.summarise(results, *noWait, g.json)
}

// answers reads the answers to questions from stdin.
func (e *environment) answers() *bufio.Reader {
	if e.lines == nil {
		e.lines = bufio.NewReader(e.stdin)
	}
	return e.lines
}

// one submits a document and, unless --no-wait, follows its job to its end.
func (r *ingestRun) one(ctx context.Context, d document) ingestResult {
	sub, raw, err := r.submit(ctx, d)
	if err != nil {
		return ingestResult{err: err}
	}
	view := sub.view()
	if r.opt.noWait {
		if sub.Status == statusAwaitingApproval && r.opt.yes {
			if view, err = r.approveWhenWaiting(ctx, view); err != nil {
				return ingestResult{view: view, err: err}
			}
		}
		if r.opt.json {
			return ingestResult{view: view, err: r.out.json(raw)}
		}
		switch view.Status {
		case statusDuplicate, statusAwaitingApproval:
			r.out.println(finalLine(view))
		default:
			r.out.println(fmt.Sprintf("%s submitted (%s) in namespace %s", sub.JobID, sub.DocID, sub.Namespace))
		}
		return ingestResult{view: view}
	}
	decided := false
	final, err := r.c.follow(ctx, sub.JobID, func(v jobView) (bool, error) {
		r.out.progress(v)
		if v.Status == statusAwaitingApproval && !decided {
			decided = true
			if v.Estimate == nil {
				v.Estimate = sub.Estimate
			}
			approve, err := r.decide(v)
			if err != nil || !approve {
				return true, err
			}
			if err := r.approve(ctx, v); err != nil {
				return true, err
			}
		}
		return v.terminal(), nil
	})
	if err != nil {
		return ingestResult{view: final, err: err}
	}
	if r.opt.json {
		return ingestResult{view: final, err: r.out.json(final.raw)}
	}
	r.out.finish(final, finalLine(final))
	return ingestResult{view: final}
}

// submit sends a document: JSON for text, a multipart upload for HTML.
func (r *ingestRun) submit(ctx context.Context, d document) (submitReply, []byte, error) {
	content, err := d.read()
	if err != nil {
		return submitReply{}, nil, err
	}
	// JSON would silently turn invalid bytes into U+FFFD: the document
	// stored would not be the file.
	if !utf8.Valid(content) {
		return submitReply{}, nil, fmt.Errorf("%s is not valid UTF-8 text", d.label)
	}
	var raw []byte
	if d.html {
		form := map[string]string{}
		setField := func(k, v string) {
			if v != "" {
				form[k] = v
			}
		}
		setField("namespace", r.opt.namespace)
		setField("doc_id", d.docID)
		if r.opt.force {
			form["force"] = "true"
		}
		if r.opt.requireApproval {
			form["auto_approve"] = "false"
		}
		if len(r.opt.metadata) > 0 {
			meta, err := json.Marshal(r.opt.metadata)
			if err != nil {
				return submitReply{}, nil, fmt.Errorf("encode metadata: %w", err)
			}
			form["metadata"] = string(meta)
		}
		raw, err = r.c.upload(ctx, filepath.Base(d.label), "text/html", content, form)
	} else {
		body := map[string]any{"content": string(content), "force": r.opt.force}
		if d.docID != "" {
			body["doc_id"] = d.docID
		}
		if r.opt.namespace != "" {
			body["namespace"] = r.opt.namespace
		}
		if len(r.opt.metadata) > 0 {
			body["metadata"] = r.opt.metadata
		}
		if r.opt.requireApproval {
			body["auto_approve"] = false
		}
		raw, err = r.c.do(ctx, http.MethodPost, "/api/v1/documents", body)
	}
	if err != nil {
		return submitReply{}, nil, err
	}
	var sub submitReply
	if err := json.Unmarshal(raw, &sub); err != nil {
		return submitReply{}, nil, fmt.Errorf("decode submit reply: %w", err)
	}
	return sub, raw, nil
}

// decide says whether to approve a job awaiting approval: --yes does, a
// terminal asks, anything else leaves it waiting.
func (r *ingestRun) decide(v jobView) (bool, error) {
	if r.opt.yes {
		return true, nil
	}
	if r.answers == nil {
		return false, nil
	}
	answer, err := r.out.ask(fmt.Sprintf("%s (%s) awaits approval: %s\napprove? [y/N] ", v.JobID, v.DocID, estimateText(v.Estimate)), r.answers)
	if err != nil {
		return false, err
	}
	answer = strings.ToLower(answer)
	return answer == "y" || answer == "yes", nil
}

// approve approves a job seen awaiting approval. A 409 means someone else
// approved or cancelled it meanwhile: following the job shows which.
func (r *ingestRun) approve(ctx context.Context, v jobView) error {
	_, _, err := r.c.jobAction(ctx, v.JobID, "approve", nil)
	if statusOf(err) == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("approve job %s: %w", v.JobID, err)
	}
	if !r.opt.json {
		r.out.println(fmt.Sprintf("%s approved (%s): %s", v.JobID, v.DocID, estimateText(v.Estimate)))
	}
	return nil
}

// approveWhenWaiting waits for a job the submission said awaits approval to
// be recorded so (approval is refused before), then approves it.
func (r *ingestRun) approveWhenWaiting(ctx context.Context, sub jobView) (jobView, error) {
	v, err := r.c.follow(ctx, sub.JobID, func(v jobView) (bool, error) { return v.Status != statusPending, nil })
	if err != nil {
		return sub, err
	}
	if v.Status != statusAwaitingApproval {
		return v, nil
	}
	if v.Estimate == nil {
		v.Estimate = sub.Estimate
	}
	if err := r.approve(ctx, v); err != nil {
		return v, err
	}
	return r.c.getJob(ctx, v.JobID)
}

func (e *environment) summarise(results []ingestResult, noWait, asJSON bool) error {
	counts := map[string]int{}
	failed := 0
	for _, r := range results {
		switch {
		case r.err != nil || r.view.Status == statusFailed:
			failed++
		case noWait && r.view.Status != statusDuplicate && r.view.Status != statusAwaitingApproval:
			counts["submitted"]++
		default:
			counts[r.view.Status]++
		}
	}
	extra := ""
	for _, s := range []string{statusAwaitingApproval, statusCancelled, statusExpired} {
		if counts[s] > 0 {
			extra += fmt.Sprintf(", %d %s", counts[s], strings.ReplaceAll(s, "_", " "))
		}
	}
	if !asJSON {
		if noWait {
			fmt.Fprintf(e.stdout, "%d documents: %d submitted, %d known duplicates, %d failed%s\n",
				len(results), counts["submitted"], counts[statusDuplicate], failed, extra)
		} else {
			fmt.Fprintf(e.stdout, "%d documents: %d completed, %d duplicates, %d failed%s\n",
				len(results), counts[statusCompleted], counts[statusDuplicate], failed, extra)
		}
	}
	notIngested := failed
	if !noWait {
		notIngested += counts[statusAwaitingApproval] + counts[statusCancelled] + counts[statusExpired]
	}
	switch {
	case notIngested == 0:
		return nil
	case notIngested == failed:
		return fmt.Errorf("%d of %d documents failed", failed, len(results))
	default:
		return fmt.Errorf("%d of %d documents were not ingested (%d failed%s)", notIngested, len(results), failed, extra)
	}
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// ingestible reports whether a file of a directory is submitted, and
// whether it is HTML.
func ingestible(path string) (ok, html bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".txt", ".md":
		return true, false
	case ".html", ".htm":
		return true, true
	}
	return false, false
}

// documents lists what to submit for the argument.
func (e *environment) documents(arg, docID string) ([]document, error) {
	if arg == "-" {
		return []document{{label: "-", docID: docID, read: func() ([]byte, error) {
			b, err := io.ReadAll(e.stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			return b, nil
		}}}, nil
	}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		_, html := ingestible(arg)
		return []document{{label: arg, docID: docID, read: readFile(arg), html: html}}, nil
	}
	if docID != "" {
		return nil, errors.New("--doc-id names a single document; a directory's documents are named by their paths")
	}
	var docs []document
	seen := map[string]bool{}
	err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != arg && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		ok, html := ingestible(path)
		if !ok || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(arg, path)
		if err != nil {
			return err
		}
		id := DocIDFromPath(filepath.ToSlash(rel))
		if seen[id] {
			id = withHashSuffix(id, rel)
		}
		seen[id] = true
		docs = append(docs, document{label: path, docID: id, read: readFile(path), html: html})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", arg, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no .txt, .md or .html files under %s", arg)
	}
	slices.SortFunc(docs, func(a, b document) int { return strings.Compare(a.label, b.label) })
	return docs, nil
}

func readFile(path string) func() ([]byte, error) {
	return func() ([]byte, error) { return os.ReadFile(path) }
}

// DocIDFromPath turns a relative path into a doc id the edge accepts
// (^[A-Za-z0-9][A-Za-z0-9_.:-]*$, at most 128 bytes): other characters,
// path separators included, become '_'.
func DocIDFromPath(rel string) string {
	var b strings.Builder
	for _, c := range rel {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		switch {
		case alnum:
			b.WriteRune(c)
		case b.Len() == 0:
			// The first character must be alphanumeric.
			b.WriteString("d_")
			if c == '_' || c == '.' || c == ':' || c == '-' {
				b.WriteRune(c)
			}
		case c == '_' || c == '.' || c == ':' || c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	id := b.String()
	if id == "" {
		id = "d"
	}
	if len(id) > maxDocID {
		id = withHashSuffix(id[:maxDocID-9], rel)
	}
	return id
}

// withHashSuffix distinguishes ids that sanitising or truncation made equal.
func withHashSuffix(id, rel string) string {
	sum := sha256.Sum256([]byte(rel))
	suffix := "-" + hex.EncodeToString(sum[:4])
	if len(id)+len(suffix) > maxDocID {
		id = id[:maxDocID-len(suffix)]
	}
	return id + suffix
}
