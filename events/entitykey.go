package events

import (
	"strings"
	"unicode"
)

// EntityKey is the identity of an entity within a namespace: the name with
// surrounding quotes and punctuation removed, inner whitespace collapsed and
// upper-cased (as GraphRAG does), so "Scrooge", ` "scrooge" ` and "SCROOGE"
// are one entity. Every store and service keys entities with it.
func EntityKey(name string) string {
	name = strings.TrimFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune("\"'`“”‘’«»()[]{}<>.,;:", r)
	})
	return strings.ToUpper(strings.Join(strings.Fields(name), " "))
}
