package fakellm

import (
	"github.com/kgraph-dev/kgraph/libs/prompts"
)

// conversation is a chat request as the responders see it: what kind of
// prompt it carries and where.
type conversation struct {
	messages []chatMessage
	kind     prompts.Kind
	// prompt is the message the kind was detected in.
	prompt string
	// lastUser is the last user message; for answers, whose prompt is the
	// system message, it is the question.
	lastUser string
}

// classify detects the kind of a chat request the way prompts.Detect asks to
// be used: on the last user message (extraction, gleaning, summaries,
// community reports), else on the system messages (answers).
func classify(messages []chatMessage) conversation {
	c := conversation{messages: messages}
	for i := len(messages) - 1; i >= 0; i-- {
		if messages[i].Role == "user" {
			c.lastUser = string(messages[i].Content)
			break
		}
	}
	if k := prompts.Detect(c.lastUser); k != prompts.KindUnknown {
		c.kind, c.prompt = k, c.lastUser
		return c
	}
	for i := len(messages) - 1; i >= 0; i-- {
		if messages[i].Role != "system" && messages[i].Role != "developer" {
			continue
		}
		if k := prompts.Detect(string(messages[i].Content)); k != prompts.KindUnknown {
			c.kind, c.prompt = k, string(messages[i].Content)
			return c
		}
	}
	c.prompt = c.lastUser
	return c
}

// extractionSource returns the extraction prompt a gleaning conversation
// started with.
func (c conversation) extractionSource() (prompt string, kind prompts.Kind, ok bool) {
	for _, m := range c.messages {
		if m.Role != "user" {
			continue
		}
		if k := prompts.Detect(string(m.Content)); k == prompts.KindExtraction || k == prompts.KindExtractionJSON {
			return string(m.Content), k, true
		}
	}
	return "", prompts.KindUnknown, false
}

// gleanRounds counts the gleaning requests in the conversation, the current
// one included.
func (c conversation) gleanRounds() int {
	n := 0
	for _, m := range c.messages {
		if m.Role == "user" && prompts.Detect(string(m.Content)) == prompts.KindGleanContinue {
			n++
		}
	}
	return n
}

// namedSoFar returns the entity names the assistant turns already gave.
func (c conversation) namedSoFar() map[string]bool {
	named := map[string]bool{}
	for _, m := range c.messages {
		if m.Role != "assistant" {
			continue
		}
		for _, n := range namesIn(string(m.Content)) {
			named[n] = true
		}
	}
	return named
}

// questionFor returns the user's question when the prompt was the system
// message; a prompt sent as the user message carries no separate question.
func (c conversation) questionFor() string {
	if c.prompt == c.lastUser {
		return ""
	}
	return c.lastUser
}
