package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSONCreatesTheDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "report.json")
	if err := WriteJSON(path, map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := json.Unmarshal(b, &got); err != nil || got["x"] != 1 || b[len(b)-1] != '\n' {
		t.Errorf("file %q, err %v", b, err)
	}
	if err := WriteJSON(filepath.Join(path, "under-a-file.json"), 1); err == nil {
		t.Error("writing below a file succeeded")
	}
}
