package llm

import "strings"

// Price is what a model costs, in dollars per million tokens.
type Price struct {
	PromptPerMillion     float64
	CompletionPerMillion float64
}

// PriceTable maps model names to prices. A model without an exact entry is
// priced by the longest entry that prefixes it, so "gpt-4o-mini" also prices
// the snapshot "gpt-4o-mini-2024-07-18" that the server reports.
type PriceTable map[string]Price

// Lookup returns the price of model and whether the table has one.
func (t PriceTable) Lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	best, found := "", false
	for name := range t {
		if name != "" && strings.HasPrefix(model, name) && len(name) > len(best) {
			best, found = name, true
		}
	}
	if !found {
		return Price{}, false
	}
	return t[best], true
}

// Cost returns the dollars usage costs on model, 0 for an unpriced model
// (local models are free to call).
func (t PriceTable) Cost(model string, u Usage) float64 {
	p, ok := t.Lookup(model)
	if !ok {
		return 0
	}
	return (float64(u.PromptTokens)*p.PromptPerMillion + float64(u.CompletionTokens)*p.CompletionPerMillion) / 1e6
}

// costOf prices usage by the model the server reported, falling back to the
// configured one when the reported name is not in the table.
func (t PriceTable) costOf(reported, configured string, u Usage) float64 {
	if _, ok := t.Lookup(reported); ok {
		return t.Cost(reported, u)
	}
	return t.Cost(configured, u)
}
