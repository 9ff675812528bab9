package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func keyB64(id string) string {
	sum := sha256.Sum256([]byte("cli test " + id))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func setRing(t *testing.T) {
	t.Helper()
	t.Setenv("CODEC_KEYRING_FILE", "")
	t.Setenv("CODEC_KEYRING_DIR", "")
	t.Setenv("CODEC_KEYRING", `{"keys":{"k1":"`+keyB64("k1")+`","k2":"`+keyB64("k2")+`"},"active":{"*":"k1","business":"k2"}}`)
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEncodeDecode(t *testing.T) {
	setRing(t)
	large := base64.StdEncoding.EncodeToString([]byte(`"` + strings.Repeat("compressible ", 1000) + `"`))
	in := `{"payloads":[` +
		`{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"eyJhIjoxfQ=="},` +
		`{"metadata":{"encoding":"anNvbi9wbGFpbg"},"data":"` + large + `"},` +
		`{}]}`
	for _, tt := range []struct {
		ns, wantKey string
	}{{"agents", "k1"}, {"business", "k2"}} {
		code, enc, stderr := runCLI(t, in, "encode", "--namespace", tt.ns)
		if code != 0 {
			t.Fatalf("encode exit %d: %s", code, stderr)
		}
		var body jsonBody
		if err := json.Unmarshal([]byte(enc), &body); err != nil {
			t.Fatal(err)
		}
		for i, p := range body.Payloads {
			if p.Metadata["encryption-key-id"] != base64.StdEncoding.EncodeToString([]byte(tt.wantKey)) {
				t.Errorf("%s payload %d: key id %q, want %s", tt.ns, i, p.Metadata["encryption-key-id"], tt.wantKey)
			}
		}
		code, dec, stderr := runCLI(t, enc, "decode")
		if code != 0 {
			t.Fatalf("decode exit %d: %s", code, stderr)
		}
		want := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"eyJhIjoxfQ=="},{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"` + large + `"},{}]}` + "\n"
		if dec != want {
			t.Errorf("decode output:\n got %s\nwant %s", dec, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		noRing      bool
		wantCode    int
		wantErr     string
	}{
		{name: "no command", wantCode: 2, wantErr: "usage:"},
		{name: "unknown command", args: []string{"encrypt"}, wantCode: 2, wantErr: "usage:"},
		{name: "unknown flag", args: []string{"encode", "--nope"}, wantCode: 2, wantErr: "flag provided but not defined"},
		{name: "no key ring", args: []string{"decode"}, stdin: `{"payloads":[]}`, noRing: true, wantCode: 1, wantErr: "set exactly one of CODEC_KEYRING_FILE"},
		{name: "empty stdin", args: []string{"decode"}, wantCode: 1, wantErr: "stdin is empty"},
		{name: "not json", args: []string{"decode"}, stdin: "secret words", wantCode: 1, wantErr: "malformed JSON at byte offset"},
		{name: "no payloads", args: []string{"decode"}, stdin: `{}`, wantCode: 1, wantErr: `no "payloads" array`},
		{name: "unknown field", args: []string{"decode"}, stdin: `{"payload":[]}`, wantCode: 1, wantErr: `unknown field "payload"`},
		{name: "data not base64", args: []string{"encode"}, stdin: `{"payloads":[{"data":"secret words!"}]}`, wantCode: 1, wantErr: "payloads[0].data is not base64"},
		{name: "metadata not base64", args: []string{"encode"}, stdin: `{"payloads":[{},{"metadata":{"encoding":"%%"}}]}`, wantCode: 1, wantErr: `payloads[1].metadata["encoding"] is not base64`},
		{name: "unknown key", args: []string{"decode"}, stdin: `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-key-id":"azk="},"data":"AAAA"}]}`, wantCode: 1, wantErr: `unknown encryption key id "k9"`},
		{name: "namespace without entry uses *", args: []string{"encode", "--namespace", "x"}, stdin: `{"payloads":[{}]}`, wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRing(t)
			if tt.noRing {
				t.Setenv("CODEC_KEYRING", "")
			}
			code, stdout, stderr := runCLI(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
			if tt.wantCode == 1 {
				if strings.Count(stderr, "\n") != 1 || stdout != "" {
					t.Errorf("want exactly one line on stderr and nothing on stdout; got %q / %q", stderr, stdout)
				}
				if strings.Contains(stderr, "secret words") {
					t.Errorf("stderr echoes the input: %q", stderr)
				}
			}
		})
	}
}
