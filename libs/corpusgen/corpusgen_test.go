package corpusgen

import (
	"strings"
	"testing"
)

func TestSeededAndDistinct(t *testing.T) {
	cfg := DefaultConfig()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	cfg.Seed = 2
	c, _ := New(cfg)
	names := map[string]bool{}
	differs := false
	for range 200 {
		da, db, dc := a.Next(), b.Next(), c.Next()
		if da.Text() != db.Text() {
			t.Fatalf("same seed, different documents:\n%s\n%s", da.Text(), db.Text())
		}
		differs = differs || da.Text() != dc.Text()
		for _, p := range da.Paragraphs {
			for _, s := range p.Sentences {
				for _, m := range s.Mentions {
					if !strings.Contains(s.Text, m.Name) {
						t.Fatalf("sentence %q does not name %q", s.Text, m.Name)
					}
					names[m.Name] = true
				}
			}
		}
		if !strings.Contains(da.Paragraphs[da.Fact.Paragraph].Text, da.Fact.Answer) || !strings.Contains(da.Fact.Question, da.Fact.Subject) {
			t.Fatalf("fact %+v is not in its paragraph", da.Fact)
		}
	}
	if !differs {
		t.Fatal("another seed gave the same corpus")
	}
	// 200 documents of a cast of 40 name several thousand entities.
	if len(names) < 3000 {
		t.Fatalf("%d distinct names in 200 documents, want over 3000", len(names))
	}
}

func TestNamesAreDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 50_000 {
		for _, n := range []string{PersonName(i), OrganizationName(i), PlaceName(i)} {
			if _, dup := seen[n]; dup {
				t.Fatalf("name %q repeats (index %d)", n, i)
			}
			seen[n] = i
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"empty pool": func(c *Config) { c.Places = 0 },
		"paragraphs": func(c *Config) { c.MaxParagraphs = c.MinParagraphs - 1 },
		"cast":       func(c *Config) { c.Cast = 2 },
		"skew":       func(c *Config) { c.Skew = 1 },
		"popular":    func(c *Config) { c.Popular = 1.5 },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
