package retrieval_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nexus-rpc/sdk-go/nexus"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// nexusDir is the repository's contract directory, relative to this
// package's directory (where go test runs).
const nexusDir = "../../../../nexus"

type serviceSpec struct {
	Service    string `json:"service"`
	Operations map[string]struct {
		Kind     string `json:"kind"`
		Input    string `json:"input"`
		Output   string `json:"output"`
		Examples []struct {
			Input  string `json:"input"`
			Output string `json:"output"`
		} `json:"examples"`
	} `json:"operations"`
}

func loadServiceSpec(t *testing.T) (spec serviceSpec, dir string) {
	t.Helper()
	dir = filepath.Join(nexusDir, retrieval.ServiceName)
	readJSON(t, filepath.Join(dir, "service.json"), &spec)
	if len(spec.Operations) == 0 {
		t.Fatalf("%s/service.json lists no operations", dir)
	}
	return spec, dir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func newService(t *testing.T) *nexus.Service {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := retrieval.NewService(backend.EmbeddedStore{Store: st}, retrieval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// registeredOperations lists the operations registered on svc. sdk-go has no
// public way to enumerate them, so this reads the service's private map; if
// a new sdk-go changes that, the test fails here rather than passing blindly.
func registeredOperations(t *testing.T, svc *nexus.Service) []string {
	t.Helper()
	m := reflect.ValueOf(svc).Elem().FieldByName("operations")
	if m.Kind() != reflect.Map || m.Type().Key().Kind() != reflect.String {
		t.Fatal("nexus.Service no longer keeps its operations in a map named operations; update registeredOperations for this sdk-go version")
	}
	var names []string
	for _, k := range m.MapKeys() {
		names = append(names, k.String())
	}
	slices.Sort(names)
	return names
}

type typedOperation interface {
	InputType() reflect.Type
	OutputType() reflect.Type
}

func operationTypes(t *testing.T, svc *nexus.Service, name string) (in, out reflect.Type) {
	t.Helper()
	op, ok := svc.Operation(name).(typedOperation)
	if !ok {
		t.Fatalf("operation %q is not registered or does not expose its input and output types", name)
	}
	return op.InputType(), op.OutputType()
}

func TestServiceMatchesContract(t *testing.T) {
	spec, _ := loadServiceSpec(t)
	svc := newService(t)
	if svc.Name != spec.Service {
		t.Errorf("Go service is named %q, service.json says %q", svc.Name, spec.Service)
	}
	want := slices.Sorted(maps.Keys(spec.Operations))
	if got := registeredOperations(t, svc); !slices.Equal(got, want) {
		t.Errorf("Go service registers operations %q, service.json lists %q", got, want)
	}
}

func TestExamplesRoundTrip(t *testing.T) {
	spec, dir := loadServiceSpec(t)
	svc := newService(t)
	for name, op := range spec.Operations {
		inType, outType := operationTypes(t, svc, name)
		if len(op.Examples) == 0 {
			t.Errorf("operation %q has no examples", name)
		}
		for i, ex := range op.Examples {
			t.Run(fmt.Sprintf("%s/%d/input", name, i), func(t *testing.T) {
				roundTrip(t, filepath.Join(dir, ex.Input), inType)
			})
			t.Run(fmt.Sprintf("%s/%d/output", name, i), func(t *testing.T) {
				roundTrip(t, filepath.Join(dir, ex.Output), outType)
			})
		}
	}
}

// roundTrip decodes the example at path strictly into a value of type typ,
// encodes it again and requires the same JSON document back, so a field that
// Go names differently, lacks, or adds breaks the test.
func roundTrip(t *testing.T, path string, typ reflect.Type) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.New(typ)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		t.Fatalf("%s does not decode into %s: %v", path, typ, err)
	}
	encoded, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(encoded, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s changes in a round trip through %s:\n got %s\nwant %s", path, typ, encoded, bytes.TrimSpace(raw))
	}
}

func TestTypesMatchSchemas(t *testing.T) {
	spec, dir := loadServiceSpec(t)
	svc := newService(t)
	for name, op := range spec.Operations {
		inType, outType := operationTypes(t, svc, name)
		for _, c := range []struct {
			file string
			typ  reflect.Type
		}{{op.Input, inType}, {op.Output, outType}} {
			t.Run(c.file, func(t *testing.T) {
				var schema map[string]any
				readJSON(t, filepath.Join(dir, c.file), &schema)
				checkSchema(t, c.file, schema, c.typ)
			})
		}
	}
}

// checkSchema compares a Go type with the subset of JSON Schema the contracts
// use (object, map, array and scalar types, optionally nullable); anything
// else fails loudly so that a richer schema gets a richer check rather than
// none.
func checkSchema(t *testing.T, where string, schema map[string]any, typ reflect.Type) {
	t.Helper()
	if ref, ok := schema["$ref"]; ok {
		t.Fatalf("%s: $ref %v is not supported by this test yet", where, ref)
	}
	kinds := map[string][]reflect.Kind{
		"string":  {reflect.String},
		"integer": {reflect.Int, reflect.Int32, reflect.Int64},
		"number":  {reflect.Float64, reflect.Float32},
		"boolean": {reflect.Bool},
		"array":   {reflect.Slice},
		"object":  {reflect.Struct, reflect.Map},
	}
	var st string
	nullable := false
	switch v := schema["type"].(type) {
	case string:
		st = v
	case []any:
		for _, x := range v {
			if x == "null" {
				nullable = true
			} else {
				st, _ = x.(string)
			}
		}
		if len(v) != 2 || !nullable {
			t.Errorf("%s: type %v: only [T, \"null\"] is supported", where, v)
		}
	}
	if !slices.Contains(kinds[st], typ.Kind()) {
		t.Errorf("%s: schema type %q, Go type %s", where, st, typ)
		return
	}
	// null decodes into Go's zero value; only slices, maps and strings
	// (for an optional enum) may stand for it.
	if nullable && !slices.Contains([]reflect.Kind{reflect.Slice, reflect.Map, reflect.String}, typ.Kind()) {
		t.Errorf("%s: nullable schema type, Go type %s cannot tell null from a value", where, typ)
	}
	switch {
	case st == "array":
		items, _ := schema["items"].(map[string]any)
		checkSchema(t, where+"[]", items, typ.Elem())
	case st == "object" && typ.Kind() == reflect.Map:
		values, ok := schema["additionalProperties"].(map[string]any)
		if !ok || typ.Key().Kind() != reflect.String {
			t.Errorf("%s: Go map %s needs a schema with additionalProperties and string keys", where, typ)
			return
		}
		checkSchema(t, where+"{}", values, typ.Elem())
	case st == "object":
		props, _ := schema["properties"].(map[string]any)
		fields := jsonFields(typ)
		if got, want := slices.Sorted(maps.Keys(fields)), slices.Sorted(maps.Keys(props)); !slices.Equal(got, want) {
			t.Errorf("%s: Go type %s has JSON fields %q, schema has %q", where, typ, got, want)
		}
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if f, ok := fields[r.(string)]; ok && f.omitEmpty {
				t.Errorf("%s: %q is required but %s omits it when empty", where, r, typ)
			}
		}
		for name, p := range props {
			if f, ok := fields[name]; ok {
				checkSchema(t, where+"."+name, p.(map[string]any), f.typ)
			}
		}
	}
}

type jsonField struct {
	typ       reflect.Type
	omitEmpty bool
}

func jsonFields(typ reflect.Type) map[string]jsonField {
	fields := make(map[string]jsonField)
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fields[name] = jsonField{typ: f.Type, omitEmpty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")}
	}
	return fields
}

func TestEndpointTargetsWorkerDefaults(t *testing.T) {
	var endpoints struct {
		Endpoints []struct {
			Name            string `json:"name"`
			TargetNamespace string `json:"target_namespace"`
			TargetTaskQueue string `json:"target_task_queue"`
			Service         string `json:"service"`
		} `json:"endpoints"`
	}
	readJSON(t, filepath.Join(nexusDir, "endpoints.json"), &endpoints)
	found := 0
	for _, e := range endpoints.Endpoints {
		if e.Service != retrieval.ServiceName {
			continue
		}
		found++
		if e.TargetTaskQueue != retrieval.DefaultTaskQueue {
			t.Errorf("endpoint %q targets task queue %q; the worker polls %q by default", e.Name, e.TargetTaskQueue, retrieval.DefaultTaskQueue)
		}
		if e.TargetNamespace != retrieval.DefaultNamespace {
			t.Errorf("endpoint %q targets namespace %q; the worker uses %q by default", e.Name, e.TargetNamespace, retrieval.DefaultNamespace)
		}
	}
	if found != 1 {
		t.Errorf("endpoints.json has %d endpoints for service %q, want 1", found, retrieval.ServiceName)
	}
}
