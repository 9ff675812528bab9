package index

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
	"golang.org/x/text/unicode/norm"
)

// Stop-word lists an Analyzer can drop.
const (
	// StopWordsLucene is Lucene's EnglishAnalyzer list (33 words), the one
	// Anserini's BEIR baselines use. It is the default.
	StopWordsLucene = "lucene"
	// StopWordsExtended is a longer conventional list (close to NLTK's)
	// that keeps the negations "no" and "not".
	StopWordsExtended = "extended"
	// StopWordsNone keeps every term.
	StopWordsNone = "none"
)

// Stemmers an Analyzer can apply.
const (
	// StemmerPorter2 is the Snowball English ("Porter2") stemmer, the
	// maintained successor of Porter's 1980 algorithm. It is the default.
	StemmerPorter2 = "porter2"
	// StemmerNone keeps words as they are.
	StemmerNone = "none"
)

// AnalyzerConfig selects how text becomes terms. The zero value means the
// defaults: Lucene stop words and Porter2 stemming.
type AnalyzerConfig struct {
	StopWords string `json:"stop_words"`
	Stemmer   string `json:"stemmer"`
}

func (c AnalyzerConfig) withDefaults() AnalyzerConfig {
	if c.StopWords == "" {
		c.StopWords = StopWordsLucene
	}
	if c.Stemmer == "" {
		c.Stemmer = StemmerPorter2
	}
	return c
}

// Analyzer turns text into search terms. It is safe for concurrent use.
//
// The text is normalised to NFKC so that visually identical input matches
// however it was encoded (precomposed "é" versus "e" plus a combining accent,
// full-width letters, ligatures), then split into words roughly as Unicode's
// word-boundary rules (UAX #29, what Lucene's StandardTokenizer implements)
// do: a word is a run of letters, digits and combining marks; an apostrophe
// or full stop between two letters ("don't", "e.g") and a full stop or comma
// between two digits ("2.5", "10,000") stay inside the word; every Han
// ideograph and Hiragana character is a word of its own, because those
// scripts do not separate words by spaces. Words are lower-cased, a trailing
// possessive "'s" is removed and remaining apostrophes are dropped (as
// Lucene's EnglishPossessiveFilter does, roughly), stop words are dropped,
// and words made only of the letters a-z are stemmed.
type Analyzer struct {
	cfg  AnalyzerConfig
	stop map[string]struct{}
	stem bool

	// Stemming costs about a microsecond a word and a corpus repeats its
	// vocabulary endlessly, so stems are cached, up to a bound that keeps a
	// stream of made-up words from growing the cache without limit.
	mu    sync.RWMutex
	cache map[string]string
}

const maxStemCache = 1 << 20

// NewAnalyzer returns an analyzer for cfg.
func NewAnalyzer(cfg AnalyzerConfig) (*Analyzer, error) {
	cfg = cfg.withDefaults()
	a := &Analyzer{cfg: cfg, cache: make(map[string]string)}
	switch cfg.StopWords {
	case StopWordsLucene:
		a.stop = luceneStopWords
	case StopWordsExtended:
		a.stop = extendedStopWords
	case StopWordsNone:
		a.stop = map[string]struct{}{}
	default:
		return nil, fmt.Errorf("stop-word list %q is not one of %s, %s, %s", cfg.StopWords, StopWordsLucene, StopWordsExtended, StopWordsNone)
	}
	switch cfg.Stemmer {
	case StemmerPorter2:
		a.stem = true
	case StemmerNone:
	default:
		return nil, fmt.Errorf("stemmer %q is not one of %s, %s", cfg.Stemmer, StemmerPorter2, StemmerNone)
	}
	return a, nil
}

// MustNewAnalyzer is NewAnalyzer for configurations known to be valid.
func MustNewAnalyzer(cfg AnalyzerConfig) *Analyzer {
	a, err := NewAnalyzer(cfg)
	if err != nil {
		panic(err)
	}
	return a
}

// Config returns the analyzer's configuration with defaults filled in.
func (a *Analyzer) Config() AnalyzerConfig { return a.cfg }

// Terms returns the search terms of s in order, repeats included. It never
// returns empty terms, and returns nil when s holds none (for example when a
// query is made only of stop words).
func (a *Analyzer) Terms(s string) []string {
	return a.AppendTerms(nil, s)
}

// AppendTerms appends the terms of s to dst and returns the extended slice.
func (a *Analyzer) AppendTerms(dst []string, s string) []string {
	a.eachWord(s, func(w []byte) {
		if t := a.term(string(w)); t != "" {
			dst = append(dst, t)
		}
	})
	return dst
}

// batchVocab numbers the terms of one goroutine's batch of documents. A
// batch repeats its words endlessly, so each distinct word is analysed (stop
// words, stemming) once, and counting a document's terms indexes an array
// instead of hashing every occurrence into a per-document map. It needs no
// lock: the shared stem cache's read lock, taken for every word by
// goroutines analysing in parallel, made its reader count bounce between the
// cores.
type batchVocab struct {
	byWord map[string]int32 // lower-cased word -> local term id, or -1 when dropped
	byTerm map[string]int32 // term -> local term id (words can share a stem)
	terms  []string         // local term id -> term
	// global caches the ids of terms in owner, the collection the batch
	// was last applied to (collection.termID).
	owner  *collection
	global []int32
}

func newBatchVocab() *batchVocab {
	return &batchVocab{byWord: make(map[string]int32), byTerm: make(map[string]int32)}
}

// appendTermIDs appends the local ids of the terms of s to dst.
func (a *Analyzer) appendTermIDs(dst []int32, s string, v *batchVocab) []int32 {
	a.eachWord(s, func(w []byte) {
		id, ok := v.byWord[string(w)] // no allocation for a lookup
		if !ok {
			word := string(w)
			id = -1
			if t := a.term(word); t != "" {
				if id, ok = v.byTerm[t]; !ok {
					id = int32(len(v.terms))
					v.terms = append(v.terms, t)
					v.byTerm[t] = id
				}
			}
			v.byWord[word] = id
		}
		if id >= 0 {
			dst = append(dst, id)
		}
	})
	return dst
}

// eachWord splits s into lower-cased words (see Analyzer) and calls emit
// with each; the slice is reused after emit returns.
func (a *Analyzer) eachWord(s string, emit func(w []byte)) {
	// Invalid bytes are separators anyway, but left in place they stop NFKC
	// from normalising the letters after them ("\xf4ϔ" kept U+03D4, an
	// upper-case letter without a lower-case form): replace them first.
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
	}
	// NFKC is a no-op for most input; checking first avoids a copy.
	if !norm.NFKC.IsNormalString(s) {
		s = norm.NFKC.String(s)
	}
	var b []byte
	flush := func() {
		if len(b) > 0 {
			emit(b)
			b = b[:0]
		}
	}
	var prev rune = -1 // the previous rune written to b, or -1
	for i := 0; i < len(s); {
		// Invalid UTF-8 decodes as U+FFFD, a separator, one byte at a time.
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case isSingleCharWord(r):
			flush()
			b = utf8.AppendRune(b, r)
			flush()
			prev = -1
			continue
		case isWordRune(r):
			switch {
			case 'A' <= r && r <= 'Z':
				b = append(b, byte(r)+('a'-'A'))
			case r < utf8.RuneSelf:
				b = append(b, byte(r))
			default:
				b = utf8.AppendRune(b, unicode.ToLower(r))
			}
			prev = r
			continue
		}
		if prev >= 0 && isInfix(prev, r, s[i:]) {
			b = utf8.AppendRune(b, r)
			prev = -1
			continue
		}
		flush()
		prev = -1
	}
	flush()
}

// isInfix reports whether the separator r, between prev and the text rest,
// joins two parts of one word.
func isInfix(prev, r rune, rest string) bool {
	next, _ := utf8.DecodeRuneInString(rest)
	if next == utf8.RuneError || isSingleCharWord(next) {
		return false
	}
	switch r {
	case '\'', '\u2019', '.':
		if unicode.IsLetter(prev) && unicode.IsLetter(next) {
			return true
		}
		return r == '.' && unicode.IsDigit(prev) && unicode.IsDigit(next)
	case ',':
		return unicode.IsDigit(prev) && unicode.IsDigit(next)
	}
	return false
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// isSingleCharWord reports whether r is a Han ideograph or a Hiragana
// letter; the scripts also hold symbols (radicals, iteration marks), which
// separate like other punctuation.
func isSingleCharWord(r rune) bool {
	// Nothing below the CJK radicals (U+2E80) is Han or Hiragana; most text
	// never gets past this test.
	if r < 0x2E80 {
		return false
	}
	return (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r)) && unicode.IsLetter(r)
}

// term finishes a lower-cased word: possessive, apostrophes, stop words,
// stemming. It returns "" for a word to drop.
func (a *Analyzer) term(w string) string {
	if strings.ContainsAny(w, "'\u2019") {
		for _, suffix := range [...]string{"'s", "\u2019s"} {
			w = strings.TrimSuffix(w, suffix)
		}
		w = strings.NewReplacer("'", "", "\u2019", "").Replace(w)
		if w == "" {
			return ""
		}
	}
	if _, stop := a.stop[w]; stop {
		return ""
	}
	if !a.stem || !isASCIILetters(w) {
		return w
	}
	a.mu.RLock()
	s, ok := a.cache[w]
	a.mu.RUnlock()
	if ok {
		return s
	}
	s = english.Stem(w, true)
	if s == "" {
		s = w
	}
	a.mu.Lock()
	if len(a.cache) < maxStemCache {
		// Clone: w may share memory with a large document.
		a.cache[strings.Clone(w)] = s
	}
	a.mu.Unlock()
	return s
}

func isASCIILetters(w string) bool {
	for i := 0; i < len(w); i++ {
		if c := w[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func wordSet(words string) map[string]struct{} {
	m := make(map[string]struct{})
	for _, w := range strings.Fields(words) {
		m[w] = struct{}{}
	}
	return m
}

// luceneStopWords is EnglishAnalyzer.ENGLISH_STOP_WORDS_SET from Lucene.
var luceneStopWords = wordSet(`
	a an and are as at be but by for if in into is it no not of on or such
	that the their then there these they this to was will with`)

// extendedStopWords is close to the NLTK and Snowball lists. Negations such as
// "not" and "no" are deliberately absent: in support questions ("refund not
// received") they carry meaning.
var extendedStopWords = wordSet(`
	a about above after again against all am an and any are as at
	be because been before being below between both but by
	can could did do does doing down during each few for from further
	had has have having he her here hers herself him himself his how
	i if in into is it its itself just me more most my myself
	of off on once only or other our ours ourselves out over own
	same she should so some such than that the their theirs them themselves
	then there these they this those through to too under until up
	very was we were what when where which while who whom why will with would
	you your yours yourself yourselves`)
