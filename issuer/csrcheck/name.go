package csrcheck

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// maxNameLen is the longest name in presentation form without the trailing
// dot: 255 octets on the wire (RFC 1035 §2.3.4) less the length octets.
const maxNameLen = 253

// CheckName reports whether name, which must already be lowercase, may
// appear in a certificate as a dNSName (BR §7.1.2.7.12): a fully qualified
// domain name of at least two labels and at most 253 characters, without a
// trailing dot; each label 1–63 characters of a-z, 0-9 and '-', not
// starting or ending with '-'; labels with "--" in positions 3–4 only as
// IDNA A-labels ("xn--") that round-trip through the UTS #46 lookup
// profile; no IP address; no all-numeric top-level domain; and a public
// DNS name, as below. A wildcard ("*.example.com") is allowed as the whole
// leftmost label.
//
// Public names are judged by the ICANN section of the Public Suffix List
// only, as BR §3.2.2.6 recommends: the name must end in an ICANN suffix
// (so ".local", ".internal", ".corp", ".lan", "localhost" and every other
// unlisted top-level domain are internal names and refused), must not be
// an ICANN public suffix itself ("com", "co.uk"), and a wildcard must not
// sit directly on one ("*.co.uk"). Suffixes in the PSL's private section
// ("github.io") count as ordinary registered domains: their owner may hold
// "github.io" and "*.github.io" once domain control is shown. ".onion" and
// ".arpa" are refused as special-use (BR Appendix B, RFC 3172).
//
// A refusal is an *Error of Kind BadName.
func CheckName(name string) error {
	if why := nameProblem(name); why != "" {
		return refuse(BadName, "name %s %s", snippet(name, maxNameSnippet), why)
	}
	return nil
}

// isWildcard reports whether a name that passed CheckName is a wildcard.
func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// nameProblem returns why name is refused, phrased to follow the quoted
// name in a message, or "" when it is acceptable.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is %d characters long; at most %d are allowed", len(name), maxNameLen)
	case isIPAddress(name):
		return "is an IP address; only DNS names are accepted"
	case strings.HasSuffix(name, "."):
		return "ends with a dot; send the name without the trailing dot"
	case strings.ContainsFunc(name, func(r rune) bool { return 'A' <= r && r <= 'Z' }):
		return "contains uppercase letters; names must be lowercase"
	}

	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return "is a single label; a fully qualified domain name is required"
	}
	base := name // the name without its wildcard label
	if labels[0] == "*" {
		base = name[len("*."):]
	}
	for i, l := range labels {
		if i == 0 && l == "*" {
			continue
		}
		if why := labelProblem(l); why != "" {
			return why
		}
	}

	tld := labels[len(labels)-1]
	switch {
	case strings.Trim(tld, "0123456789") == "":
		return "has an all-numeric top-level domain"
	case tld == "onion":
		return "is a Tor onion name, which this CA does not validate (BR Appendix B)"
	case tld == "arpa":
		return "is under .arpa, which is reserved for infrastructure (RFC 3172)"
	}
	suffix, icann := icannSuffix(base)
	switch {
	case !icann:
		return fmt.Sprintf("is an internal name: %s is not a top-level domain in the ICANN section of the Public Suffix List", snippet(suffix, maxNameSnippet))
	case base == suffix && base != name:
		return fmt.Sprintf("is a wildcard directly under the public suffix %s (BR §3.2.2.6)", snippet(suffix, maxNameSnippet))
	case base == suffix:
		return "is a public suffix; certificates are issued for names registered under it"
	}
	return ""
}

// labelProblem returns why one label (not a wildcard) is refused, or "".
func labelProblem(l string) string {
	switch {
	case l == "":
		return "has an empty label"
	case len(l) > 63:
		return fmt.Sprintf("has a label of %d characters; at most 63 are allowed", len(l))
	case strings.Contains(l, "*"):
		return "has '*' inside it; a wildcard must be the whole leftmost label, as in *.example.com"
	}
	for i := range len(l) {
		c := l[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case c >= 0x80:
			return "contains non-ASCII characters; use the IDNA A-label form (xn--…)"
		default:
			return fmt.Sprintf("contains %q; labels may hold only a-z, 0-9 and '-'", string(c))
		}
	}
	switch {
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Sprintf("has label %s starting or ending with '-'", snippet(l, 63))
	case len(l) >= 4 && l[2:4] == "--" && !strings.HasPrefix(l, "xn--"):
		return fmt.Sprintf("has label %s with \"--\" in positions 3–4, which is reserved (RFC 5891 §4.2.3.1)", snippet(l, 63))
	case strings.HasPrefix(l, "xn--") && !validALabel(l):
		return fmt.Sprintf("has label %s, which is not a valid IDNA A-label", snippet(l, 63))
	}
	return ""
}

// validALabel reports whether an "xn--" label decodes to Unicode that the
// UTS #46 lookup profile accepts and that encodes back to the same label,
// which refuses bad Punycode, ASCII-only payloads and unnormalised forms.
func validALabel(l string) bool {
	u, err := idna.Lookup.ToUnicode(l)
	if err != nil {
		return false
	}
	a, err := idna.Lookup.ToASCII(u)
	return err == nil && a == l
}

func isIPAddress(name string) bool {
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"))
	return err == nil
}

// icannSuffix returns the public suffix of name by the PSL's ICANN section
// alone, and whether there is one. publicsuffix.PublicSuffix answers with
// the longest rule from either section, so a private-section answer is
// stripped of its leftmost label and looked up again.
func icannSuffix(name string) (string, bool) {
	for {
		suffix, icann := publicsuffix.PublicSuffix(name)
		if icann {
			return suffix, true
		}
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			return suffix, false // an unlisted top-level domain
		}
		name = suffix[i+1:]
	}
}
