package reviewlist_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/issuer/reviewlist"
)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name, pattern string
		bad           bool   // wraps path.ErrBadPattern
		want          string // in the message; "" for a good pattern
	}{
		{"substring", "*bank*", false, ""},
		{"literal", "paypal.com", false, ""},
		{"subdomains", "*.paypal.com", false, ""},
		{"question mark", "p?ypal*", false, ""},
		{"class", "*[0-9]bank*", false, ""},
		{"negated class", "*ban[^a-j]*", false, ""},
		{"everything", "*", false, ""},
		{"a-label", "*xn--80ak6aa92e*", false, ""},
		{"longest", strings.Repeat("a", reviewlist.MaxLen), false, ""},

		{"unclosed class", "*paypal*[", true, `the [ at position 9 has no closing ]`},
		{"unclosed range", "*pay[a-", true, "no closing ]"},
		{"empty class", "*pay[]*", true, "holds no characters"},
		{"empty negated class", "*pay[^]*", true, "holds no characters"},
		{"leading dash in class", "*[-a]*", true, "must stand between two characters"},
		{"trailing dash in class", "*[a-]*", true, "must stand between two characters"},
		{"backwards range", "*[z-a]*", true, "runs backwards and matches nothing; write a-z"},

		{"empty", "", false, "pattern is empty"},
		{"overlong", strings.Repeat("a", reviewlist.MaxLen+1), false, "254 characters long; at most 253"},
		{"upper case", "*PayPal*", false, `write "*paypal*"`},
		{"space", "*pay pal*", false, `has " " at position 5`},
		{"slash", "*bank/*", false, `has "/" at position 6`},
		{"backslash", `*bank\*`, false, `has "\\" at position 6`},
		{"underscore", "*_bank*", false, `has "_" at position 2`},
		{"stray bracket", "*bank]*", false, "] at position 6 with no [ before it"},
		{"star in class", "*[*]*", false, `"*" inside the [ at position 2`},
		{"non-ASCII", "*bаnk*", false, "non-ASCII character 'а' at position 3"},
		{"non-ASCII in class", "*[аb]*", false, "a non-ASCII character inside the [ at position 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := reviewlist.Validate(tt.pattern)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tt.pattern, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want an error saying %q", tt.pattern, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate(%q) = %q, want it to say %q", tt.pattern, err, tt.want)
			}
			if got := errors.Is(err, path.ErrBadPattern); got != tt.bad {
				t.Errorf("Validate(%q): errors.Is(err, path.ErrBadPattern) = %v, want %v", tt.pattern, got, tt.bad)
			}
			// A refused pattern matches nothing, not even itself.
			if reviewlist.Match(tt.pattern, tt.pattern) {
				t.Errorf("Match(%q, itself) = true for a refused pattern", tt.pattern)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		name, pattern, dnsName string
		want                   bool
	}{
		{"ascii", "*bank*", "www.mybank.com", true},
		{"ascii upper case", "*bank*", "WWW.MYBANK.COM", true},
		{"ascii literal", "paypal.com", "paypal.com", true},
		{"ascii other name", "*bank*", "example.com", false},
		{"ascii literal is not a substring", "paypal.com", "www.paypal.com", false},

		// mybаnk with a Cyrillic а (U+0430).
		{"cyrillic a in bank", "*bank*", "xn--mybnk-6ve.com", true},
		{"cyrillic a in bank, subdomain", "*bank*", "login.xn--mybnk-6ve.example", true},
		{"cyrillic a in bank, upper-case a-label", "*bank*", "XN--MYBNK-6VE.COM", true},
		{"cyrillic a in bank, wildcard name", "*bank*", "*.xn--mybnk-6ve.com", true},
		{"cyrillic a in bank, wildcard pattern", "*.xn--*", "*.xn--mybnk-6ve.com", true},
		{"cyrillic a in bank, literal pattern", "mybank.com", "xn--mybnk-6ve.com", true},
		// pаypаl with two Cyrillic а; раураl all Cyrillic but the l.
		{"cyrillic a in paypal", "*paypal*", "xn--pypl-53dc.com", true},
		{"cyrillic paypal", "*paypal*", "xn--l-7sba6dbr.com", true},
		{"cyrillic paypal-login", "*paypal*", "xn--l-login-1fga2nb9a.net", true},
		// ρaypal with a Greek ρ; ρаγρаl mixes Greek ρ, γ and Cyrillic а.
		{"greek rho paypal", "*paypal*", "xn--aypal-2ce.com", true},
		{"greek and cyrillic paypal", "*paypal*", "xn--l-2lb5bb76cc.com", true},
		// аррӏе, all Cyrillic.
		{"cyrillic apple", "*apple*", "xn--80ak6aa92e.com", true},
		{"accented paypal", "*paypal*", "xn--pypal-rqa.com", true},
		{"fullwidth bank, raw punycode", "*bank*", "xn--mi7cb2al.com", true},
		{"digit look-alikes", "*paypal*", "paypa1.com", true},
		{"zero for o", "*google*", "g00gle.com", true},
		{"rn for m", "*amazon*", "arnazon.com", true},
		{"unicode form", "*bücher*", "xn--bcher-kva.de", false}, // refused pattern
		{"unicode form, accent folded", "*bucher*", "xn--bcher-kva.de", true},
		// x⁄аmazon: U+2044 FRACTION SLASH, whose skeleton is '/', which
		// path.Match's * would not cross, and a Cyrillic а.
		{"slash look-alike", "*amazon*", "xn--xmazon-3nf7168c.com", true},
		{"question mark over a look-alike", "p?ypal.com", "xn--pypal-rqa.com", true},
		{"class over a look-alike", "p[a-c]ypal.com", "xn--pypal-rqa.com", true},

		{"different cyrillic name", "*paypal*", "xn--80ak6aa92e.com", false},
		{"different name", "*paypal*", "paypat.com", false},
		{"different cyrillic word", "*bank*", "xn--80ab2al.com", false}, // банк, Russian for bank, does not look like it
		{"accented bank", "*bank*", "xn--bnk-qla.com", true},            // bänk

		// A label that is not valid Punycode is matched in ASCII only.
		{"bad punycode, ascii match", "*bank*", "xn--bank-zzzzzzzz.com", true},
		{"bad punycode, no unicode form", "mybank.com", "xn--mybank-.com", false},
		{"bad punycode, digits", "*paypal*", "xn--99999999.com", false},
		{"empty punycode", "xn--.com", "xn--.com", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := reviewlist.Match(tt.pattern, tt.dnsName); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.dnsName, got, tt.want)
			}
		})
	}
}

func TestListFirstMatchInOrder(t *testing.T) {
	l, err := reviewlist.NewList([]string{"*paypal*", "*paypal*[", "*bank*", "*pay*"})
	if err == nil || !strings.Contains(err.Error(), `1 of 4 patterns ignored: pattern "*paypal*[" is malformed`) {
		t.Errorf("NewList error = %v, want it to name the malformed pattern", err)
	}
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"example.com", "xn--mybnk-6ve.com"}, "*bank*"},
		{[]string{"paypal.example", "mybank.example"}, "*paypal*"},
		{[]string{"mybank.example", "paypal.example"}, "*paypal*"}, // list order, not name order
		{[]string{"payments.example"}, "*pay*"},
		{[]string{"example.com"}, ""},
		{nil, ""},
	} {
		if got := l.Match(tt.names); got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestNewListKeepsValidPatterns(t *testing.T) {
	pats := []string{"*bank*", "*paypal*"}
	l, err := reviewlist.NewList(pats)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range []string{"mybank.com", "paypal.com", "example.com"} {
		got = append(got, l.Match([]string{n}))
	}
	if diff := cmp.Diff([]string{"*bank*", "*paypal*", ""}, got); diff != "" {
		t.Errorf("matches (-want +got):\n%s", diff)
	}
}

// TestMatchLongName: a name longer than any DNS name is matched in ASCII
// only, however it is spelled.
func TestMatchLongName(t *testing.T) {
	long := strings.Repeat("a.", 125)
	for _, tt := range []struct {
		name string
		want bool
	}{
		{long + "mybank.com", true},
		{long + "xn--mybnk-6ve.com", false},
		{long + strings.Repeat("\ufdfa", 1000), false},
	} {
		if got := reviewlist.Match("*bank*", tt.name); got != tt.want {
			t.Errorf("Match(*bank*, %.20q…) = %v, want %v", tt.name[len(long):], got, tt.want)
		}
	}
}
