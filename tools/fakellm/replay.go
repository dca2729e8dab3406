package fakellm

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// replayLibrary holds recorded model outputs (nano-graphrag's LLM cache
// format: {"<hash>": {"return": "<output>", "model": "..."}}), parsed once,
// in key order so that every choice among them is deterministic.
type replayLibrary struct {
	extractions []recordedExtraction
	reports     []recordedReport
	// names are the distinct names of all extractions, which share many:
	// matching looks each up in a chunk once.
	names []string
}

type recordedExtraction struct {
	key     string
	output  string
	parsed  extractionJSON
	names   []string // lower-cased entity names, quotes normalised
	nameIDs []int    // indexes of names in replayLibrary.names
}

type recordedReport struct {
	key    string
	output string
	lower  string // the whole report lower-cased, for matching names
}

func loadReplay(path string) (*replayLibrary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read replay file: %w", err)
	}
	var recorded map[string]struct {
		Return string `json:"return"`
	}
	if err := json.Unmarshal(data, &recorded); err != nil {
		return nil, fmt.Errorf("parse replay file %s: %w", path, err)
	}
	keys := make([]string, 0, len(recorded))
	for k := range recorded {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	lib := &replayLibrary{}
	for _, key := range keys {
		output := recorded[key].Return
		if strings.Contains(output, tupleDelimiter) {
			parsed := parseTupleOutput(output)
			if len(parsed.Entities) == 0 {
				continue
			}
			names := make([]string, 0, len(parsed.Entities))
			for _, e := range parsed.Entities {
				if n := matchKey(e.Name); n != "" && !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			lib.extractions = append(lib.extractions, recordedExtraction{key: key, output: output, parsed: parsed, names: names})
			continue
		}
		var report communityReport
		if err := json.Unmarshal([]byte(output), &report); err == nil && report.Title != "" && len(report.Findings) > 0 {
			lib.reports = append(lib.reports, recordedReport{key: key, output: output, lower: matchKey(output)})
		}
	}
	nameIndex := map[string]int{}
	for i := range lib.extractions {
		r := &lib.extractions[i]
		for _, n := range r.names {
			id, ok := nameIndex[n]
			if !ok {
				id = len(lib.names)
				nameIndex[n] = id
				lib.names = append(lib.names, n)
			}
			r.nameIDs = append(r.nameIDs, id)
		}
	}
	if len(lib.extractions) == 0 && len(lib.reports) == 0 {
		return nil, fmt.Errorf("replay file %s: no extraction outputs or community reports", path)
	}
	return lib, nil
}

// extraction returns the recorded extraction output naming the most entities
// that occur in the chunk text (case-insensitively); ties go to the output
// with the larger share of its names found, then to the first key. It
// reports false when no recorded name occurs in the text.
func (l *replayLibrary) extraction(chunk string) (recordedExtraction, bool) {
	text := matchKey(chunk)
	found := make([]bool, len(l.names))
	for i, n := range l.names {
		found[i] = strings.Contains(text, n)
	}
	best, bestHits, bestShare := -1, 0, 0.0
	for i, r := range l.extractions {
		hits := 0
		for _, id := range r.nameIDs {
			if found[id] {
				hits++
			}
		}
		share := float64(hits) / float64(len(r.names))
		if hits > bestHits || (hits == bestHits && hits > 0 && share > bestShare) {
			best, bestHits, bestShare = i, hits, share
		}
	}
	if best < 0 {
		return recordedExtraction{}, false
	}
	return l.extractions[best], true
}

// report returns the recorded community report whose text names the most of
// the given entities; ties go to the first key.
func (l *replayLibrary) report(entityNames []string) (string, bool) {
	names := make([]string, 0, len(entityNames))
	for _, n := range entityNames {
		if k := matchKey(n); k != "" && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	best, bestHits := -1, 0
	for i, r := range l.reports {
		hits := 0
		for _, n := range names {
			if strings.Contains(r.lower, n) {
				hits++
			}
		}
		if hits > bestHits {
			best, bestHits = i, hits
		}
	}
	if best < 0 {
		return "", false
	}
	return l.reports[best].output, true
}

// matchKey normalises text for name matching: lower case, straight quotes,
// no surrounding quotes or spaces.
func matchKey(s string) string {
	return strings.ToLower(strings.Trim(normalizeQuotes(s), " \t\n\"'"))
}

// parseTupleOutput reads the records of a tuple-format extraction output.
// It is lenient (quoted or bare fields, stray "## " lines, numbered lists;
// one record per line) and skips what it cannot read; it exists to match and convert recorded outputs and to learn
// which names earlier gleaning rounds gave, not to validate anything.
func parseTupleOutput(output string) extractionJSON {
	var out extractionJSON
	output = strings.NewReplacer(recordDelimiter, "\n", completionDelimiter, "\n").Replace(output)
	for line := range strings.SplitSeq(output, "\n") {
		// Records may be numbered or bulleted ("1. (\"entity\"<|>…)").
		open := strings.IndexByte(line, '(')
		if open < 0 {
			continue
		}
		record := strings.TrimSpace(line[open+1:])
		record = strings.TrimSuffix(record, ")")
		fields := strings.Split(record, tupleDelimiter)
		for i := range fields {
			fields[i] = strings.Trim(strings.TrimSpace(fields[i]), `"`)
		}
		switch strings.ToLower(fields[0]) {
		case "entity":
			if len(fields) >= 4 && fields[1] != "" {
				out.Entities = append(out.Entities, extractedEntity{Name: fields[1], Type: fields[2], Description: fields[3]})
			}
		case "relationship":
			if len(fields) >= 5 && fields[1] != "" && fields[2] != "" {
				strength, err := strconv.ParseFloat(fields[len(fields)-1], 64)
				if err != nil {
					strength = 1
				}
				out.Relationships = append(out.Relationships, extractedRelation{
					Source: fields[1], Target: fields[2], Description: fields[3], Keywords: []string{}, Strength: strength,
				})
			}
		}
	}
	return out
}

// namesIn returns the upper-cased entity names of an extraction output in
// either format.
func namesIn(output string) []string {
	var parsed extractionJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(output)), &parsed); err != nil || len(parsed.Entities) == 0 {
		parsed = parseTupleOutput(output)
	}
	names := make([]string, 0, len(parsed.Entities))
	for _, e := range parsed.Entities {
		names = append(names, strings.ToUpper(strings.Trim(normalizeQuotes(e.Name), " \"'")))
	}
	return names
}
