package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
)

const adminUsage = `Usage:
  kg admin info                                   the deployment and the key you use
  kg admin dead-letters [list] [--consumer C] [--limit N] [--cursor C] [--namespace NS]
  kg admin dead-letters show SEQ                  one dead letter with its payload and headers
  kg admin dead-letters replay SEQ                republish its event and drop the dead letter
  kg admin scheduler [status]                     approval expiry and retention: settings and runs
  kg admin scheduler cleanup [--dry-run]          run expiry and retention now
  kg admin cache-clear [--namespace NS]           drop the namespace's cached answers`

func (e *environment) admin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, adminUsage)
		return errors.New("admin takes info, dead-letters, scheduler or cache-clear")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "info":
		return e.adminInfo(ctx, rest)
	case "dead-letters":
		return e.adminDeadLetters(ctx, rest)
	case "scheduler":
		return e.adminScheduler(ctx, rest)
	case "cache-clear":
		return e.adminCacheClear(ctx, rest)
	default:
		fmt.Fprintln(e.stderr, adminUsage)
		return fmt.Errorf("unknown admin command %q", sub)
	}
}

// infoReply is GET /api/v1/info.
type infoReply struct {
	Version       string    `json:"version"`
	Mode          string    `json:"mode"`
	GraphStore    string    `json:"graph_store"`
	VectorStore   string    `json:"vector_store"`
	KVStore       string    `json:"kv_store"`
	Extractor     string    `json:"extractor"`
	Embedder      string    `json:"embedder"`
	GoVersion     string    `json:"go_version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Auth          struct {
		Enabled          bool `json:"enabled"`
		Keys             int  `json:"keys"`
		DefaultRateLimit int  `json:"default_rate_limit_per_minute"`
	} `json:"auth"`
	ApprovalNamespaces []string `json:"approval_namespaces"`
	Caller             struct {
		KeyID      string   `json:"key_id"`
		ClientID   string   `json:"client_id"`
		Role       string   `json:"role"`
		Namespaces []string `json:"namespaces"`
	} `json:"caller"`
}

// noArgs parses a command that takes no positional arguments.
func (e *environment) noArgs(fs *flag.FlagSet, g *globals, args []string, what string) error {
	positional, err := e.parse(fs, g, args)
	if err != nil {
		return err
	}
	if len(positional) != 0 {
		return fmt.Errorf("%s takes no arguments", what)
	}
	return nil
}

func (e *environment) adminInfo(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("admin info", &g, false)
	if err := e.noArgs(fs, &g, args, "admin info"); err != nil {
		return helpRequested(err)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	var r infoReply
	raw, err := c.get(ctx, "/api/v1/info", nil, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	auth := "OFF (anyone reaching the server is an admin of every namespace)"
	if r.Auth.Enabled {
		auth = fmt.Sprintf("on, %d keys", r.Auth.Keys)
		if r.Auth.DefaultRateLimit > 0 {
			auth += fmt.Sprintf(", %d requests/minute per key by default", r.Auth.DefaultRateLimit)
		}
	}
	caller := fmt.Sprintf("key %s, client %s, role %s, namespaces %s", orDash(r.Caller.KeyID), orDash(r.Caller.ClientID),
		r.Caller.Role, strings.Join(r.Caller.Namespaces, ","))
	fields(e.stdout, [][2]string{
		{"server", c.base}, {"version", r.Version}, {"mode", r.Mode}, {"go", r.GoVersion},
		{"started", clock(r.StartedAt) + fmt.Sprintf(" (up %s)", (time.Duration(r.UptimeSeconds)*time.Second).String())},
		{"graph", r.GraphStore}, {"vectors", r.VectorStore}, {"kv", r.KVStore}, {"extractor", r.Extractor}, {"embedder", r.Embedder},
		{"auth", auth}, {"approval", strings.Join(r.ApprovalNamespaces, ", ")}, {"you", caller},
	})
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// deadLetter is one dead letter of GET /api/v1/admin/dead-letters[/{seq}].
type deadLetter struct {
	Seq              uint64              `json:"seq"`
	Time             time.Time           `json:"time"`
	Consumer         string              `json:"consumer"`
	Subject          string              `json:"subject"`
	StreamSeq        uint64              `json:"stream_seq"`
	Type             string              `json:"type"`
	EventID          string              `json:"event_id"`
	JobID            string              `json:"job_id"`
	Namespace        string              `json:"namespace"`
	Reason           string              `json:"reason"`
	Deliveries       uint64              `json:"deliveries"`
	ReplayOf         uint64              `json:"replay_of"`
	Payload          string              `json:"payload"`
	PayloadBytes     int                 `json:"payload_bytes"`
	PayloadTruncated bool                `json:"payload_truncated"`
	Headers          map[string][]string `json:"headers"`
}

// deadLetterList is GET /api/v1/admin/dead-letters.
type deadLetterList struct {
	DeadLetters []deadLetter `json:"dead_letters"`
	NextCursor  string       `json:"next_cursor"`
}

func (e *environment) adminDeadLetters(ctx context.Context, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return e.deadLettersList(ctx, args)
	case "show", "replay":
		return e.deadLetterOne(ctx, sub, args)
	default:
		fmt.Fprintln(e.stderr, adminUsage)
		return fmt.Errorf("unknown dead-letters command %q", sub)
	}
}

func (e *environment) deadLettersList(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("admin dead-letters list", &g, true)
	consumer := fs.String("consumer", "", "only dead letters of this consumer (dedup, graph-writer, …)")
	limit := fs.Int("limit", 0, "dead letters per page, 1 to 500; the server's default (50) when 0")
	cursor := fs.String("cursor", "", "the page after this cursor (printed under a full page)")
	if err := e.noArgs(fs, &g, args, "admin dead-letters list"); err != nil {
		return helpRequested(err)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := namespaceQuery(&g)
	setNonEmpty(q, "consumer", *consumer)
	setNonEmpty(q, "cursor", *cursor)
	setPositive(q, "limit", *limit)
	var list deadLetterList
	raw, err := c.get(ctx, "/api/v1/admin/dead-letters", q, &list)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	if len(list.DeadLetters) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters")
	} else {
		rows := make([][]string, 0, len(list.DeadLetters))
		for _, d := range list.DeadLetters {
			rows = append(rows, []string{strconv.FormatUint(d.Seq, 10), clock(d.Time), d.Consumer, orDash(d.Type),
				orDash(d.Namespace), orDash(d.JobID), clip(d.Reason, 60)})
		}
		if err := table(e.stdout, []string{"SEQ", "TIME", "CONSUMER", "TYPE", "NAMESPACE", "JOB", "REASON"}, rows); err != nil {
			return err
		}
	}
	nextPage(e, "kg admin dead-letters list", fs, list.NextCursor)
	return nil
}

// deadLetterOne shows or replays one dead letter.
func (e *environment) deadLetterOne(ctx context.Context, sub string, args []string) error {
	var g globals
	fs := e.flags("admin dead-letters "+sub, &g, false)
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	seq, err := oneID(fs, positional, "admin dead-letters "+sub)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(seq, 10, 64); err != nil || n == 0 {
		return fmt.Errorf("dead letter %q: want its seq, a positive number", seq)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	path := "/api/v1/admin/dead-letters/" + seq
	if sub == "replay" {
		var r struct {
			Seq       uint64 `json:"seq"`
			Subject   string `json:"subject"`
			StreamSeq uint64 `json:"stream_seq"`
			Message   string `json:"message"`
		}
		raw, err := c.post(ctx, path+"/replay", nil, &r)
		if err != nil {
			return err
		}
		if g.json {
			return e.printJSON(raw)
		}
		fmt.Fprintf(e.stdout, "dead letter %d %s (%s, event stream seq %d)\n", r.Seq, r.Message, r.Subject, r.StreamSeq)
		return nil
	}
	var d deadLetter
	raw, err := c.get(ctx, path, nil, &d)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	replayOf := ""
	if d.ReplayOf != 0 {
		replayOf = strconv.FormatUint(d.ReplayOf, 10)
	}
	fields(e.stdout, [][2]string{
		{"seq", strconv.FormatUint(d.Seq, 10)}, {"time", clock(d.Time)}, {"consumer", d.Consumer}, {"subject", d.Subject},
		{"stream seq", strconv.FormatUint(d.StreamSeq, 10)}, {"type", d.Type}, {"event", d.EventID}, {"job", d.JobID},
		{"namespace", d.Namespace}, {"deliveries", strconv.FormatUint(d.Deliveries, 10)}, {"replay of", replayOf},
		{"reason", d.Reason}, {"payload", fmt.Sprintf("%d bytes", d.PayloadBytes)},
	})
	fmt.Fprintln(e.stdout)
	fmt.Fprintln(e.stdout, d.Payload)
	return nil
}

func (e *environment) adminScheduler(ctx context.Context, args []string) error {
	sub := "status"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if sub != "status" && sub != "cleanup" {
		fmt.Fprintln(e.stderr, adminUsage)
		return fmt.Errorf("unknown scheduler command %q", sub)
	}
	var g globals
	fs := e.flags("admin scheduler "+sub, &g, false)
	dryRun := false
	if sub == "cleanup" {
		fs.BoolVar(&dryRun, "dry-run", false, "report what would be expired and purged without changing anything")
	}
	if err := e.noArgs(fs, &g, args, "admin scheduler "+sub); err != nil {
		return helpRequested(err)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	if sub == "cleanup" {
		var r events.SchedulerCleanupReply
		raw, err := c.post(ctx, "/api/v1/admin/scheduler/cleanup", map[string]bool{"dry_run": dryRun}, &r)
		if err != nil {
			return err
		}
		if g.json {
			return e.printJSON(raw)
		}
		verb := "expired %d jobs awaiting approval, purged %d finished job records\n"
		if dryRun {
			verb = "dry run: would expire %d jobs awaiting approval and purge %d finished job records\n"
		}
		fmt.Fprintf(e.stdout, verb, r.Expired, r.Purged)
		for _, id := range r.JobIDsExpired {
			fmt.Fprintln(e.stdout, "  expired "+id)
		}
		for _, id := range r.JobIDsPurged {
			fmt.Fprintln(e.stdout, "  purged  "+id)
		}
		return nil
	}
	var s events.SchedulerStatus
	raw, err := c.get(ctx, "/api/v1/admin/scheduler/status", nil, &s)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	retention := s.Retention
	if s.RetentionSeconds == 0 {
		retention = "forever"
	}
	lastRun := "never"
	if !s.LastRunAt.IsZero() {
		lastRun = fmt.Sprintf("%s: expired %d, purged %d", clock(s.LastRunAt), s.LastExpired, s.LastPurged)
	}
	running := ""
	if s.Running {
		running = "yes"
	}
	fields(e.stdout, [][2]string{
		{"every", s.Interval}, {"approval", "jobs awaiting approval expire after " + s.ApprovalTTL},
		{"retention", "finished jobs kept " + retention}, {"last run", lastRun}, {"next run", clock(s.NextRunAt)},
		{"runs", strconv.Itoa(s.Runs)}, {"running", running},
	})
	return nil
}

func (e *environment) adminCacheClear(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("admin cache-clear", &g, true)
	if err := e.noArgs(fs, &g, args, "admin cache-clear"); err != nil {
		return helpRequested(err)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	var body any
	if ns := g.namespace(); ns != "" {
		body = map[string]string{"namespace": ns}
	}
	var r events.QueryCacheClearResponse
	raw, err := c.post(ctx, "/api/v1/cache/clear", body, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	fmt.Fprintf(e.stdout, "cleared %d cached answers in namespace %s\n", r.Deleted, r.Namespace)
	return nil
}
