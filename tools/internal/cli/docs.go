package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const docsUsage = `Usage:
  kg docs list [--status ingesting|ready|failed|cancelled|deleting] [--limit N] [--cursor C] [--namespace NS]
  kg docs show ID [--content] [--namespace NS]
  kg docs delete ID [--no-wait] [--yes] [--namespace NS]`

func (e *environment) docs(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, docsUsage)
		return errors.New("docs takes list, show or delete")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "list":
		return e.docsList(ctx, rest)
	case "show":
		return e.docsShow(ctx, rest)
	case "delete":
		return e.docsDelete(ctx, rest)
	default:
		fmt.Fprintln(e.stderr, docsUsage)
		return fmt.Errorf("unknown docs command %q", sub)
	}
}

// documentView is a document of GET /api/v1/documents[/{id}].
type documentView struct {
	DocID         string            `json:"doc_id"`
	Namespace     string            `json:"namespace"`
	Status        string            `json:"status"`
	JobID         string            `json:"job_id"`
	ClientID      string            `json:"client_id"`
	ContentSHA256 string            `json:"content_sha256"`
	ContentBytes  int               `json:"content_bytes"`
	Metadata      map[string]string `json:"metadata"`
	Chunks        int               `json:"chunks"`
	Entities      int               `json:"entities"`
	Relations     int               `json:"relations"`
	DeletionJobID string            `json:"deletion_job_id"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	// Content and Job come with a single document.
	Content string   `json:"content"`
	Job     *jobView `json:"job"`
}

// documentList is GET /api/v1/documents.
type documentList struct {
	Documents  []documentView `json:"documents"`
	NextCursor string         `json:"next_cursor"`
}

func (e *environment) docsList(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("docs list", &g, true)
	status := fs.String("status", "", "only documents in this status (ingesting, ready, failed, cancelled, deleting)")
	limit := fs.Int("limit", 0, "documents per page, 1 to 500; the server's default (50) when 0")
	cursor := fs.String("cursor", "", "the page after this cursor (printed under a full page)")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 0 {
		return errors.New("docs list takes no arguments")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := url.Values{}
	setNonEmpty(q, "namespace", g.namespace())
	setNonEmpty(q, "status", *status)
	setNonEmpty(q, "cursor", *cursor)
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	var list documentList
	raw, err := c.get(ctx, "/api/v1/documents", q, &list)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	if len(list.Documents) == 0 {
		// A filtered page can be empty and still not the last one.
		fmt.Fprintln(e.stdout, "no documents")
		nextPage(e, "kg docs list", fs, list.NextCursor)
		return nil
	}
	rows := make([][]string, 0, len(list.Documents))
	for _, d := range list.Documents {
		rows = append(rows, []string{d.DocID, d.Namespace, d.Status, strconv.Itoa(d.Chunks), strconv.Itoa(d.Entities),
			strconv.Itoa(d.Relations), strconv.Itoa(d.ContentBytes), clock(d.CreatedAt), d.JobID})
	}
	if err := table(e.stdout, []string{"DOC", "NAMESPACE", "STATUS", "CHUNKS", "ENTITIES", "RELATIONS", "BYTES", "CREATED", "JOB"}, rows); err != nil {
		return err
	}
	nextPage(e, "kg docs list", fs, list.NextCursor)
	return nil
}

func docPath(id, namespace string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	setNonEmpty(q, "namespace", namespace)
	p := "/api/v1/documents/" + url.PathEscape(id)
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

func (e *environment) docsShow(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("docs show", &g, true)
	content := fs.Bool("content", false, "print the document's text too")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	id, err := oneID(fs, positional, "docs show")
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := url.Values{}
	if !*content {
		q.Set("without_content", "true")
	}
	var d documentView
	raw, err := c.get(ctx, docPath(id, g.namespace(), q), nil, &d)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	job := d.JobID
	if d.Job != nil {
		job += " (" + d.Job.Status + ")"
	}
	var meta []string
	for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
		meta = append(meta, k+"="+d.Metadata[k])
	}
	fields(e.stdout, [][2]string{
		{"doc", d.DocID}, {"namespace", d.Namespace}, {"status", d.Status}, {"job", job}, {"client", d.ClientID},
		{"deletion", d.DeletionJobID}, {"bytes", strconv.Itoa(d.ContentBytes)}, {"sha256", d.ContentSHA256},
		{"chunks", strconv.Itoa(d.Chunks)}, {"entities", strconv.Itoa(d.Entities)}, {"relations", strconv.Itoa(d.Relations)},
		{"metadata", strings.Join(meta, ", ")}, {"created", clock(d.CreatedAt)}, {"updated", clock(d.UpdatedAt)},
	})
	if *content {
		fmt.Fprintln(e.stdout)
		fmt.Fprintln(e.stdout, strings.TrimRight(d.Content, "\n"))
	}
	return nil
}

// deleteReply is DELETE /api/v1/documents/{id}.
type deleteReply struct {
	JobID     string `json:"job_id"`
	DocID     string `json:"doc_id"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func (e *environment) docsDelete(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("docs delete", &g, true)
	noWait := fs.Bool("no-wait", false, "print the deletion job's id and return without waiting")
	watch := fs.Bool("watch", e.terminal, "show progress while waiting (default when stdout is a terminal)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (kg asks only when stdin is a terminal)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: kg docs delete ID [flags]\n\nDeletes the document's chunks, its share of entity and relation descriptions and its\nvectors; entities left with no source disappear. No LLM call.")
		fs.PrintDefaults()
	}
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	id, err := oneID(fs, positional, "docs delete")
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	out := e.renderer(*watch && !*noWait && !g.json)
	defer out.done()
	if !*yes && e.interactive {
		where := g.namespace()
		if where == "" {
			where = "the default namespace"
		} else {
			where = "namespace " + where
		}
		answer, err := out.ask(fmt.Sprintf("delete document %s from %s? [y/N] ", id, where), e.answers())
		if err != nil {
			return err
		}
		if a := strings.ToLower(answer); a != "y" && a != "yes" {
			return errors.New("not deleted")
		}
	}
	raw, err := c.do(ctx, http.MethodDelete, docPath(id, g.namespace(), nil), nil)
	if err != nil {
		return err
	}
	var del deleteReply
	if err := jsonUnmarshal(raw, &del, "deletion reply"); err != nil {
		return err
	}
	if *noWait {
		if g.json {
			return out.json(raw)
		}
		out.println(fmt.Sprintf("%s deleting %s from namespace %s: %s", del.JobID, del.DocID, del.Namespace, del.Message))
		return nil
	}
	v, err := c.waitJob(ctx, del.JobID, out.progress)
	if err != nil {
		return err
	}
	if v.Status == statusCompleted {
		awaitGone(ctx, c, docPath(del.DocID, del.Namespace, url.Values{"without_content": {"true"}}))
	}
	return e.reportEnd(out, v, g.json)
}

// documentGoneWait bounds the wait for a deleted document's record to go.
const documentGoneWait = 5 * time.Second

// awaitGone waits a little for the record of a document whose deletion
// completed to disappear: the projection removes it just after it records
// the job completed, and a `kg docs list` right after `kg docs delete`
// should not show it. A record another ingestion took over meanwhile stays;
// the wait then ends at its bound.
func awaitGone(ctx context.Context, c *client, path string) {
	deadline := time.Now().Add(documentGoneWait)
	for time.Now().Before(deadline) {
		if _, err := c.do(ctx, http.MethodGet, path, nil); statusOf(err) == http.StatusNotFound || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollInterval / 5):
		}
	}
}
