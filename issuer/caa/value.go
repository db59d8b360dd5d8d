package caa

import (
	"fmt"
	"slices"
	"strings"
)

// Value is a parsed issue or issuewild property value (RFC 8659 §4.2):
// an issuer domain name, empty when the record forbids every CA, and its
// parameters.
type Value struct {
	Issuer string
	Params map[string]string
}

// ParseValue parses an issue or issuewild value. A malformed value is an
// error; RFC 8659 §4.2 has it treated as forbidding issuance.
func ParseValue(s string) (Value, error) {
	v := Value{Params: map[string]string{}}
	head, params, hasParams := strings.Cut(s, ";")
	v.Issuer = strings.Trim(head, " \t")
	if v.Issuer != "" && !isIssuerName(v.Issuer) {
		return Value{}, fmt.Errorf("its issuer domain name %q is malformed", clip(v.Issuer))
	}
	if !hasParams {
		return v, nil
	}
	for p := range strings.SplitSeq(params, ";") {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		tag, val, ok := strings.Cut(p, "=")
		tag, val = strings.Trim(tag, " \t"), strings.Trim(val, " \t")
		if !ok || !isLabel(tag) || !isParamValue(val) {
			return Value{}, fmt.Errorf("its parameter %q is malformed", clip(p))
		}
		v.Params[strings.ToLower(tag)] = val
	}
	return v, nil
}

// isIssuerName: label *("." label).
func isIssuerName(s string) bool {
	for l := range strings.SplitSeq(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

// isLabel: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)).
func isLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isParamValue: *(%x21-3A / %x3C-7E).
func isParamValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func sortedIDs(ids map[string]bool) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// MethodLabel names a Trustline validation method in RFC 8657's
// validationmethods vocabulary: the ACME challenge methods as their
// challenge types (acme-dns-01 is dns-01), and the methods of Trustline's
// own API as CA-specific labels ("ca-" prefix): ca-email, ca-dns-txt,
// ca-http-token, ca-whois-email.
func MethodLabel(method string) string {
	switch t := strings.TrimPrefix(method, "acme-"); t {
	case "dns-01", "http-01", "tls-alpn-01":
		return t
	}
	return "ca-" + method
}
