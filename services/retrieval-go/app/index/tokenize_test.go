package index

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only separators", "  ,.;!? \t\n", nil},
		{"only stop words", "How do I do it?", nil},
		{"lower-cases", "Refund POLICY", []string{"refund", "policy"}},
		{"drops stop words", "how long do refunds take", []string{"long", "refunds", "take"}},
		{"keeps negations", "refund not received", []string{"refund", "not", "received"}},
		{"splits on punctuation", "e-mail: support@northwind.example", []string{"e", "mail", "support", "northwind", "example"}},
		{"keeps digits", "within 5 business-days, 100EUR", []string{"within", "5", "business", "days", "100eur"}},
		{"apostrophes", "customer's order didn't ship", []string{"customer", "order", "didn", "ship"}},
		{"accented letters", "Rückerstattung für Bestellung", []string{"rückerstattung", "für", "bestellung"}},
		{"combining mark joins precomposed form", "cafe\u0301 CAF\u00c9", []string{"caf\u00e9", "caf\u00e9"}},
		{"full-width letters", "ＲＥＦＵＮＤ", []string{"refund"}},
		{"ligature", "\ufb01le", []string{"file"}},
		{"greek", "ΕΠΙΣΤΡΟΦΉ χρημάτων", []string{"επιστροφή", "χρημάτων"}},
		{"cyrillic", "Возврат денег", []string{"возврат", "денег"}},
		{"cjk runs stay whole", "退款政策 refund", []string{"退款政策", "refund"}},
		{"emoji separates", "refund🙂policy", []string{"refund", "policy"}},
		{"invalid utf-8 separates", "refund\xffpolicy", []string{"refund", "policy"}},
		{"non-ascii digits", "٣ days", []string{"٣", "days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tokenize(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStopWordsAreLowerCaseTerms(t *testing.T) {
	for w := range stopWords {
		if got := Tokenize(strings.ToUpper(w)); got != nil {
			t.Errorf("stop word %q survives tokenising as %q", w, got)
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"",
		"how long do refunds take",
		"Rückerstattung für Bestellung",
		"cafe\u0301 CAF\u00c9",
		"ＲＥＦＵＮＤ \ufb01le",
		"\xff\xfe invalid",
		"İstanbul ǅ ϴ ẞ",
		"退款政策🙂",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, term := range Tokenize(s) {
			if term == "" {
				t.Fatalf("Tokenize(%q) returned an empty term", s)
			}
			if !utf8.ValidString(term) {
				t.Fatalf("Tokenize(%q) returned invalid UTF-8 %q", s, term)
			}
			if strings.ToLower(term) != term {
				t.Fatalf("Tokenize(%q) returned %q, which is not lower-case", s, term)
			}
			for _, r := range term {
				if !isTermRune(r) {
					t.Fatalf("Tokenize(%q) returned %q containing separator %U", s, term, r)
				}
				if unicode.IsUpper(r) {
					t.Fatalf("Tokenize(%q) returned %q containing upper-case %U", s, term, r)
				}
			}
			if _, stop := stopWords[term]; stop {
				t.Fatalf("Tokenize(%q) returned stop word %q", s, term)
			}
		}
	})
}
