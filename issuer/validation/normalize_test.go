package validation

import (
	"errors"
	"strings"
	"testing"

	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/fault"
)

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
		err      string // in the refusal
	}{
		{"example.com", "example.com", ""},
		{" Example.COM.\t", "example.com", ""},
		{"xn--bcher-kva.de", "xn--bcher-kva.de", ""},
		{"*.example.com", "", "wildcard"},
		{"example.com..", "", "ends with a dot"},
		{"\u212aelvin.example.com", "", "non-ASCII"}, // the Kelvin sign, which strings.ToLower makes "k"
		{"b\u00fccher.de", "", "non-ASCII"},
		{"localhost", "", "single label"},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q, an error with %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{
		"example.com", "Example.COM.", " www.example.com\t", "*.example.com", "xn--bcher-kva.example",
		"\u212aelvin.example.com", "example.com..", "", ".", "a..b.com", "localhost", "192.0.2.1",
		"ex ample.com", "www.example.co.uk.", "\u0130stanbul.example.com", "-a.example.com",
		strings.Repeat("a", 64) + ".com", "_pki-validation.example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		out, err := NormalizeDomain(d)
		if err != nil {
			var in *fault.InputError
			if out != "" || !errors.As(err, &in) {
				t.Fatalf("NormalizeDomain(%q) = %q, %v: want \"\" and a *fault.InputError", d, out, err)
			}
			return
		}
		if out == "" || out != strings.ToLower(out) || strings.HasSuffix(out, ".") {
			t.Fatalf("NormalizeDomain(%q) = %q", d, out)
		}
		// Normalising trims and lowercases ASCII, nothing else.
		trimmed := strings.TrimSuffix(strings.TrimSpace(d), ".")
		if len(out) != len(trimmed) {
			t.Fatalf("NormalizeDomain(%q) = %q: more than trimmed and lowercased", d, out)
		}
		for i := range len(out) {
			c := trimmed[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if out[i] >= 0x80 || out[i] != c {
				t.Fatalf("NormalizeDomain(%q) = %q: more than trimmed and lowercased", d, out)
			}
		}
		if again, err := NormalizeDomain(out); again != out || err != nil {
			t.Fatalf("NormalizeDomain(%q) = %q, but NormalizeDomain(%q) = %q, %v", d, out, out, again, err)
		}
		if err := csrcheck.CheckName(out); err != nil {
			t.Fatalf("NormalizeDomain(%q) = %q, which CheckName refuses: %v", d, out, err)
		}
	})
}
