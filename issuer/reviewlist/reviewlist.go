// Package reviewlist checks and matches Manual Review List patterns: the
// shell-style patterns (path.Match syntax: *, ? and [...]) over DNS names
// that an administrator lists so that DV orders for names such as
// "*bank*" go to human review (BR §4.2.1 high-risk requests).
//
// A name matches a pattern when the pattern matches any of three forms of
// the name:
//
//   - the name in ASCII with its IDNA A-labels (xn--…), lower-cased;
//   - its Unicode form, each A-label decoded as raw Punycode (RFC 3492); a
//     label that does not decode stays in ASCII;
//   - the confusable skeleton of the Unicode form, as Unicode Technical
//     Standard #39 (UTS #39, TR39: Unicode Security Mechanisms,
//     §4) defines it, after NFKC and lower-casing and without combining
//     marks, compared with the skeleton of the pattern's literal parts, so
//     that "*bank*" catches "mybаnk.com" with a Cyrillic а and "*paypal*"
//     catches "раураl". The confusables data is that of
//     go.mau.fi/util/confusable (Unicode 17).
//
// Patterns are lower-case ASCII (Validate); look-alikes in other scripts
// are caught by the skeleton and need not be listed one by one.
//
// Imported by issuer, whose Orders screen an order's names against the
// list read from the store, and by issuer/api, which validates a pattern
// before storing it. It imports no Trustline package.
package reviewlist

import (
	"fmt"
	"path"
	"strings"
	"unicode"

	"go.mau.fi/util/confusable"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// MaxLen is the longest pattern accepted, in characters: the longest DNS
// name in presentation form (RFC 1035 §2.3.4), so that a literal pattern
// can name any name. Names longer than that are matched in ASCII only.
const MaxLen = 253

// Match reports whether name matches pattern in one of the forms the
// package comment lists. A pattern that fails Validate matches nothing.
func Match(pattern, name string) bool {
	l, _ := NewList([]string{pattern})
	return l.Match([]string{name}) != ""
}

// List is a compiled Manual Review List: each valid pattern with its
// skeleton. It is cheap to build, so callers build one each time they
// read the list rather than keep one that could go stale.
type List struct {
	entries []entry
}

type entry struct {
	pattern  string // matched against a name's ASCII and Unicode forms
	skeleton string // matched against the name's skeleton
}

// NewList compiles patterns, keeping their order. Patterns that fail
// Validate are left out and reported together in the error; the List
// holds the others and is usable whatever the error.
func NewList(patterns []string) (*List, error) {
	l := &List{entries: make([]entry, 0, len(patterns))}
	var bad []string
	for _, p := range patterns {
		if err := Validate(p); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		l.entries = append(l.entries, entry{pattern: p, skeleton: patternSkeleton(p)})
	}
	if len(bad) > 0 {
		return l, fmt.Errorf("reviewlist: %d of %d patterns ignored: %s", len(bad), len(patterns), strings.Join(bad, "; "))
	}
	return l, nil
}

// Match returns the first pattern, in list order, that one of names
// matches, or "".
func (l *List) Match(names []string) string {
	if len(l.entries) == 0 {
		return ""
	}
	forms := make([][3]string, len(names))
	for i, n := range names {
		forms[i] = formsOf(n)
	}
	for _, e := range l.entries {
		for _, f := range forms {
			// Patterns are valid, so path.Match returns no error.
			if ok, _ := path.Match(e.pattern, f[0]); ok {
				return e.pattern
			}
			if ok, _ := path.Match(e.pattern, f[1]); ok {
				return e.pattern
			}
			if ok, _ := path.Match(e.skeleton, f[2]); ok {
				return e.pattern
			}
		}
	}
	return ""
}

// formsOf returns a name's ASCII form (lower-cased), Unicode form and
// skeleton. A '/' in any of them becomes U+FFFD: no pattern holds a '/',
// and path.Match's * and ? would otherwise refuse to cross it, letting a
// look-alike of '/' (U+2044 FRACTION SLASH folds to it) hide a name.
//
// A name longer than the longest DNS name is matched in ASCII only:
// NFKC takes time quadratic in a long run of some characters, and such a
// name is refused before it is screened anyway (csrcheck).
func formsOf(name string) [3]string {
	ascii := noSlash(asciiLower(name))
	if len(name) > MaxLen {
		return [3]string{ascii, ascii, ascii}
	}
	labels := strings.Split(ascii, ".")
	for i, l := range labels {
		if !strings.HasPrefix(l, "xn--") {
			continue
		}
		// Raw Punycode, without IDNA's validity rules: what matters is
		// what the label shows, valid or not.
		if u, err := idna.Punycode.ToUnicode(l); err == nil && u != "" {
			labels[i] = u
		}
	}
	uni := strings.Join(labels, ".")
	return [3]string{ascii, noSlash(uni), noSlash(fold(uni))}
}

// fold is the skeleton both names and a pattern's literal parts are
// compared in: NFKC and lower case first (fullwidth, circled and
// superscript letters become plain ones, and DNS names are
// case-insensitive), then the TR39 skeleton, then without combining marks
// (so pàypal also matches *paypal*: a false alarm costs a reviewer a
// look, a miss a certificate for a phishing name), lower-cased again as
// the skeleton's prototypes include capitals ("0" becomes "O").
func fold(s string) string {
	s = confusable.Skeleton(strings.ToLower(norm.NFKC.String(s)))
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
	return strings.ToLower(s)
}

// patternSkeleton folds the literal runs of a valid pattern, keeping its
// wildcards and character classes as they are. A class is not folded: in
// the skeleton comparison [a-z] still means one letter, and a name's
// digits 0 and 1 have become o and l.
func patternSkeleton(p string) string {
	var b, lit strings.Builder
	flush := func() {
		for _, r := range fold(lit.String()) {
			if strings.ContainsRune(`*?[\`, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		lit.Reset()
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*', '?':
			flush()
			b.WriteByte(c)
		case '[':
			flush()
			end := i + strings.IndexByte(p[i:], ']')
			b.WriteString(p[i : end+1])
			i = end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return noSlash(b.String())
}

func noSlash(s string) string { return strings.ReplaceAll(s, "/", "\uFFFD") }

// asciiLower lower-cases A–Z and leaves every other byte alone, invalid
// UTF-8 included, so that ? matches as many runes as before.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
