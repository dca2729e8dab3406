package fakellm

import (
	"encoding/csv"
	"slices"
	"strings"
)

// tableEntity is one row of a community's entity table.
type tableEntity struct {
	id, name, typ, description string
}

// communityTables is what the heuristic and the replay need from the tables
// of a community report prompt.
type communityTables struct {
	entities      []tableEntity
	relationships int
	degree        map[string]int // upper-cased entity name → relationship rows naming it
}

// parseTables reads the entity and relationship tables of a community (or
// query context): CSV blocks, as nano-graphrag writes them (",\t"-separated,
// quoted or not) or as plain CSV. A table is recognised by its header: one
// with an "entity" or "name" column holds entities, one with "source" and
// "target" columns relationships. Rows end at a fence, a "-----" section
// line or a blank line.
func parseTables(input string) communityTables {
	t := communityTables{degree: map[string]int{}}
	lines := strings.Split(strings.ReplaceAll(input, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		header := splitRow(lines[i], lines[i])
		if len(header) < 2 {
			continue
		}
		nameCol := columnOf(header, "entity", "name", "entity_name")
		sourceCol, targetCol := columnOf(header, "source", "src_id", "src"), columnOf(header, "target", "tgt_id", "tgt")
		isRelations := sourceCol >= 0 && targetCol >= 0
		if nameCol < 0 && !isRelations {
			continue
		}
		end := i + 1
		for end < len(lines) && !endsTable(lines[end]) {
			end++
		}
		for _, row := range readRows(lines[i], lines[i+1:end]) {
			if isRelations {
				if len(row) > max(sourceCol, targetCol) {
					t.relationships++
					t.degree[strings.ToUpper(row[sourceCol])]++
					t.degree[strings.ToUpper(row[targetCol])]++
				}
				continue
			}
			if len(row) <= nameCol || row[nameCol] == "" {
				continue
			}
			e := tableEntity{name: row[nameCol]}
			if c := columnOf(header, "id"); c >= 0 && c < len(row) {
				e.id = row[c]
			}
			if c := columnOf(header, "type", "entity_type"); c >= 0 && c < len(row) {
				e.typ = row[c]
			}
			if c := columnOf(header, "description"); c >= 0 && c < len(row) {
				// A description with unquoted commas spans several fields:
				// give it every field up to the columns that follow it.
				last := len(row) - (len(header) - c - 1)
				e.description = strings.Join(row[c:max(last, c+1)], ", ")
			}
			t.entities = append(t.entities, e)
		}
		i = end - 1
	}
	return t
}

func endsTable(line string) bool {
	trimmed := strings.TrimSpace(line)
	return trimmed == "" || strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "-----")
}

func columnOf(header []string, names ...string) int {
	for i, h := range header {
		if slices.Contains(names, strings.ToLower(h)) {
			return i
		}
	}
	return -1
}

// readRows parses the rows under a header with the header's separator.
func readRows(header string, lines []string) [][]string {
	if strings.Contains(header, ",\t") {
		rows := make([][]string, 0, len(lines))
		for _, l := range lines {
			rows = append(rows, splitRow(header, l))
		}
		return rows
	}
	r := csv.NewReader(strings.NewReader(strings.Join(lines, "\n")))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.TrimLeadingSpace = true
	rows, err := r.ReadAll()
	if err != nil {
		// Malformed quoting: fall back to one row per line.
		rows = rows[:0]
		for _, l := range lines {
			rows = append(rows, splitRow(header, l))
		}
		return rows
	}
	for _, row := range rows {
		for j := range row {
			row[j] = cleanField(row[j])
		}
	}
	return rows
}

func splitRow(header, line string) []string {
	sep := ","
	if strings.Contains(header, ",\t") {
		sep = ",\t"
	}
	fields := strings.Split(line, sep)
	for j := range fields {
		fields[j] = cleanField(fields[j])
	}
	return fields
}

func cleanField(f string) string {
	return strings.Trim(strings.TrimSpace(f), `"'`)
}
