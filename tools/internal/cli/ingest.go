package cli

import (
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
	read  func() (string, error)
}

// ingestResult is how one document's submission ended.
type ingestResult struct {
	view jobView
	err  error
}

func (e *environment) ingest(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("ingest", &g)
	namespace := fs.String("namespace", "", "namespace (tenant or collection); the server's default when empty")
	docID := fs.String("doc-id", "", "document id (a single file or stdin only); derived from the content when empty")
	force := fs.Bool("force", false, "re-ingest even if the same content was already ingested")
	metadata := metadataFlag{}
	fs.Var(metadata, "metadata", "metadata key=value kept with the job (repeatable)")
	noWait := fs.Bool("no-wait", false, "print the job ids and return without waiting")
	watch := fs.Bool("watch", e.terminal, "show progress while waiting (default when stdout is a terminal)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: kg ingest FILE|DIR|- [flags]\n\nDIR submits every .txt and .md file under it, each its own job.")
		fs.PrintDefaults()
	}
	positional, err := parse(fs, args)
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

	out := newRenderer(e.stdout, e.terminal, *watch && !*noWait && !g.json)
	submitOne := func(ctx context.Context, d document) ingestResult {
		content, err := d.read()
		if err != nil {
			return ingestResult{err: err}
		}
		body := map[string]any{"content": content, "force": *force}
		if d.docID != "" {
			body["doc_id"] = d.docID
		}
		if *namespace != "" {
			body["namespace"] = *namespace
		}
		if len(metadata) > 0 {
			body["metadata"] = map[string]string(metadata)
		}
		raw, err := c.do(ctx, http.MethodPost, "/api/v1/documents", body)
		if err != nil {
			return ingestResult{err: err}
		}
		var sub submitReply
		if err := json.Unmarshal(raw, &sub); err != nil {
			return ingestResult{err: fmt.Errorf("decode submit reply: %w", err)}
		}
		if *noWait {
			view := jobView{JobID: sub.JobID, DocID: sub.DocID, Namespace: sub.Namespace, Status: sub.Status,
				Duplicate: sub.Duplicate, ExistingJobID: sub.ExistingJobID}
			if g.json {
				return ingestResult{view: view, err: out.json(raw)}
			}
			if sub.Duplicate {
				out.println(finalLine(view))
			} else {
				out.println(fmt.Sprintf("%s submitted (%s) in namespace %s", sub.JobID, sub.DocID, sub.Namespace))
			}
			return ingestResult{view: view}
		}
		view, err := c.waitJob(ctx, sub.JobID, out.progress)
		if err != nil {
			return ingestResult{err: err}
		}
		if g.json {
			return ingestResult{view: view, err: out.json(view.raw)}
		}
		out.println(finalLine(view))
		return ingestResult{view: view}
	}

	if positional[0] == "-" || !isDir(positional[0]) {
		r := submitOne(ctx, docs[0])
		out.done()
		if r.err != nil {
			return r.err
		}
		if r.view.Status == statusFailed {
			return fmt.Errorf("job %s failed: %s", r.view.JobID, r.view.Error)
		}
		return nil
	}

	results := make([]ingestResult, len(docs))
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(ingestInFlight)
	for i, d := range docs {
		grp.Go(func() error {
			results[i] = submitOne(gctx, d)
			if results[i].err != nil {
				out.done()
				fmt.Fprintf(e.stderr, "kg: %s: %v\n", d.label, results[i].err)
			}
			// One document's failure does not stop the others; only the
			// command's context does.
			return nil
		})
	}
	_ = grp.Wait()
	out.done()
	return e.summarise(results, *noWait, g.json)
}

func (e *environment) summarise(results []ingestResult, noWait, asJSON bool) error {
	counts := map[string]int{}
	failed := 0
	for _, r := range results {
		switch {
		case r.err != nil || r.view.Status == statusFailed:
			failed++
		case noWait && !r.view.Duplicate:
			counts["submitted"]++
		default:
			counts[r.view.Status]++
		}
	}
	if !asJSON {
		if noWait {
			fmt.Fprintf(e.stdout, "%d documents: %d submitted, %d known duplicates, %d failed\n",
				len(results), counts["submitted"], counts[statusDuplicate], failed)
		} else {
			fmt.Fprintf(e.stdout, "%d documents: %d completed, %d duplicates, %d failed\n",
				len(results), counts[statusCompleted], counts[statusDuplicate], failed)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d documents failed", failed, len(results))
	}
	return nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// documents lists what to submit for the argument.
func (e *environment) documents(arg, docID string) ([]document, error) {
	if arg == "-" {
		return []document{{label: "-", docID: docID, read: func() (string, error) {
			b, err := io.ReadAll(e.stdin)
			if err != nil {
				return "", fmt.Errorf("read stdin: %w", err)
			}
			return string(b), nil
		}}}, nil
	}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []document{{label: arg, docID: docID, read: readFile(arg)}}, nil
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
		ext := strings.ToLower(filepath.Ext(path))
		if ext != ".txt" && ext != ".md" || !d.Type().IsRegular() {
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
		docs = append(docs, document{label: path, docID: id, read: readFile(path)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", arg, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no .txt or .md files under %s", arg)
	}
	slices.SortFunc(docs, func(a, b document) int { return strings.Compare(a.label, b.label) })
	return docs, nil
}

func readFile(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
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
