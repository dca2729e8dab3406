package query

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// estimateTokens approximates the tokens of text as ceil(bytes/4), the
// usual ratio for English with OpenAI's tokenizers and the estimate
// libs/llm budgets with. Budgets are therefore approximate for other
// languages and models, but cheap and deterministic.
func estimateTokens(text string) int { return (len(text) + 3) / 4 }

// csvRow renders one row of nano-graphrag's CSV-like tables
// (list_of_list_to_csv): fields joined by ",\t", strings quoted, numbers
// bare. Quotes inside a string are doubled, as in CSV.
func csvRow(fields ...any) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteString(",\t")
		}
		switch v := f.(type) {
		case int:
			b.WriteString(strconv.Itoa(v))
		case float64:
			b.WriteString(formatNumber(v))
		case string:
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(v, `"`, `""`))
			b.WriteByte('"')
		default:
			panic("csvRow: unsupported field type") // a programming error
		}
	}
	return b.String()
}

// formatNumber writes 3 as "3" and 2.5 as "2.5", like Python prints them.
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// csvTable renders a header row and the rows, one per line.
func csvTable(header []any, rows []string) string {
	return strings.Join(append([]string{csvRow(header...)}, rows...), "\n")
}

// packer collects rows while their estimated tokens (a row and its line
// break) fit in budget. Like nano-graphrag's truncate_list_by_token_size it
// stops at the first row that does not fit, even if a later, smaller one
// would: rows come ranked, so it is the lowest-ranked that are dropped.
type packer struct {
	budget int
	used   int
	rows   []string
	full   bool
}

// add appends row if it fits and reports whether it did.
func (p *packer) add(row string) bool {
	if p.full {
		return false
	}
	n := estimateTokens(row + "\n")
	if p.used+n > p.budget {
		p.full = true
		return false
	}
	p.used += n
	p.rows = append(p.rows, row)
	return true
}

// pack renders items as rows in order into a packer with budget and
// returns the rows and the items kept.
func pack[T any](items []T, budget int, row func(i int, item T) string) ([]string, []T) {
	p := packer{budget: budget}
	for i, item := range items {
		if !p.add(row(i, item)) {
			return p.rows, items[:i]
		}
	}
	return p.rows, items
}

// truncateToTokens cuts text to at most tokens estimated tokens, on a rune
// boundary.
func truncateToTokens(text string, tokens int) string {
	maxBytes := max(tokens, 0) * 4
	if len(text) <= maxBytes {
		return text
	}
	cut := maxBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}

// reportString renders a community report as markdown, as nano-graphrag's
// _community_report_json_to_str (after Microsoft GraphRAG) does.
func reportString(c graph.Community) string {
	title := c.Title
	if title == "" {
		title = "Report"
	}
	var b strings.Builder
	b.WriteString("# " + title + "\n\n" + c.Summary + "\n\n")
	for i, f := range c.Findings {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("## " + f.Summary + "\n\n" + f.Explanation)
	}
	return b.String()
}
