package index

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Tokenize splits s into lower-case search terms.
//
// The text is first normalised to NFKC so that visually identical input
// matches regardless of how it was encoded (precomposed "é" versus "e" plus a
// combining accent, full-width letters, ligatures such as "ﬁ"). Terms are then
// the maximal runs of letters, digits and combining marks; everything else
// separates them. English stop words are dropped because they occur in almost
// every document and only add noise to BM25 scores.
//
// Tokenize never returns empty terms. It returns nil when s holds no terms, for
// example when a query consists only of stop words.
func Tokenize(s string) []string {
	var terms []string
	var b strings.Builder
	flush := func() {
		if b.Len() == 0 {
			return
		}
		term := b.String()
		b.Reset()
		if _, stop := stopWords[term]; !stop {
			terms = append(terms, term)
		}
	}
	// Ranging over a string decodes invalid UTF-8 as U+FFFD, which is not a
	// letter, so malformed input only ever acts as a separator.
	for _, r := range norm.NFKC.String(s) {
		if !isTermRune(r) {
			flush()
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	flush()
	return terms
}

func isTermRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// stopWords is a conventional English stop-word list (close to the NLTK and
// Snowball lists), plus the fragments "s" and "t" that splitting on
// apostrophes leaves behind ("customer's", "don't"). Negations such as "not" and "no" are deliberately absent:
// in support questions ("refund not received") they carry meaning.
var stopWords = func() map[string]struct{} {
	words := strings.Fields(`
		a about above after again against all am an and any are as at
		be because been before being below between both but by
		can could did do does doing down during each few for from further
		had has have having he her here hers herself him himself his how
		i if in into is it its itself just me more most my myself
		of off on once only or other our ours ourselves out over own
		same she should so some such than that the their theirs them themselves
		then there these they this those through to too under until up
		very was we were what when where which while who whom why will with would
		you your yours yourself yourselves
		s t
	`)
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return m
}()
