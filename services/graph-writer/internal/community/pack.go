package community

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/graph"
)

// EstimateTokens estimates the tokens of text at four bytes a token,
// rounding up.
func EstimateTokens(text string) int { return (len(text) + 3) / 4 }

// SubReport is a sub-community's report, which can stand for its members
// when its parent's tables do not fit the budget.
type SubReport struct {
	Keys   []string
	Report Report
}

// Pack renders a community's report input as nano-graphrag does: CSV-like
// tables (",\t"-separated) of the members (id, entity, type, description,
// degree; highest degree first) and of the relations between them (id,
// source, target, description, rank = the sum of the endpoints' degrees;
// highest rank first), within budgetTokens (no limit when <= 0). When the
// tables do not fit and sub-community reports are given, the largest of
// those come first, in a reports table, and their members and inner
// relations are left out of the other tables; the remaining budget is split
// between entities and relations by their numbers.
func Pack(c Community, subs []SubReport, budgetTokens int) string {
	degree := degrees(c.Relations)
	entities := byDegree(c.Entities, degree)
	relations := slices.Clone(c.Relations)
	rank := func(r graph.Relation) int { return degree[r.Source] + degree[r.Target] }
	slices.SortStableFunc(relations, func(a, b graph.Relation) int {
		return cmp.Or(cmp.Compare(rank(b), rank(a)), cmp.Compare(b.Weight, a.Weight),
			cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	names := make(map[string]string, len(c.Entities))
	for _, e := range c.Entities {
		names[e.Key] = e.Name
	}
	entityRow := func(i int, e graph.Entity) string {
		return row(strconv.Itoa(i), quote(e.Name), quote(e.Type), quote(e.Description), strconv.Itoa(degree[e.Key]))
	}
	relationRow := func(i int, r graph.Relation) string {
		return row(strconv.Itoa(i), quote(names[r.Source]), quote(names[r.Target]), quote(r.Description), strconv.Itoa(rank(r)))
	}

	var entityRows, relationRows []string
	for i, e := range entities {
		entityRows = append(entityRows, entityRow(i, e))
	}
	for i, r := range relations {
		relationRows = append(relationRows, relationRow(i, r))
	}
	full := render(nil, entityRows, relationRows)
	if budgetTokens <= 0 || EstimateTokens(full) <= budgetTokens {
		return full
	}

	remaining := budgetTokens - EstimateTokens(render([]string{}, nil, nil))
	var reportRows []string
	inSub := map[string]int{} // member key → index of the included sub-report
	subs = slices.Clone(subs)
	slices.SortStableFunc(subs, func(a, b SubReport) int { return cmp.Compare(len(b.Keys), len(a.Keys)) })
	for i, s := range subs {
		r := row(strconv.Itoa(i), quote(s.Report.String()), strconv.FormatFloat(s.Report.Rating, 'g', -1, 64), strconv.Itoa(len(s.Keys)))
		if EstimateTokens(r+"\n") > remaining {
			break
		}
		remaining -= EstimateTokens(r + "\n")
		reportRows = append(reportRows, r)
		for _, k := range s.Keys {
			inSub[k] = i
		}
	}

	entityRows, relationRows = entityRows[:0], relationRows[:0]
	for _, e := range entities {
		if _, covered := inSub[e.Key]; !covered {
			entityRows = append(entityRows, entityRow(len(entityRows), e))
		}
	}
	for _, r := range relations {
		src, srcCovered := inSub[r.Source]
		dst, dstCovered := inSub[r.Target]
		if !srcCovered || !dstCovered || src != dst {
			relationRows = append(relationRows, relationRow(len(relationRows), r))
		}
	}
	remaining = max(0, remaining)
	entityShare := remaining * len(entityRows) / max(1, len(entityRows)+len(relationRows))
	return render(reportRows, truncate(entityRows, entityShare), truncate(relationRows, remaining-entityShare))
}

// render assembles the tables; reports == nil leaves the reports table out.
func render(reports, entities, relations []string) string {
	var b strings.Builder
	table := func(title string, header []string, rows []string) {
		fmt.Fprintf(&b, "-----%s-----\n```csv\n%s\n", title, row(header...))
		for _, r := range rows {
			b.WriteString(r + "\n")
		}
		b.WriteString("```\n")
	}
	if reports != nil {
		table("Reports", []string{"id", "report", "rating", "importance"}, reports)
	}
	table("Entities", []string{"id", "entity", "type", "description", "degree"}, entities)
	table("Relationships", []string{"id", "source", "target", "description", "rank"}, relations)
	return strings.TrimSuffix(b.String(), "\n")
}

// truncate keeps the leading rows that fit in budget tokens.
func truncate(rows []string, budget int) []string {
	used := 0
	for i, r := range rows {
		used += EstimateTokens(r + "\n")
		if used > budget {
			return rows[:i]
		}
	}
	return rows
}

func row(fields ...string) string { return strings.Join(fields, ",\t") }

// quote makes a text field one line in double quotes; quotes inside are
// doubled, as in CSV.
func quote(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
