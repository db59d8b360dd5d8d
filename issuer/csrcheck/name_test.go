package csrcheck

import (
	"strings"
	"testing"
)

func TestCheckNameAccepts(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 253 characters: three 63-character labels, a 57-character label, ".com".
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 57) + ".com"
	if len(name253) != 253 {
		t.Fatalf("fixture is %d characters", len(name253))
	}
	for _, name := range []string{
		"example.com",
		"www.example.com",
		"a.b.c.d.example.com",
		"a-b.example.com",
		"a--b.example.com", // "--" outside positions 3–4 is ordinary LDH
		"1example.com",
		"123.example.com", // numeric labels are fine below the TLD
		"x.com",
		"*.example.com",
		"*.www.example.com",
		"example.co.uk",
		"*.example.co.uk",
		"www.ck",           // exception rule !www.ck: registrable
		"foo.bar.ck",       // under the wildcard rule *.ck
		"github.io",        // a private-section suffix: an ordinary registered domain
		"*.github.io",      // idem (BR §3.2.2.6 consults the ICANN section only)
		"foo.github.io",    //
		"city.kawasaki.jp", // exception rule under *.kawasaki.jp
		"xn--bcher-kva.de", // bücher.de
		"example.xn--fiqs8s",
		label63 + ".com",
		name253,
	} {
		t.Run(name[:min(len(name), 40)], func(t *testing.T) {
			if err := CheckName(name); err != nil {
				t.Errorf("CheckName(%q) = %v", name, err)
			}
		})
	}
}

func TestCheckNameRefuses(t *testing.T) {
	label64 := strings.Repeat("a", 64)
	name254 := strings.Repeat("a", 63) + "." + strings.Repeat("a", 63) + "." + strings.Repeat("a", 63) + "." + strings.Repeat("b", 58) + ".com"
	tests := []struct {
		name   string
		phrase string
	}{
		{"", "empty"},
		{name254, "254 characters"},
		{label64 + ".com", "64 characters"},
		{"example.com.", "trailing dot"},
		{"Example.com", "lowercase"},
		{"EXAMPLE.COM", "lowercase"},
		{"192.0.2.1", "IP address"},
		{"::1", "IP address"},
		{"2001:db8::1", "IP address"},
		{"[2001:db8::1]", "IP address"},
		{"::ffff:192.0.2.1", "IP address"},
		{"0300.0250.0.1", "all-numeric"}, // octal inet_aton form
		{"10.1", "all-numeric"},
		{"foo.123", "all-numeric"},
		{"com", "single label"},
		{"localhost", "single label"},
		{"*", "single label"},
		{"example", "single label"},
		{"co.uk", "public suffix"},
		{"foo.ck", "public suffix"}, // *.ck makes every foo.ck a suffix
		{"x.kawasaki.jp", "public suffix"},
		{"*.com", "wildcard directly under the public suffix"},
		{"*.co.uk", "wildcard directly under the public suffix"},
		{"*.foo.ck", "wildcard directly under the public suffix"},
		{"foo.local", "internal name"},
		{"foo.localhost", "internal name"},
		{"db.internal", "internal name"},
		{"mail.corp", "internal name"},
		{"printer.lan", "internal name"},
		{"host.home.arpa", "arpa"},
		{"1.2.0.192.in-addr.arpa", "arpa"},
		{"example.test", "internal name"},
		{"example.invalid", "internal name"},
		{"expyuzz4wqqyqhjn.onion", "onion"},
		{"-foo.example.com", "starting or ending with '-'"},
		{"foo-.example.com", "starting or ending with '-'"},
		{"foo..example.com", "empty label"},
		{".example.com", "empty label"},
		{"foo_bar.example.com", `"_"`},
		{"foo bar.example.com", `" "`},
		{"foo@example.com", `"@"`},
		{"foo.example.com\x00", `"\x00"`},
		{"bücher.de", "non-ASCII"},
		{"a*.example.com", "whole leftmost label"},
		{"*a.example.com", "whole leftmost label"},
		{"*.*.example.com", "whole leftmost label"},
		{"foo.*.example.com", "whole leftmost label"},
		{"ab--cd.example.com", "reserved"},
		{"example.ab--cd", "reserved"},
		{"xn--.example.com", "ending with '-'"},
		{"xn--zz.example.com", "not a valid IDNA A-label"},
		{"xn--abc-.example.com", "ending with '-'"}, // would decode to plain ASCII
		{"xn--ab.example.com", "not a valid IDNA A-label"},
		{"xn--a.example.com", "not a valid IDNA A-label"},     // decodes to U+0080
		{"xn--a-ecp.example.com", "not a valid IDNA A-label"}, // U+2488, disallowed
		{"xn--bcher-kva.xn--zz", "not a valid IDNA A-label"},
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.name[:min(len(tt.name), 40)], "?"), func(t *testing.T) {
			wantRefusal(t, CheckName(tt.name), BadName, tt.phrase)
		})
	}
}

func TestICANNSuffix(t *testing.T) {
	tests := []struct {
		name      string
		want      string
		wantICANN bool
	}{
		{"example.com", "com", true},
		{"a.example.co.uk", "co.uk", true},
		{"foo.github.io", "io", true}, // private-section "github.io" is skipped
		{"github.io", "io", true},
		{"foo.bar.ck", "bar.ck", true},
		{"city.kawasaki.jp", "kawasaki.jp", true},
		{"foo.local", "local", false},
		{"localhost", "localhost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, icann := icannSuffix(tt.name)
			if got != tt.want || icann != tt.wantICANN {
				t.Errorf("icannSuffix(%q) = %q, %v; want %q, %v", tt.name, got, icann, tt.want, tt.wantICANN)
			}
		})
	}
}

func BenchmarkCheckName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckName("www.xn--bcher-kva.example.co.uk"); err != nil {
			b.Fatal(err)
		}
	}
}
