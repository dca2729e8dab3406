package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

const jobsUsage = `Usage:
  kg jobs list [--status S] [--kind ingest|delete] [--client-id C] [--limit N] [--cursor C] [--namespace NS]
  kg jobs show ID
  kg jobs watch ID...
  kg jobs approve ID [--wait]
  kg jobs cancel ID [--reason TEXT]`

func (e *environment) jobs(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, jobsUsage)
		return errors.New("jobs takes list, show, watch, approve or cancel")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "list":
		return e.jobsList(ctx, rest)
	case "show":
		return e.jobsShow(ctx, rest)
	case "watch":
		return e.jobsWatch(ctx, rest)
	case "approve":
		return e.jobsApprove(ctx, rest)
	case "cancel":
		return e.jobsCancel(ctx, rest)
	default:
		fmt.Fprintln(e.stderr, jobsUsage)
		return fmt.Errorf("unknown jobs command %q", sub)
	}
}

// jobList is GET /api/v1/jobs.
type jobList struct {
	Jobs       []jobView `json:"jobs"`
	NextCursor string    `json:"next_cursor"`
}

func (e *environment) jobsList(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("jobs list", &g, true)
	status := fs.String("status", "", "only jobs in this status (pending, awaiting_approval, approved, processing, completed, duplicate, failed, cancelled, expired)")
	kind := fs.String("kind", "", "only ingest or delete jobs")
	clientID := fs.String("client-id", "", "only jobs submitted by this client id")
	limit := fs.Int("limit", 0, "jobs per page, 1 to 500; the server's default (50) when 0")
	cursor := fs.String("cursor", "", "the page after this cursor (printed under a full page)")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 0 {
		return errors.New("jobs list takes no arguments")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := url.Values{}
	setNonEmpty(q, "namespace", g.namespace())
	setNonEmpty(q, "status", *status)
	setNonEmpty(q, "kind", *kind)
	setNonEmpty(q, "client_id", *clientID)
	setNonEmpty(q, "cursor", *cursor)
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	var list jobList
	raw, err := c.get(ctx, "/api/v1/jobs", q, &list)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	if len(list.Jobs) == 0 {
		// A filtered page can be empty and still not the last one.
		fmt.Fprintln(e.stdout, "no jobs")
		nextPage(e, "kg jobs list", fs, list.NextCursor)
		return nil
	}
	rows := make([][]string, 0, len(list.Jobs))
	for _, j := range list.Jobs {
		rows = append(rows, []string{j.JobID, j.Kind, j.Status, j.Namespace, j.DocID, progressCell(j), clock(j.CreatedAt)})
	}
	if err := table(e.stdout, []string{"JOB", "KIND", "STATUS", "NAMESPACE", "DOC", "PROGRESS", "CREATED"}, rows); err != nil {
		return err
	}
	nextPage(e, "kg jobs list", fs, list.NextCursor)
	return nil
}

// nextPage tells how to get the next page, on stderr so that the table
// alone goes to stdout.
// nextPage prints the command for the next page: the listing's filters as
// given (never the server, key or config), then the cursor.
func nextPage(e *environment, command string, fs *flag.FlagSet, cursor string) {
	if cursor == "" {
		return
	}
	filters := ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "server", "api-key", "config", "timeout", "json", "cursor":
			return
		}
		v := f.Value.String()
		if v == "" || strings.ContainsAny(v, " \t'\"\\$`") {
			v = strconv.Quote(v)
		}
		filters += " --" + f.Name + " " + v
	})
	fmt.Fprintf(e.stderr, "more: %s%s --cursor %s\n", command, filters, cursor)
}

func setNonEmpty(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// progressCell is a job's progress in a table: percent and chunks.
func progressCell(v jobView) string {
	cell := fmt.Sprintf("%d%%", v.Progress.Percent)
	if v.Progress.ChunksTotal > 0 {
		cell += fmt.Sprintf(" %d/%d", v.Progress.ChunksProcessed, v.Progress.ChunksTotal)
	}
	return cell
}

// oneID parses a subcommand taking one id.
func oneID(fs *flag.FlagSet, positional []string, what string) (string, error) {
	if len(positional) != 1 {
		fs.Usage()
		return "", fmt.Errorf("%s takes one id", what)
	}
	return positional[0], nil
}

func (e *environment) jobsShow(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("jobs show", &g, false)
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	id, err := oneID(fs, positional, "jobs show")
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	v, err := c.getJob(ctx, id)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(v.raw)
	}
	printJob(e, v)
	return nil
}

func printJob(e *environment, v jobView) {
	optClock := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	rows := [][2]string{
		{"job", v.JobID}, {"kind", v.Kind}, {"doc", v.DocID}, {"namespace", v.Namespace}, {"client", v.ClientID},
		{"status", v.Status}, {"earlier", v.ExistingJobID},
		{"progress", strings.TrimPrefix(progressLine(jobView{Progress: v.Progress, Status: v.Status}), " ")},
		{"relations", fmt.Sprint(v.Progress.Relations)}, {"extractor", v.Extractor},
	}
	if v.Estimate != nil {
		rows = append(rows, [2]string{"estimate", estimateText(v.Estimate)})
	}
	if u := v.Usage; u.Calls > 0 {
		rows = append(rows, [2]string{"llm", fmt.Sprintf("%d calls (%d cached), %d prompt + %d completion tokens, $%.4f",
			u.Calls, u.CachedCalls, u.PromptTokens, u.CompletionTokens, u.CostUSD)})
	}
	if len(v.Metadata) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
			kv = append(kv, k+"="+v.Metadata[k])
		}
		rows = append(rows, [2]string{"metadata", strings.Join(kv, ", ")})
	}
	if !v.CreatedAt.IsZero() {
		rows = append(rows, [2]string{"created", v.CreatedAt.Format(time.RFC3339)}, [2]string{"updated", v.UpdatedAt.Format(time.RFC3339)})
	}
	approved := optClock(v.ApprovedAt)
	if approved != "" && v.ApprovedBy != "" {
		approved += " by " + v.ApprovedBy
	}
	rows = append(rows, [2]string{"awaiting", optClock(v.AwaitingSince)}, [2]string{"approved", approved},
		[2]string{"cancelled", v.CancelledBy}, [2]string{"finished", optClock(v.FinishedAt)}, [2]string{"error", v.Error})
	fields(e.stdout, rows)
}

func (e *environment) jobsWatch(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("jobs watch", &g, false)
	watch := fs.Bool("watch", e.terminal, "show progress while waiting (default when stdout is a terminal)")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) == 0 {
		fmt.Fprintln(e.stderr, jobsUsage)
		return errors.New("jobs watch takes one or more job ids")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	out := e.renderer(*watch && !g.json)
	defer out.done()
	errs := make([]error, len(positional))
	grp, gctx := errgroup.WithContext(ctx)
	for i, id := range positional {
		grp.Go(func() error {
			v, err := c.waitJob(gctx, id, out.progress)
			if err == nil {
				err = e.reportEnd(out, v, g.json)
			}
			errs[i] = err
			return nil // one job's failure does not stop following the others
		})
	}
	_ = grp.Wait()
	return errors.Join(errs...)
}

// reportEnd prints how a job ended (its view with --json) and returns why
// it did not succeed, if it did not.
func (e *environment) reportEnd(out *renderer, v jobView, asJSON bool) error {
	if asJSON {
		if err := out.json(v.raw); err != nil {
			return err
		}
	} else {
		out.finish(v, finalLine(v))
	}
	return v.unsuccessful()
}

func (e *environment) jobsApprove(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("jobs approve", &g, false)
	wait := fs.Bool("wait", false, "follow the job until it ends")
	watch := fs.Bool("watch", e.terminal, "with --wait: show progress (default when stdout is a terminal)")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	id, err := oneID(fs, positional, "jobs approve")
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	r, raw, err := actSoon(ctx, c, id, "approve", nil)
	if err != nil {
		return err
	}
	out := e.renderer(*watch && *wait && !g.json)
	defer out.done()
	if g.json {
		if err := out.json(raw); err != nil {
			return err
		}
	} else {
		out.println(fmt.Sprintf("%s %s (%s): now %s", r.Job.JobID, r.Message, r.Job.DocID, r.Job.Status))
	}
	if !*wait {
		return nil
	}
	v, err := c.waitJob(ctx, id, out.progress)
	if err != nil {
		return err
	}
	return e.reportEnd(out, v, g.json)
}

// justSubmittedWait bounds how long approve and cancel wait for a job
// submitted a moment ago to be recorded.
const justSubmittedWait = 5 * time.Second

// actSoon approves or cancels a job. A job submitted a moment ago is unknown
// (404) until the projection records it, and pending until its record says
// it awaits approval, and approving it is refused (409) meanwhile: actSoon
// tries again while the job is unknown, or pending when approving, for a
// few seconds.
func actSoon(ctx context.Context, c *client, id, action string, body any) (jobAction, []byte, error) {
	deadline := time.Now().Add(justSubmittedWait)
	for {
		r, raw, err := c.jobAction(ctx, id, action, body)
		if time.Now().After(deadline) {
			return r, raw, err
		}
		switch statusOf(err) {
		case http.StatusNotFound:
		case http.StatusConflict:
			if action != "approve" {
				return r, raw, err
			}
			if v, gerr := c.getJob(ctx, id); gerr != nil || v.Status != statusPending {
				return r, raw, err
			}
		default:
			return r, raw, err
		}
		select {
		case <-ctx.Done():
			return r, raw, err
		case <-time.After(pollInterval / 5):
		}
	}
}

func (e *environment) jobsCancel(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("jobs cancel", &g, false)
	reason := fs.String("reason", "", "why, recorded with the job")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	id, err := oneID(fs, positional, "jobs cancel")
	if err != nil {
		return err
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	var body any
	if *reason != "" {
		body = map[string]string{"reason": *reason}
	}
	r, raw, err := actSoon(ctx, c, id, "cancel", body)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	fmt.Fprintf(e.stdout, "%s %s (%s): now %s\n", r.Job.JobID, r.Message, r.Job.DocID, r.Job.Status)
	return nil
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
	fs := e.flags("health", &g, false)
	positional, err := e.parse(fs, &g, args)
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
		if err := e.printJSON(r.raw); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%s (%s)\n", h.Status, c.base)
		for _, name := range slices.Sorted(maps.Keys(h.Backends)) {
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
