package issuer

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzNormalizeEmail: the address a sign-up, an admin or a sign-in link
// request types is untrusted. What NormalizeEmail accepts is the stored
// form, so it must be its own normal form (an account looked up by it
// finds the same row), one plain addr-spec with no white space or control
// characters, and lower-case in its domain.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", " Alice@Example.COM\t", "a@b", "Alice <alice@example.com>", `"a b"@example.com`,
		`"a@b"@example.com`, "a@b@example.com", "a(comment)@example.com", "a@[192.0.2.1]", "a@[ 192.0.2.1 ]",
		"a@example.com.", "a@.example.com", "", "@", "a@", "@example.com", "a\x00@example.com", "a@exa\xffmple.com",
		"ÄLICE@EXAMPLE.COM", "a@ÉXAMPLE.com", "\u212a@example.com", "İ@example.com",
		// 212 bytes, 312 once lowercased: accepted, then refused as stored (#13).
		strings.Repeat("Ⱥ", 100) + "@example.com",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189) + ".com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeEmail(in)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a plain email address") {
				t.Fatalf("NormalizeEmail(%q): error %q does not say what is wrong", in, err)
			}
			return
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail(%q) = %q, %v: not idempotent", in, out, out, again, err)
		}
		if len(out) > 254 || !utf8.ValidString(out) {
			t.Fatalf("NormalizeEmail(%q) = %q: %d bytes or invalid UTF-8", in, out, len(out))
		}
		if strings.Count(out, "@") != 1 {
			t.Fatalf("NormalizeEmail(%q) = %q: want exactly one @", in, out)
		}
		if i := strings.IndexFunc(out, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
			t.Fatalf("NormalizeEmail(%q) = %q: white space or a control character at %d", in, out, i)
		}
		local, domain, _ := strings.Cut(out, "@")
		if local == "" || domain == "" || domain != strings.ToLower(domain) {
			t.Fatalf("NormalizeEmail(%q) = %q: empty part or domain not lower-case", in, out)
		}
	})
}

// TestTruncateKeepsCharacters: a long input quoted in an error is cut on a
// character boundary, never inside a multi-byte one.
func TestTruncateKeepsCharacters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé" + "xyz", 2, "a…"}, // é is two bytes: the cut falls inside it
		{"a€" + "xyz", 3, "a…"}, // € is three bytes
		{"€€", 4, "€…"},
		{"\xff\xffabc", 1, "\xff…"}, // invalid bytes are each their own start
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if utf8.ValidString(tc.in) && !utf8.ValidString(truncate(tc.in, tc.n)) {
			t.Errorf("truncate(%q, %d) cuts a character", tc.in, tc.n)
		}
	}
}
