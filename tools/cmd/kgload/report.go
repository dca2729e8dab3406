package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// sharedCoresNote is printed with every report: the figures are only
// comparable within one run.
const sharedCoresNote = "the load generator (with the chi baseline in the same process) and kg serve share this machine's cores: " +
	"every request costs CPU on both sides, so absolute figures are lower than on separate machines; compare within one run"

// Phase names; evaluate looks the phases up by them.
const (
	phaseChi                = "chi"
	phaseChiSized           = "chi-sized"
	phaseHealth             = "health"
	phaseQueryCached        = "query-cached"
	phaseChiPaced           = "chi-paced"
	phaseHealthPaced        = "health-paced"
	phaseQueryCachedPaced   = "query-cached-paced"
	phaseQueryUncachedPaced = "query-uncached"
)

type machineInfo struct {
	CPUModel        string `json:"cpu_model"`
	Cores           int    `json:"cores"`
	GOMAXPROCS      int    `json:"gomaxprocs"`
	ServeGOMAXPROCS string `json:"serve_gomaxprocs"`
	GoVersion       string `json:"go_version"`
	ServeGoVersion  string `json:"serve_go_version"`
	Kernel          string `json:"kernel"`
	MemTotalGiB     int    `json:"mem_total_gib"`
	ServeArgs       string `json:"serve_args"`
	// LoadAvgStart and LoadAvgEnd are /proc/loadavg's one-minute figure
	// when the run started and ended: other work on the machine shows there.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	// Auth is kgload's -auth mode.
	Auth string `json:"auth"`
}

type corpusInfo struct {
	Bytes        int           `json:"bytes"`
	ApproxTokens int           `json:"approx_tokens"`
	Chunks       int           `json:"chunks"`
	JobID        string        `json:"job_id"`
	IngestWall   time.Duration `json:"ingest_wall_ns"`
}

type ratios struct {
	HealthToChi      float64 `json:"health_to_chi"`
	QueryCachedToChi float64 `json:"query_cached_to_chi"`
	// QueryCachedToChiSized compares with chi sending the same reply.
	QueryCachedToChiSized float64 `json:"query_cached_to_chi_sized"`
}

type check struct {
	Pass   bool   `json:"pass"`
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

type report struct {
	Date       time.Time     `json:"date"`
	Command    string        `json:"command"`
	Machine    machineInfo   `json:"machine"`
	Note       string        `json:"note"`
	Corpus     corpusInfo    `json:"corpus"`
	IdleRSSMiB float64       `json:"idle_rss_mib"`
	Phases     []phaseResult `json:"phases"`
	LoadRSS    rssReport     `json:"load_rss"`
	Ratios     ratios        `json:"ratios"`
	Checks     []check       `json:"checks"`
}

// evaluate computes the throughput ratios to the chi baseline and checks
// the targets against the phases that ran.
func evaluate(phases []phaseResult, targetRatio float64, targetP95 time.Duration) (ratios, []check) {
	byName := map[string]phaseResult{}
	for _, p := range phases {
		byName[p.Name] = p
	}
	var rs ratios
	var checks []check
	for _, c := range []struct {
		name, baseline string
		dst            *float64
	}{{phaseHealth, phaseChi, &rs.HealthToChi}, {phaseQueryCached, phaseChi, &rs.QueryCachedToChi},
		{phaseQueryCached, phaseChiSized, &rs.QueryCachedToChiSized}} {
		p, ok := byName[c.name]
		base, haveBase := byName[c.baseline]
		if !ok || !haveBase || base.Throughput == 0 {
			continue
		}
		*c.dst = p.Throughput / base.Throughput
		checks = append(checks, check{
			Pass: *c.dst >= targetRatio,
			Name: fmt.Sprintf("%s throughput >= %.2f x %s", c.name, targetRatio, c.baseline),
			Detail: fmt.Sprintf("%.2f x (%s vs %s req/s at %d connections)", *c.dst,
				thousands(p.Throughput), thousands(base.Throughput), p.Connections),
		})
	}
	// Each latency check shows the chi baseline's p95 under the same load.
	for _, c := range []struct{ name, baseline string }{
		{phaseHealth, phaseChi}, {phaseQueryCached, phaseChi},
		{phaseHealthPaced, phaseChiPaced}, {phaseQueryCachedPaced, phaseChiPaced},
	} {
		p, ok := byName[c.name]
		if !ok {
			continue
		}
		detail := fmt.Sprintf("p95 %s at %d connections, rate %s", fmtMS(p.Latency.P95), p.Connections, p.Rate)
		if b, ok := byName[c.baseline]; ok {
			detail += fmt.Sprintf(" (chi p95 %s)", fmtMS(b.Latency.P95))
		}
		checks = append(checks, check{Pass: p.Latency.P95 < ms(targetP95), Name: fmt.Sprintf("%s p95 < %s", c.name, targetP95), Detail: detail})
	}
	var failed []string
	for _, p := range phases {
		if p.Requests > 0 && p.Success < 1 {
			failed = append(failed, fmt.Sprintf("%s %.4f succeeded (%s)", p.Name, p.Success, fmtCodes(p.StatusCodes)))
		}
	}
	detail := "every reply 2xx/3xx"
	if len(failed) > 0 {
		detail = strings.Join(failed, "; ")
	}
	checks = append(checks, check{Pass: len(failed) == 0, Name: "no failed requests", Detail: detail})
	return rs, checks
}

// loadRSS combines the RSS samples of every phase that sampled kg serve.
func loadRSS(phases []phaseResult) rssReport {
	var all []int64
	for _, p := range phases {
		all = append(all, p.rssSamples...)
	}
	return summarizeRSS(all)
}

func writeJSON(w io.Writer, r report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

func writeText(w io.Writer, r report) {
	m := r.Machine
	fmt.Fprintf(w, "kgload: the REST edge of kg serve under load\n")
	fmt.Fprintf(w, "date:     %s\n", r.Date.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "command:  %s\n", r.Command)
	fmt.Fprintf(w, "machine:  %s, %d cores, %d GiB, %s; load average %s at the start, %s at the end\n",
		m.CPUModel, m.Cores, m.MemTotalGiB, m.Kernel, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "go:       kgload %s GOMAXPROCS %d; kg serve %s GOMAXPROCS %s\n", m.GoVersion, m.GOMAXPROCS, m.ServeGoVersion, m.ServeGOMAXPROCS)
	fmt.Fprintf(w, "auth:     %s\n", authDescription(m.Auth))
	if m.ServeArgs != "" {
		fmt.Fprintf(w, "serve:    extra flags %s\n", m.ServeArgs)
	}
	fmt.Fprintf(w, "note:     %s\n", r.Note)
	fmt.Fprintf(w, "corpus:   %d bytes (about %d tokens), %d chunks, ingested in %s\n",
		r.Corpus.Bytes, r.Corpus.ApproxTokens, r.Corpus.Chunks, r.Corpus.IngestWall.Round(time.Millisecond))
	fmt.Fprintf(w, "kg serve RSS after ingestion, before load: %.1f MiB\n\n", r.IdleRSSMiB)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\trate\tconns\treq/s\tp50\tp95\tp99\tmax\tok\tkg CPU/req\tkg cores\tgen cores\tother cores\tkg RSS peak/median\tstatus codes\t")
	for _, p := range r.Phases {
		cpu, cores, rss := "-", "-", "-"
		if p.RSS != nil {
			cpu = fmtMS(p.ServeCPUPerRequestMS)
			cores = fmt.Sprintf("%.2f", p.ServeCores)
			rss = fmt.Sprintf("%.0f/%.0f MiB", p.RSS.PeakMiB, p.RSS.MedianMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\t\n",
			p.Name, p.Rate, p.Connections, thousands(p.Throughput),
			fmtMS(p.Latency.P50), fmtMS(p.Latency.P95), fmtMS(p.Latency.P99), fmtMS(p.Latency.Max),
			fmt.Sprintf("%.2f%%", 100*p.Success), cpu, cores, p.GeneratorCores, p.OtherCores, rss, fmtCodes(p.StatusCodes))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "%-20s %s %s: %s; replies of %.0f bytes", p.Name, p.Method, p.URL, p.Description, p.ReplyBytes)
		if p.CachedReplies != nil {
			fmt.Fprintf(w, " (%d of %d replies from the cache)", *p.CachedReplies, p.Requests)
		}
		fmt.Fprintln(w)
		for _, e := range p.Errors {
			fmt.Fprintf(w, "%-20s error: %s\n", "", e)
		}
	}
	fmt.Fprintf(w, "\nthroughput ratio to chi: health %.2f, cached query %.2f (%.2f to chi sending the same reply)\n", r.Ratios.HealthToChi, r.Ratios.QueryCachedToChi, r.Ratios.QueryCachedToChiSized)
	fmt.Fprintf(w, "kg serve RSS under load: peak %.1f MiB, median %.1f MiB (%d samples, every 100 ms)\n\n",
		r.LoadRSS.PeakMiB, r.LoadRSS.MedianMiB, r.LoadRSS.Samples)
	for _, c := range r.Checks {
		verdict := "MISS"
		if c.Pass {
			verdict = "PASS"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", verdict, c.Name, c.Detail)
	}
}

// fmtMS prints milliseconds with three significant digits or so.
func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// thousands prints v rounded, with commas between thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtCodes(codes map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, codes[k]))
	}
	return strings.Join(parts, " ")
}

func authDescription(mode string) string {
	switch mode {
	case authGenerate:
		return "API key on every request (generated admin key in KG_API_KEYS, per-key rate limiter on with a limit never reached)"
	case authOff:
		return "off (kg serve --no-auth)"
	default:
		return "as configured outside kgload (-auth none)"
	}
}
