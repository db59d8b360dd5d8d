package validation

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestTXTValues(t *testing.T) {
	const q = "_pki-validation.example.com"
	tests := []struct {
		name   string
		answer []string
		want   []string
	}{
		{"plain", []string{`_pki-validation.example.com. 60 IN TXT "abc"`, `_pki-validation.example.com. 60 IN TXT "v=spf1 -all"`}, []string{"abc", "v=spf1 -all"}},
		{"strings of one record are joined", []string{`_pki-validation.example.com. 60 IN TXT "ab" "cd"`}, []string{"abcd"}},
		{"owner name case", []string{`_PKI-Validation.Example.COM. 60 IN TXT "abc"`}, []string{"abc"}},
		{"other names ignored", []string{`evil.example.net. 60 IN TXT "abc"`, `example.com. 60 IN TXT "root"`}, nil},
		{"other classes ignored", []string{`_pki-validation.example.com. 60 CH TXT "abc"`}, nil},
		{"cname chain", []string{
			`_pki-validation.example.com. 60 IN CNAME a.dcv.example.net.`,
			`a.dcv.example.net. 60 IN CNAME b.dcv.example.net.`,
			`b.dcv.example.net. 60 IN TXT "abc"`,
		}, []string{"abc"}},
		{"cname loop", []string{
			`_pki-validation.example.com. 60 IN CNAME a.example.net.`,
			`a.example.net. 60 IN CNAME _pki-validation.example.com.`,
		}, nil},
		{"txt at the name wins over a cname", []string{
			`_pki-validation.example.com. 60 IN TXT "here"`,
			`_pki-validation.example.com. 60 IN CNAME a.example.net.`,
			`a.example.net. 60 IN TXT "there"`,
		}, []string{"here"}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rrs []dns.RR
			for _, s := range tt.answer {
				rrs = append(rrs, mustRR(t, s))
			}
			if d := cmp.Diff(tt.want, TXTValues(rrs, q)); d != "" {
				t.Errorf("TXTValues (-want +got):\n%s", d)
			}
		})
	}
}

func TestMatchTXT(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		match  bool
	}{
		{"exact", []string{"x", "VALUE"}, "VALUE", true},
		{"surrounding space", []string{" VALUE\t"}, "VALUE", true},
		{"inside a longer record", []string{"token=VALUE"}, "VALUE", false},
		{"case matters", []string{"value"}, "VALUE", false},
		{"empty want never matches", []string{""}, "", false},
		{"none", nil, "VALUE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchTXT(tt.values, tt.want); got != tt.match {
				t.Errorf("MatchTXT(%q, %q) = %v", tt.values, tt.want, got)
			}
		})
	}
}

// FuzzTXTAnswer feeds resolver answers in wire form through what the CA
// does with them: unpack, extract the TXT values at the record name,
// match. Nothing may panic, and every value found must be one TXT
// record's joined strings.
func FuzzTXTAnswer(f *testing.F) {
	for _, answer := range [][]string{
		{`_pki-validation.example.com. 60 IN TXT "abc" "def"`},
		{`_pki-validation.example.com. 60 IN CNAME x.example.net.`, `x.example.net. 60 IN TXT "abc"`},
	} {
		m := new(dns.Msg)
		m.SetQuestion("_pki-validation.example.com.", dns.TypeTXT)
		m.Response = true
		for _, s := range answer {
			m.Answer = append(m.Answer, mustRR(f, s))
		}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, "abc")
	}
	f.Fuzz(func(t *testing.T, wire []byte, want string) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return
		}
		values := TXTValues(m.Answer, "_pki-validation.example.com")
		joined := map[string]bool{}
		for _, rr := range m.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				joined[strings.Join(txt.Txt, "")] = true
			}
		}
		for _, v := range values {
			if !joined[v] {
				t.Fatalf("value %q is no record's", v)
			}
		}
		if MatchTXT(values, want) && (want == "" || strings.TrimSpace(want) != want) {
			t.Fatalf("matched %q", want)
		}
	})
}

func BenchmarkTXTValues(b *testing.B) {
	rrs := []dns.RR{
		mustRR(b, `_pki-validation.example.com. 60 IN CNAME x.example.net.`),
		mustRR(b, `x.example.net. 60 IN TXT "v=spf1 -all"`),
		mustRR(b, `x.example.net. 60 IN TXT "ABCDEFGHIJKLMNOPQRSTUVWXYZ"`),
	}
	b.ReportAllocs()
	for b.Loop() {
		MatchTXT(TXTValues(rrs, "_pki-validation.example.com"), "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	}
}
