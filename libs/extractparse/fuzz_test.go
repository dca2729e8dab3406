package extractparse

import (
	"testing"
)

// FuzzParseTuples checks that no output makes the parser panic, loop or
// return records that are unusable as events. Seeds beyond these are in
// testdata/fuzz/FuzzParseTuples.
func FuzzParseTuples(f *testing.F) {
	f.Add(canonical)
	f.Add("(\"entity\"<|>\"Scro")
	f.Add("((((<|>))))##<|COMPLETE|>")
	f.Fuzz(func(t *testing.T, output string) {
		checkInvariants(t, output, ParseTuples(output, DefaultDelimiters()))
	})
}

// FuzzParseJSON checks that no output makes ParseJSON panic and that what it
// returns without error is usable.
func FuzzParseJSON(f *testing.F) {
	f.Add(canonicalJSON)
	f.Add(`{"entities":[{"name":"A",},],"relationships":[{"source":"A","target":"B","strength":"7/10"}]}`)
	f.Add("```json\n{\"entities\":[{\"name\":\"A\"")
	f.Fuzz(func(t *testing.T, output string) {
		res, err := ParseJSON(output)
		if err != nil {
			if res.records() != 0 || res.Complete {
				t.Fatalf("error %v with a non-empty result %+v", err, res)
			}
			return
		}
		for _, e := range res.Entities {
			if e.Name == "" {
				t.Fatalf("empty entity name in %+v", res)
			}
		}
		for _, r := range res.Relations {
			if r.Source == "" || r.Target == "" || r.Source == r.Target || r.Weight < 0 {
				t.Fatalf("unusable relation %+v", r)
			}
		}
	})
}
