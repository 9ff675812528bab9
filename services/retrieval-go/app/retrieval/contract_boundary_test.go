package retrieval_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
)

// The validators against every limit of the input schemas: the example
// request with one value set at a limit must pass, one step beyond it must
// be refused. A limit that the schema and contract.go gain but validate.go
// does not check fails here; contract_limits_test.go only compares numbers.

// validators decode a request strictly and validate it, by operation.
var validators = map[string]func([]byte) error{
	"search": validateJSON(func(r retrieval.SearchRequest) error {
		_, err := retrieval.ValidateSearchRequest(r)
		return err
	}),
	"index":  validateJSON(retrieval.ValidateIndexRequest),
	"delete": validateJSON(retrieval.ValidateDeleteRequest),
	"stats":  validateJSON(retrieval.ValidateStatsRequest),
}

func validateJSON[T any](validate func(T) error) func([]byte) error {
	return func(raw []byte) error {
		var req T
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return fmt.Errorf("does not decode: %w", err)
		}
		return validate(req)
	}
}

// boundaryCase is one value at (accepted) or beyond (refused) a limit.
type boundaryCase struct {
	value    any
	accepted bool
}

// boundaryCases are the cases of one keyword; none for keywords that set no
// limit (contract_limits_test.go fails on keywords it does not know).
func boundaryCases(keyword string, limit any, element any) []boundaryCase {
	n, _ := limit.(float64)
	size := int(n)
	switch keyword {
	case "maxLength":
		return []boundaryCase{{strings.Repeat("x", size), true}, {strings.Repeat("x", size+1), false}}
	case "minLength":
		return []boundaryCase{{strings.Repeat("x", size), true}, {"", false}}
	case "maximum":
		return []boundaryCase{{size, true}, {size + 1, false}}
	case "minimum":
		return []boundaryCase{{size, true}, {size - 1, false}}
	case "maxItems":
		return []boundaryCase{{distinctItems(element, size), true}, {distinctItems(element, size+1), false}}
	case "minItems":
		return []boundaryCase{{distinctItems(element, size), true}, {[]any{}, false}}
	case "maxProperties":
		return []boundaryCase{{entries(size), true}, {entries(size + 1), false}}
	case "enum":
		var cases []boundaryCase
		for _, v := range limit.([]any) {
			if v != nil {
				cases = append(cases, boundaryCase{v, true})
			}
		}
		return append(cases, boundaryCase{"not-a-listed-value", false})
	}
	return nil
}

// distinctItems makes n items like element, told apart where the contract
// needs distinct ones (ids in a request are unique).
func distinctItems(element any, n int) []any {
	items := make([]any, n)
	for i := range items {
		switch e := element.(type) {
		case string:
			items[i] = fmt.Sprintf("%s-%d", e, i)
		case map[string]any:
			clone := maps.Clone(e)
			clone["id"] = fmt.Sprintf("%v-%d", e["id"], i)
			items[i] = clone
		default:
			items[i] = element
		}
	}
	return items
}

func entries(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

// setAt returns doc with the subschema at where (a location as in
// limitBindings) replaced by value. An array on the way keeps only its first
// item, so one change never meets another item's constraints (one dimension
// per request, unique ids); a map value or key is set as the map's only
// entry.
func setAt(doc any, where string, value any) any {
	if where == "" {
		return value
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		panic(fmt.Sprintf("%v is not an object at %q", doc, where))
	}
	end := strings.IndexAny(where, ".[{")
	if end < 0 {
		end = len(where)
	}
	name, rest := where[:end], where[end:]
	obj = maps.Clone(obj)
	switch {
	case strings.HasPrefix(rest, "[]"):
		items, _ := obj[name].([]any)
		if len(items) == 0 {
			panic(fmt.Sprintf("the example has no %s item to change", name))
		}
		obj[name] = []any{setAt(items[0], strings.TrimPrefix(rest[2:], "."), value)}
	case rest == "{}":
		obj[name] = map[string]any{"k": value}
	case rest == "{key}":
		obj[name] = map[string]any{fmt.Sprint(value): "v"}
	case rest == "":
		obj[name] = value
	default:
		obj[name] = setAt(obj[name], strings.TrimPrefix(rest, "."), value)
	}
	return obj
}

// fullestExample is the operation's example input with the most non-null
// fields, so that every enum value has what it needs (vector mode a vector).
func fullestExample(t *testing.T, dir string, files []string) map[string]any {
	t.Helper()
	var best map[string]any
	bestFields := -1
	for _, file := range files {
		var doc map[string]any
		readJSON(t, filepath.Join(dir, file), &doc)
		fields := 0
		for _, v := range doc {
			if v != nil {
				fields++
			}
		}
		if fields > bestFields {
			best, bestFields = doc, fields
		}
	}
	return best
}

func TestValidatorsEnforceEveryInputLimitAtItsBoundary(t *testing.T) {
	spec, dir := loadServiceSpec(t)
	for _, name := range slices.Sorted(maps.Keys(spec.Operations)) {
		op := spec.Operations[name]
		validate, ok := validators[name]
		if !ok {
			t.Errorf("operation %q has no validator in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			var inputs []string
			for _, ex := range op.Examples {
				inputs = append(inputs, ex.Input)
			}
			base := fullestExample(t, dir, inputs)
			if err := validate(mustJSON(t, base)); err != nil {
				t.Fatalf("the example itself is refused: %v", err)
			}
			var schema map[string]any
			readJSON(t, filepath.Join(dir, op.Input), &schema)
			for _, node := range schemaNodes(schema, "") {
				for _, keyword := range slices.Sorted(maps.Keys(node.schema)) {
					checkBoundary(t, validate, base, node, keyword)
				}
			}
		})
	}
}

func checkBoundary(t *testing.T, validate func([]byte) error, base map[string]any, node schemaNode, keyword string) {
	t.Helper()
	var element any = "x"
	if items, ok := node.schema["items"].(map[string]any); ok && items["type"] == "number" {
		element = 0.5
	} else if existing := firstItemAt(base, node.where); existing != nil {
		element = existing
	}
	for _, c := range boundaryCases(keyword, node.schema[keyword], element) {
		err := validate(mustJSON(t, setAt(base, node.where, c.value)))
		if accepted := err == nil; accepted != c.accepted {
			t.Errorf("%s %s=%v with %s: accepted=%v, want %v (%v)", node.where, keyword, node.schema[keyword], describe(c.value), accepted, c.accepted, err)
		}
	}
}

// firstItemAt is the first item of the example's array at a top-level
// location, to copy when a test needs more items.
func firstItemAt(doc map[string]any, where string) any {
	if items, ok := doc[where].([]any); ok && len(items) > 0 {
		return items[0]
	}
	return nil
}

// describe names a test value by its size where it has one.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%d characters", len(v))
	case []any:
		return fmt.Sprintf("%d items", len(v))
	case map[string]any:
		return fmt.Sprintf("%d entries", len(v))
	}
	return fmt.Sprint(v)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
