package index

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestAnalyzerTerms(t *testing.T) {
	plain := MustNewAnalyzer(AnalyzerConfig{Stemmer: StemmerNone})
	def := MustNewAnalyzer(AnalyzerConfig{})
	extended := MustNewAnalyzer(AnalyzerConfig{StopWords: StopWordsExtended, Stemmer: StemmerNone})
	tests := []struct {
		name string
		a    *Analyzer
		in   string
		want []string
	}{
		{"empty", plain, "", nil},
		{"only separators", plain, "  ,.;!? \t\n", nil},
		{"lucene stop words only", plain, "to be or not to be", nil},
		{"lower-cases", plain, "Refund POLICY", []string{"refund", "policy"}},
		{"drops lucene stop words", plain, "the refund is on the way", []string{"refund", "way"}},
		{"extended list keeps negations", extended, "refund not received", []string{"refund", "not", "received"}},
		{"extended list drops more", extended, "how long do refunds take", []string{"long", "refunds", "take"}},
		{"splits on punctuation", plain, "e-mail: support@northwind.example", []string{"e", "mail", "support", "northwind.example"}},
		{"decimal numbers stay whole", plain, "p<0.05 and 10,000 cells; 3.", []string{"p", "0.05", "10,000", "cells", "3"}},
		{"abbreviations stay whole", plain, "e.g. U.S. law", []string{"e.g", "u.s", "law"}},
		{"letters and digits join", plain, "covid19 IL-6", []string{"covid19", "il", "6"}},
		{"possessive and contractions", plain, "customer's order didn't ship", []string{"customer", "order", "didnt", "ship"}},
		{"curly apostrophe", plain, "customer\u2019s", []string{"customer"}},
		{"accented letters", plain, "Rückerstattung für Bestellung", []string{"rückerstattung", "für", "bestellung"}},
		{"combining mark joins precomposed form", plain, "cafe\u0301 CAF\u00c9", []string{"caf\u00e9", "caf\u00e9"}},
		{"full-width letters", plain, "ＲＥＦＵＮＤ", []string{"refund"}},
		{"ligature", plain, "\ufb01le", []string{"file"}},
		{"greek", plain, "ΕΠΙΣΤΡΟΦΉ χρημάτων", []string{"επιστροφή", "χρημάτων"}},
		{"han ideographs are words of their own", plain, "退款政策 refund", []string{"退", "款", "政", "策", "refund"}},
		{"emoji separates", plain, "refund🙂policy", []string{"refund", "policy"}},
		{"invalid utf-8 separates", plain, "refund\xffpolicy", []string{"refund", "policy"}},
		{"porter2 stems", def, "Refunds were refunded, refunding", []string{"refund", "were", "refund", "refund"}},
		{"porter2 conflates inflections", def, "connections connected connecting", []string{"connect", "connect", "connect"}},
		{"non-ascii words are not stemmed", def, "Bestellungen running", []string{"bestellungen", "run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Terms(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Terms(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewAnalyzerRejectsUnknownSettings(t *testing.T) {
	for _, cfg := range []AnalyzerConfig{{StopWords: "french"}, {Stemmer: "lovins"}} {
		if _, err := NewAnalyzer(cfg); err == nil {
			t.Errorf("NewAnalyzer(%+v) succeeded", cfg)
		}
	}
	if got := MustNewAnalyzer(AnalyzerConfig{}).Config(); got != (AnalyzerConfig{StopWords: StopWordsLucene, Stemmer: StemmerPorter2}) {
		t.Errorf("default config = %+v", got)
	}
}

func TestStopWordsAreLowerCaseTerms(t *testing.T) {
	for _, list := range []map[string]struct{}{luceneStopWords, extendedStopWords} {
		for w := range list {
			if got := MustNewAnalyzer(AnalyzerConfig{StopWords: StopWordsExtended}).Terms(strings.ToUpper(w)); len(list) == len(extendedStopWords) && got != nil {
				t.Errorf("stop word %q survives as %q", w, got)
			}
			if got := MustNewAnalyzer(AnalyzerConfig{}).Terms(strings.ToUpper(w)); len(list) == len(luceneStopWords) && got != nil {
				t.Errorf("stop word %q survives as %q", w, got)
			}
		}
	}
	if len(luceneStopWords) != 33 {
		t.Errorf("Lucene's list has 33 words, this one %d", len(luceneStopWords))
	}
}

func FuzzAnalyzer(f *testing.F) {
	for _, s := range []string{
		"",
		"how long do refunds take",
		"Rückerstattung für Bestellung",
		"cafe\u0301 CAF\u00c9",
		"ＲＥＦＵＮＤ \ufb01le",
		"\xff\xfe invalid",
		"İstanbul ǅ ϴ ẞ",
		"退款政策🙂",
		"e.g. 2.5, 10,000 don't 's '' .. ,,",
		"a'\u2019b 1.a a.1",
	} {
		f.Add(s)
	}
	analyzers := []*Analyzer{
		MustNewAnalyzer(AnalyzerConfig{}),
		MustNewAnalyzer(AnalyzerConfig{StopWords: StopWordsExtended, Stemmer: StemmerNone}),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range analyzers {
			terms := a.Terms(s)
			for _, term := range terms {
				if term == "" {
					t.Fatalf("Terms(%q) returned an empty term", s)
				}
				if !utf8.ValidString(term) {
					t.Fatalf("Terms(%q) returned invalid UTF-8 %q", s, term)
				}
				for _, r := range term {
					if !isWordRune(r) && r != '.' && r != ',' {
						t.Fatalf("Terms(%q) returned %q containing separator %U", s, term, r)
					}
					if unicode.IsUpper(r) {
						t.Fatalf("Terms(%q) returned %q containing upper-case %U", s, term, r)
					}
				}
				// Stop words are dropped before stemming, as in Lucene, so
				// a stem may equal one ("ats" -> "at"); unstemmed terms may not.
				if _, stop := a.stop[term]; stop && !a.stem {
					t.Fatalf("Terms(%q) returned stop word %q", s, term)
				}
			}
			// Analysis is a function of the text: the same input always
			// gives the same terms, cached stems or not.
			if again := a.Terms(s); !slices.Equal(again, terms) {
				t.Fatalf("Terms(%q) = %q, then %q", s, terms, again)
			}
			// Indexing numbers terms through a batch vocabulary; it must
			// see exactly the terms a query sees, also on a second pass
			// that finds every word already known.
			v := newBatchVocab()
			for pass := range 2 {
				var viaIDs []string
				for _, id := range a.appendTermIDs(nil, s, v) {
					viaIDs = append(viaIDs, v.terms[id])
				}
				if !slices.Equal(viaIDs, terms) {
					t.Fatalf("pass %d: appendTermIDs(%q) gives %q, Terms %q", pass, s, viaIDs, terms)
				}
			}
		}
	})
}
