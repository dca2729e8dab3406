package extractparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseJSON parses strict-JSON extraction output:
//
//	{"entities":[{"name","type","description"}],
//	 "relationships":[{"source","target","description","keywords":[…],"strength":1-10}]}
//
// It is lenient where models are sloppy: the object may be wrapped in a
// ```json fence or in prose; trailing commas are removed (outside strings)
// before decoding; keys are matched case-insensitively, with common aliases
// ("entity_name", "src", "weight", "relations", …); strengths may be
// strings; keywords may be one comma-separated string. Items with missing
// names, self-relations and items that are not objects count in Skipped.
// Output cut short (the model ran out of tokens) keeps the items before the
// cut, counts one Skipped for the rest and leaves Complete false.
//
// The error is non-nil only when there is no JSON object at all: no "{", or
// a syntax error before a single item could be read.
func ParseJSON(output string) (Result, error) {
	text, ok := jsonObjectText(output)
	if !ok {
		return Result{}, errors.New("extraction output holds no JSON object")
	}
	var res Result
	dec := json.NewDecoder(strings.NewReader(removeTrailingCommas(text)))
	err := decodeExtraction(dec, &res)
	if err != nil {
		if res.records() == 0 {
			return Result{}, fmt.Errorf("extraction output holds no decodable JSON object: %w", err)
		}
		// What was read before the error stands.
		res.Skipped++
		return res, nil
	}
	res.Complete = true
	return res, nil
}

// jsonObjectText returns the output from the first "{" on, looking inside a
// markdown fence first so that braces in prose before it do not count.
func jsonObjectText(output string) (string, bool) {
	if _, fenced, ok := strings.Cut(output, "```"); ok {
		// Skip the fence's language tag; an unclosed fence runs to the end.
		if _, body, ok := strings.Cut(fenced, "\n"); ok {
			body, _, _ = strings.Cut(body, "```")
			if at := strings.IndexByte(body, '{'); at >= 0 {
				return body[at:], true
			}
		}
	}
	at := strings.IndexByte(output, '{')
	if at < 0 {
		return "", false
	}
	return output[at:], true
}

// removeTrailingCommas drops commas that are followed, after whitespace, by
// "}" or "]", leaving string contents alone.
func removeTrailingCommas(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ',':
			next := i + 1
			for next < len(s) && strings.IndexByte(" \t\r\n", s[next]) >= 0 {
				next++
			}
			if next < len(s) && (s[next] == '}' || s[next] == ']') {
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeExtraction walks the top-level object token by token, so that items
// before a syntax error or a truncation are kept.
func decodeExtraction(dec *json.Decoder, res *Result) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		key, _ := tok.(string)
		switch strings.ToLower(key) {
		case "entities", "nodes":
			err = decodeItems(dec, res, res.addJSONEntity)
		case "relationships", "relations", "edges":
			err = decodeItems(dec, res, res.addJSONRelation)
		default:
			var ignored json.RawMessage
			err = dec.Decode(&ignored)
		}
		if err != nil {
			return fmt.Errorf("read %q: %w", key, err)
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

// decodeItems reads an array of items, one at a time. A value that is not
// an array (null, a string, an object) yields nothing; anything but null
// counts as skipped.
func decodeItems(dec *json.Decoder, res *Result, add func(map[string]any)) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case nil:
		return nil
	case json.Delim('['):
	case json.Delim('{'):
		res.Skipped++
		return skipRest(dec)
	default:
		res.Skipped++
		return nil
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if res.records() >= MaxRecords {
			res.Truncated = true
			continue
		}
		var item map[string]any
		if err := json.Unmarshal(raw, &item); err != nil || item == nil {
			res.Skipped++
			continue
		}
		add(lowerKeys(item))
	}
	return expectDelim(dec, ']')
}

// skipRest consumes the rest of an object or array whose opening token has
// been read.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func lowerKeys(item map[string]any) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return out
}

// field returns the first of keys present in item, as text.
func field(item map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := item[k]; ok && v != nil {
			return textOf(v)
		}
	}
	return ""
}

func textOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if s := textOf(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	default:
		return ""
	}
}

func (r *Result) addJSONEntity(item map[string]any) {
	r.addEntity(
		field(item, "name", "entity_name", "entity", "id"),
		field(item, "type", "entity_type", "category"),
		cleanText(field(item, "description", "entity_description", "desc")),
	)
}

func (r *Result) addJSONRelation(item map[string]any) {
	weight := DefaultWeight
	for _, k := range []string{"strength", "weight", "relationship_strength", "score"} {
		if v, ok := item[k]; ok {
			if n, ok := v.(float64); ok && n >= 0 {
				weight = n
			} else if s, ok := v.(string); ok {
				if n, ok := parseStrength(s); ok {
					weight = n
				}
			}
			break
		}
	}
	r.addRelation(
		field(item, "source", "src", "source_entity", "src_id", "from"),
		field(item, "target", "tgt", "target_entity", "tgt_id", "to"),
		cleanText(field(item, "description", "relationship_description", "desc")),
		splitKeywords(field(item, "keywords", "relationship_keywords")),
		weight,
	)
}
