package extractparse

import (
	"regexp"
	"strings"

	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// Delimiters of the tuple format.
type Delimiters struct {
	Tuple      string // between the fields of a record: <|>
	Record     string // between records: ##
	Completion string // ends the output: <|COMPLETE|>
}

// DefaultDelimiters returns the delimiters prompts.EntityExtraction asks for.
func DefaultDelimiters() Delimiters {
	return Delimiters{
		Tuple:      prompts.DefaultTupleDelimiter,
		Record:     prompts.DefaultRecordDelimiter,
		Completion: prompts.DefaultCompletionDelimiter,
	}
}

func (d Delimiters) orDefaults() Delimiters {
	def := DefaultDelimiters()
	if d.Tuple == "" {
		d.Tuple = def.Tuple
	}
	if d.Record == "" {
		d.Record = def.Record
	}
	if d.Completion == "" {
		d.Completion = def.Completion
	}
	return d
}

const (
	// maxTypeLen is how far before a tuple delimiter the "(" opening a
	// record may be: room for `( "relationship" ` and markdown around it.
	maxTypeLen = 48
	// maxFields bounds the split of one record; no format has more than 6.
	maxFields = 8
)

// ParseTuples parses GraphRAG tuple-format extraction output:
//
//	("entity"<|>NAME<|>TYPE<|>DESCRIPTION)##
//	("relationship"<|>SOURCE<|>TARGET<|>DESCRIPTION<|>STRENGTH)##
//	...<|COMPLETE|>
//
// Like nano-graphrag it needs at least 4 fields for an entity and 5 for a
// relationship, takes a non-numeric strength as DefaultWeight, and
// upper-cases names and types. It also reads LightRAG's 6-field
// relationships (…<|>DESCRIPTION<|>KEYWORDS<|>STRENGTH, keywords
// comma-separated) and "relation" as a record type.
//
// Unlike nano-graphrag, which splits on the record delimiter and on every
// newline, a record here runs from its "(TYPE<|>" to the next record's, cut
// at the record delimiter, at its last ")" and, when the ")" is missing, at
// the next blank line. So records split across lines, records on separate
// lines without "##", several records on one line, stray "##" lines,
// numbered or bulleted lists, **bold** markup and prose before or after all
// parse. Text holding no tuple delimiter is prose and is ignored; text that
// holds one but is no usable record counts in Skipped.
func ParseTuples(output string, d Delimiters) Result {
	d = d.orDefaults()
	var res Result
	res.Complete = strings.Contains(output, d.Completion)
	if !strings.Contains(output, d.Tuple) {
		return res
	}
	// A record ends at the completion delimiter just as at a record
	// delimiter ("…<|>9)<|COMPLETE|>").
	output = strings.ReplaceAll(output, d.Completion, d.Record)
	p := tupleParser{d: d, res: &res}
	for segment := range strings.SplitSeq(output, d.Record) {
		if !p.segment(segment) {
			break
		}
	}
	return res
}

type tupleParser struct {
	d        Delimiters
	res      *Result
	nearMiss *regexp.Regexp // compiled on first use: most outputs never need it
}

// full reports that MaxRecords have been consumed, marking the result
// truncated.
func (p *tupleParser) full() bool {
	if p.res.records() >= MaxRecords {
		p.res.Truncated = true
		return true
	}
	return false
}

// segment parses the text between two record delimiters; false means stop.
func (p *tupleParser) segment(seg string) bool {
	if !strings.Contains(seg, p.d.Tuple) {
		return true
	}
	starts := recordStarts(seg, p.d.Tuple, MaxRecords-p.res.records()+1)
	first := len(seg)
	if len(starts) > 0 {
		first = starts[0]
	}
	if strings.Contains(seg[:first], p.d.Tuple) {
		// Fields without a recognisable "(TYPE<|>" opening.
		if p.full() {
			return false
		}
		p.res.Skipped++
	}
	for i, start := range starts {
		if p.full() {
			return false
		}
		end := len(seg)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		p.record(p.recordBody(seg[start+1 : end]))
	}
	return true
}

// recordBody cuts what follows a record's "(" down to the record: up to its
// closing ")", or when that is missing up to the next blank line after its
// last field delimiter, so trailing prose does not end up in a field.
func (p *tupleParser) recordBody(span string) string {
	if closing := strings.LastIndexByte(span, ')'); closing >= 0 && !strings.Contains(span[closing:], p.d.Tuple) {
		// Drop the closing parentheses that have no opening one in the
		// record: `…"a miser")))`.
		body := strings.TrimRight(span[:closing], " \t\r\n")
		for unopened := strings.Count(body, ")") - strings.Count(body, "("); unopened > 0 && strings.HasSuffix(body, ")"); unopened-- {
			body = strings.TrimRight(body[:len(body)-1], " \t\r\n")
		}
		return body
	}
	lastField := strings.LastIndex(span, p.d.Tuple) + len(p.d.Tuple)
	if blank := strings.Index(span[lastField:], "\n\n"); blank >= 0 {
		return span[:lastField+blank]
	}
	return span
}

// recordStarts returns the offsets of the "(" opening each record in seg, at
// most limit of them. A "(" opens a record when the first tuple delimiter
// after it comes within maxTypeLen bytes on the same line and either the
// text between is a known record type or the "(" begins a line (after list
// markers and markup) or follows a ")". That keeps an unclosed parenthesis
// inside a description from opening a record, while records of unknown
// types still separate from their neighbours (and are then skipped).
func recordStarts(seg, tuple string, limit int) []int {
	var starts []int
	from := 0
	for len(starts) < limit {
		at := strings.Index(seg[from:], tuple)
		if at < 0 {
			break
		}
		at += from
		lo := max(from, at-maxTypeLen)
		if open := strings.LastIndexByte(seg[lo:at], '('); open >= 0 {
			open += lo
			typ := seg[open+1 : at]
			if !strings.ContainsAny(typ, ")\n") && (recordKindOf(typ) != kindUnknown || opensLine(seg[:open])) {
				starts = append(starts, open)
			}
		}
		from = at + len(tuple)
	}
	return starts
}

// opensLine reports whether a "(" preceded by before begins a line, allowing
// list markers, headings and emphasis before it, or directly follows a ")".
func opensLine(before string) bool {
	// Only the last few bytes matter, and looking further would make long
	// lines quadratic.
	before = before[max(0, len(before)-maxTypeLen):]
	prefix := before[strings.LastIndexByte(before, '\n')+1:]
	if strings.Trim(prefix, " \t\r*#>-•0123456789.") == "" {
		return true
	}
	return strings.HasSuffix(strings.TrimRight(prefix, " \t,;"), ")")
}

type recordKind int

const (
	kindUnknown recordKind = iota
	kindEntity
	kindRelation
	kindContentKeywords
)

func recordKindOf(field string) recordKind {
	switch strings.ToLower(strings.ReplaceAll(cleanName(field), " ", "_")) {
	case "entity", "entities":
		return kindEntity
	case "relationship", "relationships", "relation", "relations":
		return kindRelation
	case "content_keywords":
		return kindContentKeywords
	default:
		return kindUnknown
	}
}

func (p *tupleParser) record(body string) {
	fields := strings.SplitN(body, p.d.Tuple, maxFields)
	switch recordKindOf(fields[0]) {
	case kindEntity:
		if len(fields) < 4 {
			p.res.Skipped++
			return
		}
		p.res.addEntity(fields[1], fields[2], cleanDescription(fields[3]))
	case kindRelation:
		p.relation(fields)
	case kindContentKeywords:
		// LightRAG's chunk-level keywords: a valid record kgraph has no use
		// for, so neither kept nor counted as skipped.
	default:
		p.res.Skipped++
	}
}

func (p *tupleParser) relation(fields []string) {
	if len(fields) == 4 {
		// gpt-4o sometimes garbles the last delimiter ("…"|>8, "…"</|>8);
		// rescue the strength rather than lose the relationship.
		if p.nearMiss == nil {
			p.nearMiss = nearMissStrength(p.d.Tuple)
		}
		if m := p.nearMiss.FindStringSubmatch(fields[3]); m != nil {
			fields = append(fields[:3], m[1], m[2])
		}
	}
	if len(fields) < 5 {
		p.res.Skipped++
		return
	}
	weight := DefaultWeight
	var keywords string
	if len(fields) == 5 {
		if w, ok := parseStrength(fields[4]); ok {
			weight = w
		}
	} else {
		// LightRAG order is keywords then strength; accept the swap too.
		if w, ok := parseStrength(fields[len(fields)-1]); ok {
			weight, keywords = w, fields[4]
		} else if w, ok := parseStrength(fields[4]); ok {
			weight, keywords = w, fields[5]
		} else {
			keywords = fields[4]
		}
	}
	p.res.addRelation(fields[1], fields[2], cleanDescription(fields[3]), splitKeywords(keywords), weight)
}

// nearMissStrength matches a last field that ends with a garbled tuple
// delimiter and a number: the delimiter with characters missing or a "/"
// added. It is built from the delimiter so custom delimiters get it too.
func nearMissStrength(tuple string) *regexp.Regexp {
	var alternatives []string
	for i := range tuple {
		alternatives = append(alternatives, regexp.QuoteMeta(tuple[:i]+"/"+tuple[i:]))
		if len(tuple) > 1 {
			alternatives = append(alternatives, regexp.QuoteMeta(tuple[:i]+tuple[i+1:]))
		}
	}
	return regexp.MustCompile(`(?s)^(.*?)\s*(?:` + strings.Join(alternatives, "|") + `)\s*["“”']?\s*([0-9]{1,6}(?:\.[0-9]+)?)\s*["“”']?\s*$`)
}
