package llm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// CachedResponse is an entry of the LLM cache bucket: every stage that
// caches (extraction, summaries, reports) writes this shape.
type CachedResponse struct {
	Content string `json:"content"`
	Model   string `json:"model"`
}

// CacheKey is the one key scheme of the LLM cache: what decides the answer
// (the model, JSON mode, the completion cap and the messages), not the
// temperature or the stage. The cap is hashed only when set, which keeps
// the keys already written by the extractor (which sets none) and the
// graph-writer (which always sets one) valid.
func CacheKey(model string, req ChatRequest) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%t", model, req.JSON)
	if req.MaxTokens > 0 {
		// A role is never a number, so this cannot read as a message.
		fmt.Fprintf(h, "\x00%d", req.MaxTokens)
	}
	for _, m := range req.Messages {
		fmt.Fprintf(h, "\x00%s\x00%s", m.Role, m.Content)
	}
	return "llm." + hex.EncodeToString(h.Sum(nil))
}
