package codec

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// TestNoKeyMaterialInText formats keys and rings with every verb and collects the messages of
// every error path, including operator mistakes that put a key where an id belongs, and checks
// that no form of any key appears.
func TestNoKeyMaterialInText(t *testing.T) {
	ids := []string{"k1", "k2"}
	ring := mustRing(t, map[string]string{"*": "k1"}, ids...)
	k1, _ := ring.Key("k1")
	type holder struct {
		Ring    *KeyRing
		ring    KeyRing
		Key     Key
		private Key
	}
	h := holder{Ring: ring, ring: *ring, Key: k1, private: k1}

	var texts []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		texts = append(texts,
			fmt.Sprintf(verb, ring), fmt.Sprintf(verb, *ring),
			fmt.Sprintf(verb, k1), fmt.Sprintf(verb, &k1),
			fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h),
			fmt.Sprintf(verb, []Key{k1}), fmt.Sprintf(verb, map[string]Key{"a": k1}),
		)
	}
	texts = append(texts, fmt.Sprint(ring, k1), fmt.Sprintln(h))

	material := testMaterial("k1")
	b64 := testKeyB64("k1")
	hexKey := fmt.Sprintf("%x", material)
	short := b64[:20]
	misuse := map[string]string{
		"ids and values swapped":  `{"keys":{"` + strings.TrimRight(b64, "=") + `":"k1"}}`,
		"padded swapped":          `{"keys":{"` + b64 + `":"k1"}}`,
		"hex key as id":           `{"keys":{"` + hexKey + `":"k1"}}`,
		"key in active":           `{"keys":{"k1":"` + b64 + `"},"active":{"*":"` + strings.TrimRight(b64, "=") + `"}}`,
		"key as namespace":        `{"keys":{"k1":"` + b64 + `"},"active":{"` + b64 + `":"nope"}}`,
		"syntax error in key":     `{"keys":{"k1":"` + b64 + `"` + b64 + `}}`,
		"bad char in key":         `{"keys":{"k1":"` + b64[:10] + "!" + b64[11:] + `"}}`,
		"short key":               `{"keys":{"k1":"` + short + `"}}`,
		"long key":                `{"keys":{"k1":"` + b64 + b64 + `"}}`,
		"key not string":          `{"keys":{"k1":["` + b64 + `"]}}`,
		"unknown field with key":  `{"keys":{"k1":"` + b64 + `"},"x":"` + b64 + `"}`,
		"trailing key":            `{"keys":{"k1":"` + b64 + `"}}` + b64,
		"key as the whole doc":    b64,
		"quoted key as whole doc": `"` + b64 + `"`,
	}
	for name, doc := range misuse {
		_, err := ParseKeyRing([]byte(doc))
		if err == nil && !strings.HasPrefix(name, "key as namespace") {
			t.Errorf("%s: ParseKeyRing succeeded", name)
		}
		if err != nil {
			texts = append(texts, name+": "+err.Error())
		}
	}

	// Directory and environment sources.
	dir := t.TempDir()
	urlKey := base64.RawURLEncoding.EncodeToString(material)
	writeFiles(t, dir, map[string]string{
		urlKey + ".key": "k1",
		"k1.key":        b64 + "!",
		"active":        b64 + "\n",
	})
	if _, err := (DirKeySource{Dir: dir}).Load(context.Background()); err != nil {
		texts = append(texts, err.Error())
	}
	os.Remove(filepath.Join(dir, urlKey+".key"))
	os.WriteFile(filepath.Join(dir, "k1.key"), []byte(b64), 0o600)
	if _, err := (DirKeySource{Dir: dir}).Load(context.Background()); err != nil {
		texts = append(texts, err.Error())
	} else {
		t.Error("active file holding a key was accepted")
	}
	t.Setenv(EnvKeyRing, misuse["ids and values swapped"])
	if _, err := (EnvKeySource{}).Load(context.Background()); err != nil {
		texts = append(texts, err.Error())
	}

	// Codec errors with a payload naming a key as its id.
	c := mustCodec(t, ring, "nowhere-without-default")
	for _, p := range []*commonpb.Payload{
		{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(b64)}, Data: make([]byte, 40)},
		{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("k1")}, Data: make([]byte, 40)},
		{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("k1")}, Data: make([]byte, 4)},
	} {
		if _, err := c.Decode([]*commonpb.Payload{p}); err != nil {
			texts = append(texts, err.Error())
		}
	}

	for _, id := range ids {
		for _, form := range materialForms(testMaterial(id)) {
			for _, text := range texts {
				if strings.Contains(text, form) {
					t.Errorf("key %s leaked (as %.12q...) in %q", id, form, text)
				}
			}
		}
	}
	// Prefixes catch truncated echoes too.
	for _, text := range texts {
		if strings.Contains(text, b64[:16]) || strings.Contains(text, hexKey[:16]) {
			t.Errorf("key prefix leaked in %q", text)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, text := range texts {
			t.Log(text)
		}
	}
}
