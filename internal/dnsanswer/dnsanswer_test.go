package dnsanswer

import (
	"testing"

	"github.com/miekg/dns"
)

func rrs(t *testing.T, ss ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, s := range ss {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

func txt(owner string, rr dns.RR) (string, bool) {
	r, ok := rr.(*dns.TXT)
	if !ok {
		return "", false
	}
	return owner + "=" + r.Txt[0], true
}

// TestAt: the chain is followed, the owner is the name the records were
// found at, and a chain longer than MaxCNAMEHops ends with nothing.
func TestAt(t *testing.T) {
	got := At(rrs(t, `a.test. 60 IN CNAME b.test.`, `b.test. 60 IN TXT "x"`, `b.test. 60 IN A 192.0.2.1`), "A.test", txt)
	if len(got) != 1 || got[0] != "b.test.=x" {
		t.Errorf("through a CNAME: %v", got)
	}
	var long []string
	for i := range MaxCNAMEHops + 1 {
		long = append(long, "n"+string(rune('a'+i))+".test. 60 IN CNAME n"+string(rune('a'+i+1))+".test.")
	}
	long = append(long, "n"+string(rune('a'+MaxCNAMEHops+1))+`.test. 60 IN TXT "far"`)
	if got := At(rrs(t, long...), "na.test", txt); got != nil {
		t.Errorf("a chain of %d CNAMEs: %v, want nothing", MaxCNAMEHops+1, got)
	}
}
