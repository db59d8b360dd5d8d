package bindtest_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/trustline/trustline/internal/testfix/bindtest"
)

func query(t *testing.T, addr, name string, qtype uint16, cd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	m.CheckingDisabled = cd
	resp, _, err := new(dns.Client).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

// TestStart: a good zone validates (AD), a broken one is SERVFAIL from the
// resolver yet served by the authoritative server and, with checking
// disabled, by the resolver: its signatures, not its data, are at fault.
func TestStart(t *testing.T) {
	r := bindtest.Start(t,
		bindtest.Zone{Name: "good.test", Records: []string{`@ TXT "good"`}},
		bindtest.Zone{Name: "bad.test", Records: []string{`@ TXT "bad"`}, Broken: true},
	)
	if m := query(t, r.Addr, "good.test", dns.TypeTXT, false); m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
		t.Errorf("good.test TXT: %v", m)
	}
	if m := query(t, r.Addr, "nx.good.test", dns.TypeTXT, false); m.Rcode != dns.RcodeNameError || !m.AuthenticatedData {
		t.Errorf("nx.good.test TXT: %v", m)
	}
	if m := query(t, r.Addr, "bad.test", dns.TypeTXT, false); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("bad.test TXT: %v", m)
	}
	if m := query(t, r.Addr, "bad.test", dns.TypeTXT, true); m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || len(m.Answer) == 0 {
		t.Errorf("bad.test TXT, checking disabled: %v", m)
	}
	if m := query(t, r.Authoritative, "bad.test", dns.TypeTXT, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("bad.test TXT from the authoritative server: %v", m)
	}
}
