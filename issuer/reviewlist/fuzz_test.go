package reviewlist_test

import (
	"path"
	"strings"
	"testing"

	"github.com/trustline/trustline/issuer/reviewlist"
)

// FuzzMatch: Validate and Match never panic; a valid pattern is one
// path.Match accepts; a valid pattern without wildcards matches the name
// it spells; and Match finds everything path.Match finds on the
// lower-cased name, so the look-alike forms only ever add matches.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*bank*", "xn--mybnk-6ve.com"},
		{"*paypal*", "xn--l-7sba6dbr.com"},
		{"*paypal*[", "paypal.com"},
		{"p?y[a-z]al.com", "*.xn--pypal-rqa.com"},
		{"*[^0-9]*", "xn--99999999.com"},
		{"xn--.com", "XN--MYBANK-.COM"},
		{"*", "a/b\uff0f\u2044c"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := reviewlist.Match(pattern, name)
		if reviewlist.Validate(pattern) != nil {
			if got {
				t.Errorf("Match(%q, %q) = true for a refused pattern", pattern, name)
			}
			return
		}
		if _, err := path.Match(pattern, name); err != nil {
			t.Errorf("Validate accepted %q, which path.Match refuses: %v", pattern, err)
		}
		if !strings.ContainsAny(pattern, "*?[") && !reviewlist.Match(pattern, pattern) {
			t.Errorf("Match(%q, itself) = false", pattern)
		}
		if ok, _ := path.Match(pattern, lowerASCII(name)); ok && !got {
			t.Errorf("Match(%q, %q) = false, but path.Match matches", pattern, name)
		}
	})
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
