package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kgraph-dev/kgraph/events"
)

const graphUsage = `Usage:
  kg graph search [TEXT] [--limit N]              entities whose name contains TEXT (the most mentioned without)
  kg graph entity NAME [--relations N]            an entity, its heaviest relations and their other ends
  kg graph subgraph NAME [--depth N] [--max-nodes N]
  kg graph paths FROM TO [--max-depth N] [--max-paths N]
Each takes --namespace NS.`

// descriptionCells is the width of a description in a table.
const descriptionCells = 70

func (e *environment) graph(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, graphUsage)
		return errors.New("graph takes search, entity, subgraph or paths")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "search":
		return e.graphSearch(ctx, rest)
	case "entity":
		return e.graphEntity(ctx, rest)
	case "subgraph":
		return e.graphSubgraph(ctx, rest)
	case "paths":
		return e.graphPaths(ctx, rest)
	default:
		fmt.Fprintln(e.stderr, graphUsage)
		return fmt.Errorf("unknown graph command %q", sub)
	}
}

// namespaceQuery starts a query string with the namespace, if any.
func namespaceQuery(g *globals) url.Values {
	q := url.Values{}
	setNonEmpty(q, "namespace", g.namespace())
	return q
}

func setPositive(q url.Values, key string, n int) {
	if n > 0 {
		q.Set(key, strconv.Itoa(n))
	}
}

func (e *environment) graphSearch(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("graph search", &g, true)
	limit := fs.Int("limit", 0, "entities listed, 1 to 100; the server's default (20) when 0")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) > 1 {
		return errors.New(`graph search takes at most one TEXT (quote it: kg graph search "Ada L")`)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := namespaceQuery(&g)
	if len(positional) == 1 {
		q.Set("q", positional[0])
	}
	setPositive(q, "limit", *limit)
	var r events.GraphSearchResponse
	raw, err := c.get(ctx, "/api/v1/graph/entities", q, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	if len(r.Entities) == 0 {
		fmt.Fprintln(e.stdout, "no entities")
		return nil
	}
	rows := make([][]string, 0, len(r.Entities))
	for _, en := range r.Entities {
		rows = append(rows, []string{en.Name, en.Type, strconv.Itoa(en.Mentions), clip(en.Description, descriptionCells)})
	}
	return table(e.stdout, []string{"NAME", "TYPE", "MENTIONS", "DESCRIPTION"}, rows)
}

func (e *environment) graphEntity(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("graph entity", &g, true)
	relations := fs.Int("relations", 0, "relations listed, the heaviest first, 1 to 500; the server's default (50) when 0")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 1 {
		return errors.New(`graph entity takes one NAME (quote it: kg graph entity "Ada Lovelace")`)
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := namespaceQuery(&g)
	setPositive(q, "relations_limit", *relations)
	var r events.GraphEntityResponse
	raw, err := c.get(ctx, "/api/v1/graph/entities/"+url.PathEscape(positional[0]), q, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	en := r.Entity
	fields(e.stdout, [][2]string{
		{"entity", en.Name}, {"key", en.Key}, {"type", en.Type}, {"namespace", r.Namespace},
		{"mentions", fmt.Sprintf("%d (%d chunks)", en.Mentions, len(en.ChunkIDs))},
	})
	if en.Description != "" {
		fmt.Fprintln(e.stdout)
		fmt.Fprintln(e.stdout, strings.TrimRight(en.Description, "\n"))
	}
	if len(r.Relations) == 0 {
		fmt.Fprintln(e.stdout, "\nno relations")
		return nil
	}
	names := map[string]string{en.Key: en.Name}
	for _, n := range r.Neighbors {
		names[n.Key] = n.Name
	}
	truncated := ""
	if r.RelationsTruncated {
		truncated = ", more not listed"
	}
	fmt.Fprintf(e.stdout, "\nrelations (%d%s):\n", len(r.Relations), truncated)
	rows := make([][]string, 0, len(r.Relations))
	for _, rel := range r.Relations {
		other := rel.Target
		if other == en.Key {
			other = rel.Source
		}
		rows = append(rows, []string{nameOf(names, other), strconv.FormatFloat(rel.Weight, 'f', -1, 64),
			strconv.Itoa(rel.Mentions), clip(rel.Description, descriptionCells)})
	}
	return table(e.stdout, []string{"WITH", "WEIGHT", "MENTIONS", "DESCRIPTION"}, rows)
}

// nameOf is an entity's name by its key, the key when it is not known.
func nameOf(names map[string]string, key string) string {
	if n, ok := names[key]; ok && n != "" {
		return n
	}
	return key
}

func (e *environment) graphSubgraph(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("graph subgraph", &g, true)
	depth := fs.Int("depth", 0, "hops from the entity, 1 to 3; the server's default (1) when 0")
	maxNodes := fs.Int("max-nodes", 0, "entities at most, 1 to 500; the server's default (100) when 0")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 1 {
		return errors.New("graph subgraph takes one entity NAME")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := namespaceQuery(&g)
	q.Set("entity", positional[0])
	setPositive(q, "depth", *depth)
	setPositive(q, "max_nodes", *maxNodes)
	var r events.GraphSubgraphResponse
	raw, err := c.get(ctx, "/api/v1/graph/subgraph", q, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	names := map[string]string{}
	rows := make([][]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		names[n.Key] = n.Name
		rows = append(rows, []string{strconv.Itoa(n.Depth), n.Name, n.Type, strconv.Itoa(n.Mentions)})
	}
	truncated := ""
	if r.Truncated {
		truncated = " (truncated: raise --max-nodes for more)"
	}
	fmt.Fprintf(e.stdout, "subgraph around %s: %d entities, %d relations%s\n\n", nameOf(names, r.Root), len(r.Nodes), len(r.Edges), truncated)
	if err := table(e.stdout, []string{"DEPTH", "ENTITY", "TYPE", "MENTIONS"}, rows); err != nil {
		return err
	}
	if len(r.Edges) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	rows = rows[:0]
	for _, ed := range r.Edges {
		rows = append(rows, []string{nameOf(names, ed.Source), nameOf(names, ed.Target),
			strconv.FormatFloat(ed.Weight, 'f', -1, 64), clip(ed.Description, descriptionCells)})
	}
	return table(e.stdout, []string{"FROM", "TO", "WEIGHT", "DESCRIPTION"}, rows)
}

func (e *environment) graphPaths(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("graph paths", &g, true)
	maxDepth := fs.Int("max-depth", 0, "longest path looked for, in hops, 1 to 6; the server's default (4) when 0")
	maxPaths := fs.Int("max-paths", 0, "paths listed, 1 to 10; the server's default (3) when 0")
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 2 {
		return errors.New("graph paths takes two entity names: FROM TO")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	q := namespaceQuery(&g)
	q.Set("from", positional[0])
	q.Set("to", positional[1])
	setPositive(q, "max_depth", *maxDepth)
	setPositive(q, "max_paths", *maxPaths)
	var r events.GraphPathsResponse
	raw, err := c.get(ctx, "/api/v1/graph/paths", q, &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	if len(r.Paths) == 0 {
		fmt.Fprintf(e.stdout, "no path from %s to %s\n", positional[0], positional[1])
		return nil
	}
	more := ""
	if r.Truncated {
		more = " (there may be more)"
	}
	fmt.Fprintf(e.stdout, "%s from %s to %s%s:\n", plural(len(r.Paths), "shortest path"), positional[0], positional[1], more)
	for i, p := range r.Paths {
		hops := make([]string, 0, len(p.Nodes))
		for _, n := range p.Nodes {
			hops = append(hops, n.Name)
		}
		fmt.Fprintf(e.stdout, "%d. %s (%s)\n", i+1, strings.Join(hops, " → "), plural(len(p.Edges), "hop"))
	}
	return nil
}

// plural is "1 hop", "2 hops".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (e *environment) stats(ctx context.Context, args []string) error {
	var g globals
	fs := e.flags("stats", &g, true)
	positional, err := e.parse(fs, &g, args)
	if err != nil {
		return helpRequested(err)
	}
	if len(positional) != 0 {
		return errors.New("stats takes no arguments")
	}
	c, closeIdle, err := g.client()
	if err != nil {
		return err
	}
	defer closeIdle()
	var r events.GraphStatsResponse
	raw, err := c.get(ctx, "/api/v1/stats", namespaceQuery(&g), &r)
	if err != nil {
		return err
	}
	if g.json {
		return e.printJSON(raw)
	}
	communities := strconv.Itoa(r.Communities)
	if r.CommunitiesStale {
		communities += fmt.Sprintf(" (of graph generation %d; the graph is at %d, rebuild pending)", r.CommunitiesGeneration, r.Generation)
	}
	built := "never"
	if r.CommunitiesBuiltAt != nil {
		built = r.CommunitiesBuiltAt.Format(time.RFC3339)
		if r.CommunitiesStale {
			built += " (stale)"
		} else {
			built += " (up to date)"
		}
	}
	fields(e.stdout, [][2]string{
		{"namespace", r.Namespace}, {"documents", strconv.Itoa(r.Documents)}, {"chunks", strconv.Itoa(r.Chunks)},
		{"entities", strconv.Itoa(r.Entities)}, {"relations", strconv.Itoa(r.Relations)}, {"communities", communities},
		{"communities built", built},
	})
	return nil
}
