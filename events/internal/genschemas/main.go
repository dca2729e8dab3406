// Command genschemas writes the JSON Schema of every event type into
// events/schemas. Run it with `go generate ./...` in the events module.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kgraph-dev/kgraph/events"
)

func main() {
	if err := run("schemas"); err != nil {
		fmt.Fprintln(os.Stderr, "genschemas:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	for _, s := range events.Catalog() {
		b, err := events.GenerateSchema(s)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, events.SchemaFile(s.Type)), b, 0o644); err != nil {
			return fmt.Errorf("write schema of %s: %w", s.Type, err)
		}
	}
	return nil
}
