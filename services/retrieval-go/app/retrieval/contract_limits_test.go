package retrieval_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
)

// The limits of nexus/retrieval/schemas against the constants the
// validators use. Every bound of an input schema (maxLength, maximum,
// maxItems, maxProperties, minimum, enum) and every enum of an output must be
// bound below to one constant with the same value, and every Max*/Min*
// constant of contract.go must be bound to a schema location, so a limit
// changed on either side fails until the other follows. minLength and
// minItems may only say "not empty" (1): the validators check emptiness, not
// a count. nexus/python/tests/test_schema_drift.py holds the Python side to
// the same rules; nexus/README.md explains both.

// binding is a limit's constant: its name in contract.go (to find constants
// no schema states) and its value.
type binding struct {
	name  string
	value any
}

func bind(name string, value int) binding { return binding{name, value} }

// limitBindings maps a schema location to its keywords' constants. A
// location is a property path: a.b for nested objects, a[] for array items,
// a{} for map values and a{key} for map keys; it names the same thing in
// every schema of the service.
var limitBindings = map[string]map[string]binding{
	"collection":                {"maxLength": bind("MaxCollectionLength", retrieval.MaxCollectionLength)},
	"query":                     {"maxLength": bind("MaxQueryLength", retrieval.MaxQueryLength)},
	"top_k":                     {"minimum": bind("MinTopK", retrieval.MinTopK), "maximum": bind("MaxTopK", retrieval.MaxTopK)},
	"mode":                      {"enum": {"index.Mode*", []string{string(index.ModeBM25), string(index.ModeVector), string(index.ModeHybrid)}}},
	"query_vector":              {"maxItems": bind("MaxVectorDimension", retrieval.MaxVectorDimension)},
	"filters":                   {"maxProperties": bind("MaxFilters", retrieval.MaxFilters)},
	"filters{key}":              {"maxLength": bind("MaxKeyLength", retrieval.MaxKeyLength)},
	"filters{}":                 {"maxLength": bind("MaxValueLength", retrieval.MaxValueLength)},
	"batch_id":                  {"maxLength": bind("MaxBatchIDLength", retrieval.MaxBatchIDLength)},
	"documents":                 {"maxItems": bind("MaxIndexDocuments", retrieval.MaxIndexDocuments)},
	"documents[].id":            {"maxLength": bind("MaxDocIDLength", retrieval.MaxDocIDLength)},
	"documents[].version":       {"minimum": bind("MinVersion", retrieval.MinVersion)},
	"documents[].title":         {"maxLength": bind("MaxTitleLength", retrieval.MaxTitleLength)},
	"documents[].text":          {"maxLength": bind("MaxTextLength", retrieval.MaxTextLength)},
	"documents[].metadata":      {"maxProperties": bind("MaxMetadataEntries", retrieval.MaxMetadataEntries)},
	"documents[].metadata{key}": {"maxLength": bind("MaxKeyLength", retrieval.MaxKeyLength)},
	"documents[].metadata{}":    {"maxLength": bind("MaxValueLength", retrieval.MaxValueLength)},
	"documents[].vector":        {"maxItems": bind("MaxVectorDimension", retrieval.MaxVectorDimension)},
	"ids":                       {"maxItems": bind("MaxDeleteIDs", retrieval.MaxDeleteIDs)},
	"ids[]":                     {"maxLength": bind("MaxDocIDLength", retrieval.MaxDocIDLength)},
	"collections[].vector_index": {"enum": {"index.VectorIndex*", []string{
		index.VectorIndexNone, index.VectorIndexExact, index.VectorIndexHNSW}}},
}

// unboundConstants are limits JSON Schema cannot state; each says where it is
// documented instead.
var unboundConstants = map[string]string{
	"MaxIndexRequestBytes": "an estimate of the whole request's size; service.json's index description states it",
}

var (
	boundKeywords    = []string{"maxLength", "maximum", "maxItems", "maxProperties", "minimum", "enum"}
	nonEmptyKeywords = []string{"minLength", "minItems"}
	// On outputs these describe what the worker produces (counts are not
	// negative); the examples round-trip through the Go types.
	outputOnlyKeywords = []string{"minimum", "pattern", "format"}
	structureKeywords  = []string{"$schema", "$id", "title", "description", "type", "properties",
		"required", "additionalProperties", "items", "propertyNames"}
)

// schemaNode is a subschema and its location (see limitBindings).
type schemaNode struct {
	where  string
	schema map[string]any
}

func schemaNodes(schema map[string]any, where string) []schemaNode {
	nodes := []schemaNode{{where, schema}}
	prefix := where
	if prefix != "" {
		prefix += "."
	}
	props, _ := schema["properties"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(props)) {
		child, _ := props[name].(map[string]any)
		nodes = append(nodes, schemaNodes(child, prefix+name)...)
	}
	for _, sub := range []struct{ suffix, key string }{{"[]", "items"}, {"{}", "additionalProperties"}, {"{key}", "propertyNames"}} {
		if child, ok := schema[sub.key].(map[string]any); ok {
			nodes = append(nodes, schemaNodes(child, where+sub.suffix)...)
		}
	}
	return nodes
}

// schemaFiles lists the service's schemas as file -> "input" or "output".
func schemaFiles(t *testing.T) (map[string]string, string) {
	t.Helper()
	spec, dir := loadServiceSpec(t)
	files := make(map[string]string)
	for _, op := range spec.Operations {
		files[op.Input] = "input"
		files[op.Output] = "output"
	}
	return files, dir
}

func TestEveryLimitIsABoundConstant(t *testing.T) {
	files, dir := schemaFiles(t)
	for file, direction := range files {
		t.Run(file, func(t *testing.T) {
			var schema map[string]any
			readJSON(t, filepath.Join(dir, file), &schema)
			for _, node := range schemaNodes(schema, "") {
				for _, keyword := range slices.Sorted(maps.Keys(node.schema)) {
					if problem := limitProblem(node, keyword, direction); problem != "" {
						t.Errorf("%s %s %s=%v: %s", file, node.where, keyword, node.schema[keyword], problem)
					}
				}
			}
		})
	}
}

// limitProblem says what is wrong with one keyword of a schema node, or "".
func limitProblem(node schemaNode, keyword, direction string) string {
	value := node.schema[keyword]
	switch {
	case slices.Contains(structureKeywords, keyword),
		direction == "output" && slices.Contains(outputOnlyKeywords, keyword):
		return ""
	case slices.Contains(nonEmptyKeywords, keyword):
		if value != 1.0 {
			return "only 1 (not empty) is checked by the validators; add a constant and a check"
		}
		return ""
	case !slices.Contains(boundKeywords, keyword):
		return "this test does not know the keyword; teach it before using it"
	}
	b, ok := limitBindings[node.where][keyword]
	if !ok {
		return "no constant is bound to it in limitBindings"
	}
	switch bound := b.value.(type) {
	case []string:
		// null in an enum is the field's nullability, which
		// TestTypesMatchSchemas checks.
		var want []string
		for _, v := range value.([]any) {
			if v != nil {
				want = append(want, fmt.Sprint(v))
			}
		}
		if !slices.Equal(slices.Sorted(slices.Values(bound)), slices.Sorted(slices.Values(want))) {
			return fmt.Sprintf("%s is %q", b.name, bound)
		}
	case int:
		if float64(bound) != value {
			return fmt.Sprintf("retrieval.%s is %d", b.name, bound)
		}
	default:
		return fmt.Sprintf("bound to a %T, which this test cannot compare", b.value)
	}
	return ""
}

func TestEveryBindingAndConstantIsUsed(t *testing.T) {
	files, dir := schemaFiles(t)
	used := make(map[string]bool)
	for file := range files {
		var schema map[string]any
		readJSON(t, filepath.Join(dir, file), &schema)
		for _, node := range schemaNodes(schema, "") {
			for keyword := range node.schema {
				used[node.where+" "+keyword] = true
			}
		}
	}
	bound := make(map[string]bool)
	for where, keywords := range limitBindings {
		for keyword, b := range keywords {
			bound[b.name] = true
			if !used[where+" "+keyword] {
				t.Errorf("limitBindings binds %s %s, which no schema has", where, keyword)
			}
		}
	}
	for _, name := range limitConstants(t) {
		if _, documented := unboundConstants[name]; !bound[name] && !documented {
			t.Errorf("contract.go declares %s, which no schema states: bind it in limitBindings or say why not in unboundConstants", name)
		}
	}
}

// limitConstants lists the Max*/Min* constants contract.go declares; Go has
// no reflection over constants, so this reads the source.
func limitConstants(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "contract.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			for _, name := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(name.Name, "Max") || strings.HasPrefix(name.Name, "Min") {
					names = append(names, name.Name)
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no Max*/Min* constants in contract.go; update limitConstants")
	}
	return names
}
