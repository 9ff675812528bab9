package codec

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseKeyRing(t *testing.T) {
	k1, k2 := testKeyB64("k1"), testKeyB64("k-2026.05_b")
	tests := []struct {
		name       string
		doc        string
		wantErr    string // substring; empty means success
		wantIDs    []string
		wantActive map[string]string
	}{
		{
			name:       "two keys, default and namespace",
			doc:        `{"keys":{"k1":"` + k1 + `","k-2026.05_b":"` + k2 + `"},"active":{"*":"k1","business":"k-2026.05_b"}}`,
			wantIDs:    []string{"k-2026.05_b", "k1"},
			wantActive: map[string]string{"*": "k1", "business": "k-2026.05_b"},
		},
		{
			name:       "unpadded base64",
			doc:        `{"keys":{"k1":"` + strings.TrimRight(k1, "=") + `"},"active":{"*":"k1"}}`,
			wantIDs:    []string{"k1"},
			wantActive: map[string]string{"*": "k1"},
		},
		{
			name:       "no active (decrypt-only)",
			doc:        `{"keys":{"k1":"` + k1 + `"}}`,
			wantIDs:    []string{"k1"},
			wantActive: map[string]string{},
		},
		{
			name:       "owners of a retired key",
			doc:        `{"keys":{"k1":"` + k1 + `"},"active":{},"owners":{"k1":["business"]}}`,
			wantIDs:    []string{"k1"},
			wantActive: map[string]string{},
		},
		{name: "owners of an unknown key", doc: `{"keys":{"k1":"` + k1 + `"},"owners":{"k9":["business"]}}`, wantErr: `"owners" names "k9", which is not in keys`},
		{name: "owners empty", doc: `{"keys":{"k1":"` + k1 + `"},"owners":{"k1":[]}}`, wantErr: "non-empty list of namespace names"},
		{name: "owners bad name", doc: `{"keys":{"k1":"` + k1 + `"},"owners":{"k1":["a b"]}}`, wantErr: "non-empty list of namespace names"},
		{name: "empty", doc: ``, wantErr: "empty or truncated"},
		{name: "not json", doc: `keys: x`, wantErr: "malformed JSON at byte offset"},
		{name: "array", doc: `[]`, wantErr: "must be a JSON object"},
		{name: "trailing data", doc: `{"keys":{"k1":"` + k1 + `"}} {}`, wantErr: "trailing data"},
		{name: "missing keys", doc: `{"active":{}}`, wantErr: `missing "keys"`},
		{name: "no keys", doc: `{"keys":{}}`, wantErr: "no keys"},
		{name: "unknown field", doc: `{"keys":{"k1":"` + k1 + `"},"activ":{}}`, wantErr: `unknown field "activ"`},
		{name: "key not a string", doc: `{"keys":{"k1":5}}`, wantErr: "wrong type"},
		{name: "short key", doc: `{"keys":{"k1":"` + base64.StdEncoding.EncodeToString(make([]byte, 16)) + `"}}`, wantErr: `key "k1" decodes to 16 bytes`},
		{name: "long key", doc: `{"keys":{"k1":"` + base64.StdEncoding.EncodeToString(make([]byte, 33)) + `"}}`, wantErr: `key "k1" decodes to 33 bytes`},
		{name: "url alphabet", doc: `{"keys":{"k1":"` + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16)))) + `"}}`, wantErr: `key "k1" is not valid base64`},
		{name: "whitespace in key", doc: `{"keys":{"k1":" ` + k1 + `"}}`, wantErr: `key "k1" is not valid base64`},
		{name: "bad base64 length", doc: `{"keys":{"k1":"` + k1[:41] + `"}}`, wantErr: `key "k1" is not valid base64`},
		{name: "too much padding", doc: `{"keys":{"k1":"` + k1 + `=="}}`, wantErr: "too much padding"},
		{name: "bad key id", doc: `{"keys":{"bad id":"` + k1 + `"}}`, wantErr: "outside [A-Za-z0-9._-]"},
		{name: "long key id", doc: `{"keys":{"` + strings.Repeat("a", 65) + `":"` + k1 + `"}}`, wantErr: "longer than 64"},
		{name: "active names unknown key", doc: `{"keys":{"k1":"` + k1 + `"},"active":{"*":"k9"}}`, wantErr: `is "k9", which is not in keys`},
		{name: "active empty namespace", doc: `{"keys":{"k1":"` + k1 + `"},"active":{"":"k1"}}`, wantErr: "empty or space-padded namespace"},
		{name: "active padded namespace", doc: `{"keys":{"k1":"` + k1 + `"},"active":{" agents":"k1"}}`, wantErr: "empty or space-padded namespace"},
		{name: "active not a map", doc: `{"keys":{"k1":"` + k1 + `"},"active":"k1"}`, wantErr: "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseKeyRing([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseKeyRing succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidKeyRing) {
					t.Errorf("errors.Is(err, ErrInvalidKeyRing) = false for %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyRing: %v", err)
			}
			if got := r.KeyIDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("KeyIDs = %v, want %v", got, tt.wantIDs)
			}
			if got := r.Active(); fmt.Sprint(got) != fmt.Sprint(tt.wantActive) {
				t.Errorf("Active = %v, want %v", got, tt.wantActive)
			}
		})
	}
}

func TestActiveKey(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1", "business": "k2"}, "k1", "k2")
	for ns, want := range map[string]string{"agents": "k1", "business": "k2", "retrieval": "k1", "": "k1"} {
		k, err := ring.ActiveKey(ns)
		if err != nil || k.ID() != want {
			t.Errorf("ActiveKey(%q) = %v, %v; want %s", ns, k, err, want)
		}
	}
	noDefault := mustRing(t, map[string]string{"business": "k2"}, "k1", "k2")
	if _, err := noDefault.ActiveKey("agents"); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("ActiveKey without default: err = %v, want ErrNoActiveKey", err)
	}
}

func TestNewKeyRingErrors(t *testing.T) {
	k1 := mustKey(t, "k1")
	tests := []struct {
		name   string
		keys   []Key
		active map[string]string
		want   string
	}{
		{"no keys", nil, nil, "no keys"},
		{"duplicate", []Key{k1, k1}, nil, `duplicate key id "k1"`},
		{"zero key", []Key{{}}, nil, "uninitialised Key"},
		{"unknown active", []Key{k1}, map[string]string{"*": "k2"}, `"k2", which is not in keys`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeyRing(tt.keys, tt.active)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
	if _, err := NewKey("k1", make([]byte, 31)); err == nil {
		t.Error("NewKey accepted a 31-byte key")
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileKeySource(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keyring.json")
	writeFiles(t, dir, map[string]string{
		"keyring.json": `{"keys":{"k1":"` + testKeyB64("k1") + `"},"active":{"*":"k1"}}`,
		"bad.json":     `{"keys":{"k1":"` + testKeyB64("k1") + `"`,
	})
	r, err := FileKeySource{Path: good}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.KeyIDs(); !slices.Equal(got, []string{"k1"}) {
		t.Errorf("KeyIDs = %v", got)
	}
	for name, want := range map[string]string{
		"bad.json":     "bad.json: invalid key ring: empty or truncated",
		"missing.json": "no such file",
	} {
		_, err := FileKeySource{Path: filepath.Join(dir, name)}.Load(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s): err = %v, want containing %q", name, err, want)
		}
	}
}

func TestDirKeySource(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		k8sLinks   bool
		wantErr    string
		wantIDs    []string
		wantActive map[string]string
	}{
		{
			name: "secret volume with ..data links",
			files: map[string]string{
				"k1.key":      testKeyB64("k1") + "\n",
				"k2.key":      "  " + strings.TrimRight(testKeyB64("k2"), "=") + "\r\n",
				"active":      "# rotated 2026-11\n*=k1\n\nbusiness = k2\n",
				"README":      "ignored",
				".hidden.key": "not base64, ignored",
			},
			k8sLinks:   true,
			wantIDs:    []string{"k1", "k2"},
			wantActive: map[string]string{"*": "k1", "business": "k2"},
		},
		{
			name:       "plain files, no active file",
			files:      map[string]string{"k1.key": testKeyB64("k1")},
			wantIDs:    []string{"k1"},
			wantActive: map[string]string{},
		},
		{name: "no key files", files: map[string]string{"active": "*=k1"}, wantErr: "no <key-id>.key files"},
		{name: "bad key", files: map[string]string{"k1.key": "not base64!"}, wantErr: `invalid key ring: key "k1" is not valid base64`},
		{name: "bad key id", files: map[string]string{"k 1.key": testKeyB64("k1")}, wantErr: "outside [A-Za-z0-9._-]"},
		{name: "active line without =", files: map[string]string{"k1.key": testKeyB64("k1"), "active": "*=k1\nk1\n"}, wantErr: `file "active" line 2: want namespace=key-id`},
		{name: "active duplicate", files: map[string]string{"k1.key": testKeyB64("k1"), "active": "*=k1\n*=k1\n"}, wantErr: "listed twice"},
		{name: "active unknown key", files: map[string]string{"k1.key": testKeyB64("k1"), "active": "*=k2\n"}, wantErr: `"k2", which is not in keys`},
		{name: "compression not a number", files: map[string]string{"k1.key": testKeyB64("k1"), "compression": "agents=yes\n"}, wantErr: `file "compression": namespace "agents": want a whole number`},
		{name: "compression line without =", files: map[string]string{"k1.key": testKeyB64("k1"), "compression": "agents\n"}, wantErr: `file "compression" line 1: want namespace=bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.k8sLinks {
				// The layout kubelet writes: files in a timestamped dir, ..data -> it, and one
				// symlink per file through ..data.
				ts := filepath.Join(dir, "..2026_11_01_00_00_00.000000001")
				if err := os.Mkdir(ts, 0o700); err != nil {
					t.Fatal(err)
				}
				writeFiles(t, ts, tt.files)
				if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				for name := range tt.files {
					if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				writeFiles(t, dir, tt.files)
			}
			r, err := DirKeySource{Dir: dir}.Load(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.KeyIDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("KeyIDs = %v, want %v", got, tt.wantIDs)
			}
			if got := r.Active(); fmt.Sprint(got) != fmt.Sprint(tt.wantActive) {
				t.Errorf("Active = %v, want %v", got, tt.wantActive)
			}
		})
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"k1.key": testKeyB64("k1"), "compression": "# opt-in\nretrieval=4096\n", "owners": "k1=business\n"})
	if r, err := (DirKeySource{Dir: dir}).Load(context.Background()); err != nil || r.CompressionThreshold("retrieval") != 4096 || r.CompressionThreshold("agents") != 0 {
		t.Errorf("compression file: ring %v, err %v", r, err)
	}
	if _, err := (DirKeySource{Dir: filepath.Join(t.TempDir(), "absent")}).Load(context.Background()); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

func TestEnvKeySource(t *testing.T) {
	t.Setenv("MY_RING", `{"keys":{"k1":"`+testKeyB64("k1")+`"},"active":{"*":"k1"}}`)
	r, err := EnvKeySource{Var: "MY_RING"}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.KeyIDs(); !slices.Equal(got, []string{"k1"}) {
		t.Errorf("KeyIDs = %v", got)
	}
	t.Setenv(EnvKeyRing, `{"keys":{"k1":"AAAA"}}`)
	_, err = EnvKeySource{}.Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "environment variable CODEC_KEYRING: invalid key ring") {
		t.Errorf("err = %v", err)
	}
	t.Setenv(EnvKeyRing, "")
	if _, err := (EnvKeySource{}).Load(context.Background()); err == nil || !strings.Contains(err.Error(), "CODEC_KEYRING is not set or empty") {
		t.Errorf("err = %v", err)
	}
}

func TestKeySourceFromEnv(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ring.json": `{"keys":{"file-key":"` + testKeyB64("f") + `"},"active":{"*":"file-key"}}`,
		"d.key":     testKeyB64("d"),
	})
	doc := `{"keys":{"env-key":"` + testKeyB64("e") + `"},"active":{"*":"env-key"}}`
	tests := []struct {
		name    string
		env     map[string]string
		wantID  string
		wantErr string
	}{
		{name: "file", env: map[string]string{EnvKeyRingFile: filepath.Join(dir, "ring.json")}, wantID: "file-key"},
		{name: "dir", env: map[string]string{EnvKeyRingDir: dir}, wantID: "d"},
		{name: "env", env: map[string]string{EnvKeyRing: doc}, wantID: "env-key"},
		{name: "empty counts as unset", env: map[string]string{EnvKeyRing: doc, EnvKeyRingFile: ""}, wantID: "env-key"},
		{name: "blank counts as unset", env: map[string]string{EnvKeyRing: doc, EnvKeyRingDir: " \n"}, wantID: "env-key"},
		{name: "path is trimmed", env: map[string]string{EnvKeyRingFile: " " + filepath.Join(dir, "ring.json") + "\n"}, wantID: "file-key"},
		{name: "none", env: nil, wantErr: "set exactly one of CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or CODEC_KEYRING"},
		{name: "several", env: map[string]string{EnvKeyRing: doc, EnvKeyRingDir: dir}, wantErr: "several encryption key ring sources are set (CODEC_KEYRING, CODEC_KEYRING_DIR)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{EnvKeyRingFile, EnvKeyRingDir, EnvKeyRing} {
				t.Setenv(v, tt.env[v])
			}
			r, err := LoadKeyRingFromEnv(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.KeyIDs(); !slices.Equal(got, []string{tt.wantID}) {
				t.Errorf("KeyIDs = %v, want [%s]", got, tt.wantID)
			}
		})
	}
}

func TestKeySourceCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, src := range []KeySource{FileKeySource{Path: "x"}, DirKeySource{Dir: "x"}, EnvKeySource{}} {
		if _, err := src.Load(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%T.Load(canceled) = %v", src, err)
		}
	}
}
