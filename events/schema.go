package events

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/invopop/jsonschema"
	validator "github.com/santhosh-tekuri/jsonschema/v6"
)

// The committed schemas are what the Validator enforces and what outside
// publishers read; TestSchemasUpToDate fails when they drift from the structs.
//
//go:generate go run ./internal/genschemas
//go:embed schemas/*.json
var committedSchemas embed.FS

// SchemaFile is the file name of a type's schema under schemas/.
func SchemaFile(t Type) string { return string(t) + ".json" }

// SchemaURL is the $id of a type's schema, also usable as ce-dataschema.
func SchemaURL(t Type) string { return "https://kgraph.dev/schemas/" + SchemaFile(t) }

// GenerateSchema returns the JSON Schema of a type's payload, generated from
// the Go struct. Unknown properties are allowed so that additive changes to
// a v1 payload do not break older consumers.
func GenerateSchema(s Spec) ([]byte, error) {
	r := &jsonschema.Reflector{AllowAdditionalProperties: true, DoNotReference: true, ExpandedStruct: true}
	sch := r.Reflect(s.Payload())
	sch.ID = jsonschema.ID(SchemaURL(s.Type))
	sch.Title = string(s.Type)
	sch.Description = s.Summary
	b, err := json.MarshalIndent(sch, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal schema of %s: %w", s.Type, err)
	}
	return append(b, '\n'), nil
}

// Validator checks payloads against the committed schemas.
type Validator struct {
	schemas map[Type]*validator.Schema

	// decoded remembers payloads Decode has fully checked. Every event is
	// decoded by several consumers (a chunk.extracted by three), and the
	// check is a pure function of type and bytes, so a payload seen before
	// needs only its unmarshalling.
	decodedMu sync.Mutex
	decoded   map[payloadDigest]struct{}
}

// maxDecodedDigests bounds the memory of checked payloads: about 50 bytes
// each, forgotten all at once when full.
const maxDecodedDigests = 8192

// payloadDigest identifies a payload of a type.
type payloadDigest struct {
	t   Type
	sum [sha256.Size]byte
}

func digestOf(t Type, data []byte) payloadDigest {
	return payloadDigest{t: t, sum: sha256.Sum256(data)}
}

// checked reports whether Decode has fully checked this payload before.
func (v *Validator) checked(d payloadDigest) bool {
	v.decodedMu.Lock()
	defer v.decodedMu.Unlock()
	_, ok := v.decoded[d]
	return ok
}

// rememberChecked records a payload that passed every check of Decode.
func (v *Validator) rememberChecked(d payloadDigest) {
	v.decodedMu.Lock()
	defer v.decodedMu.Unlock()
	if v.decoded == nil || len(v.decoded) >= maxDecodedDigests {
		v.decoded = make(map[payloadDigest]struct{}, 64)
	}
	v.decoded[d] = struct{}{}
}

// NewValidator compiles the committed schema of every catalogue type.
func NewValidator() (*Validator, error) {
	c := validator.NewCompiler()
	c.AssertFormat()
	v := &Validator{schemas: map[Type]*validator.Schema{}}
	for _, s := range Catalog() {
		b, err := committedSchemas.ReadFile("schemas/" + SchemaFile(s.Type))
		if err != nil {
			return nil, fmt.Errorf("read schema of %s: %w", s.Type, err)
		}
		doc, err := validator.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse schema of %s: %w", s.Type, err)
		}
		if err := c.AddResource(SchemaURL(s.Type), doc); err != nil {
			return nil, fmt.Errorf("add schema of %s: %w", s.Type, err)
		}
		sch, err := c.Compile(SchemaURL(s.Type))
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", s.Type, err)
		}
		v.schemas[s.Type] = sch
	}
	return v, nil
}

// Validate checks a JSON payload against its type's schema.
func (v *Validator) Validate(t Type, data []byte) error {
	sch, ok := v.schemas[t]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, t)
	}
	inst, err := validator.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s payload is not JSON: %v", ErrInvalidEvent, t, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%w: %s payload violates its schema: %v", ErrInvalidEvent, t, err)
	}
	return nil
}
