package community

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// MaxRating bounds a report's rating, GraphRAG's impact scale of 0 to 10.
const MaxRating = 10

// Report is a community report in GraphRAG's JSON shape.
type Report struct {
	Title             string
	Summary           string
	Rating            float64
	RatingExplanation string
	Findings          []graph.Finding
}

// ReportOf returns the report fields of a stored community.
func ReportOf(c graph.Community) Report {
	return Report{Title: c.Title, Summary: c.Summary, Rating: c.Rating, RatingExplanation: c.RatingExplanation, Findings: c.Findings}
}

// ApplyTo sets the community's report fields.
func (r Report) ApplyTo(c *graph.Community) {
	c.Title, c.Summary, c.Rating, c.RatingExplanation, c.Findings = r.Title, r.Summary, r.Rating, r.RatingExplanation, r.Findings
}

// String renders the report as Markdown, as nano-graphrag does for the
// reports it packs into prompts.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s", r.Title, r.Summary)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n\n## %s\n\n%s", f.Summary, f.Explanation)
	}
	return b.String()
}

// ErrNoReport is returned by ParseReport for an answer that holds no usable
// report.
var ErrNoReport = errors.New("no community report in the answer")

// ParseReport reads an LLM's answer to the community report prompt
// tolerantly: the JSON object may be wrapped in prose or a code fence, keys
// may differ in case, the rating may be a string, and findings may be plain
// strings. An answer without a title or a summary is not a report.
func ParseReport(answer string) (Report, error) {
	start, end := strings.Index(answer, "{"), strings.LastIndex(answer, "}")
	if start < 0 || end < start {
		return Report{}, fmt.Errorf("%w: no JSON object", ErrNoReport)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(answer[start:end+1]), &raw); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrNoReport, err)
	}
	fields := make(map[string]any, len(raw))
	for k, v := range raw {
		fields[strings.ToLower(strings.TrimSpace(k))] = v
	}
	r := Report{
		Title:             text(fields["title"]),
		Summary:           text(fields["summary"]),
		Rating:            rating(fields["rating"]),
		RatingExplanation: text(fields["rating_explanation"]),
	}
	if findings, ok := fields["findings"].([]any); ok {
		for _, f := range findings {
			switch f := f.(type) {
			case map[string]any:
				finding := graph.Finding{}
				for k, v := range f {
					switch strings.ToLower(strings.TrimSpace(k)) {
					case "summary":
						finding.Summary = text(v)
					case "explanation":
						finding.Explanation = text(v)
					}
				}
				if finding.Summary != "" || finding.Explanation != "" {
					r.Findings = append(r.Findings, finding)
				}
			case string:
				if s := strings.TrimSpace(f); s != "" {
					r.Findings = append(r.Findings, graph.Finding{Summary: s})
				}
			}
		}
	}
	if r.Title == "" && r.Summary == "" {
		return Report{}, fmt.Errorf("%w: neither title nor summary", ErrNoReport)
	}
	if r.Title == "" {
		r.Title = firstSentence(r.Summary)
	}
	return r, nil
}

// text returns a JSON value as trimmed text: strings as they are, numbers
// and booleans formatted, anything else empty.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// rating reads a number or a numeric string ("7.5", "7.5/10"), clamped to
// 0..MaxRating; anything else is 0.
func rating(v any) float64 {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case string:
		s := strings.TrimSpace(v)
		if i := strings.IndexAny(s, "/ "); i > 0 {
			s = s[:i]
		}
		parsed, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0
		}
		f = parsed
	}
	if math.IsNaN(f) {
		return 0
	}
	return min(max(f, 0), MaxRating)
}

// Extractive writes a report without an LLM, from the community's own data:
// the title names its most connected members, the summary quotes their
// descriptions, the rating grows with its size and connectedness, and the
// findings are its strongest relations. The same community always gets the
// same report.
func Extractive(c Community) Report {
	degree := degrees(c.Relations)
	top := byDegree(c.Entities, degree)[:min(3, len(c.Entities))]
	names := make(map[string]string, len(c.Entities))
	for _, e := range c.Entities {
		names[e.Key] = e.Name
	}
	topNames := make([]string, len(top))
	for i, e := range top {
		topNames[i] = e.Name
	}

	var summary strings.Builder
	fmt.Fprintf(&summary, "A community of %d entities and %d relations among them, centred on %s.",
		len(c.Entities), len(c.Relations), enumerate(topNames))
	for _, e := range top {
		if d := firstSentence(e.Description); d != "" {
			fmt.Fprintf(&summary, " %s: %s", e.Name, d)
		}
	}

	maxDegree := 0
	for _, d := range degree {
		maxDegree = max(maxDegree, d)
	}
	// log2 keeps large communities from all rating 10: 2 entities with one
	// relation rate 4, 4 entities in a clique 7.8, 10 in a clique 10.
	r := 1 + 2*math.Log2(float64(max(1, len(c.Entities)))) + math.Log2(1+float64(len(c.Relations)))
	r = math.Round(min(r, MaxRating)*10) / 10

	strongest := slices.Clone(c.Relations)
	slices.SortStableFunc(strongest, func(a, b graph.Relation) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	var findings []graph.Finding
	for _, rel := range strongest[:min(5, len(strongest))] {
		explanation := strings.Join(strings.Fields(rel.Description), " ")
		if explanation == "" {
			explanation = fmt.Sprintf("%s and %s are related.", names[rel.Source], names[rel.Target])
		}
		findings = append(findings, graph.Finding{
			Summary:     fmt.Sprintf("%s and %s", names[rel.Source], names[rel.Target]),
			Explanation: fmt.Sprintf("%s (weight %s)", explanation, strconv.FormatFloat(rel.Weight, 'g', -1, 64)),
		})
	}
	return Report{
		Title:   enumerate(topNames),
		Summary: summary.String(),
		Rating:  r,
		RatingExplanation: fmt.Sprintf("Estimated from the community's size: %d entities, %d relations, at most %d relations per entity.",
			len(c.Entities), len(c.Relations), maxDegree),
		Findings: findings,
	}
}

// enumerate joins names as "A", "A and B", "A, B and C".
func enumerate(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// firstSentence returns the first line of s up to its first sentence end.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}
