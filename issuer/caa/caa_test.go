package caa_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer/caa"
)

const (
	self    = "trustline.test"
	account = "https://api.trustline.test/api/v1/accounts/acct_1"
)

func checker(t *testing.T, resolver string) *caa.Checker {
	t.Helper()
	c, err := caa.New(caa.Config{Identities: []string{self, "ca.trustline.test."}, Resolver: resolver, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheck runs each case against a DNS server on loopback holding the
// case's records, and checks the decision, where the relevant set was
// found, and that a refusal names the record that decided.
func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		caa     map[string][]string
		cname   map[string]string
		req     caa.Request
		allowed bool
		at      string // relevant_at
		say     string // in the refusal
	}{
		{name: "no records anywhere", req: caa.Request{Name: "www.example.com"}, allowed: true},
		{name: "ours at the parent", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`}},
			req: caa.Request{Name: "www.example.com"}, allowed: true, at: "example.com"},
		{name: "our second identity, any case", caa: map[string][]string{"example.com": {`0 issue "CA.Trustline.Test"`}},
			req: caa.Request{Name: "example.com"}, allowed: true, at: "example.com"},
		{name: "another CA", caa: map[string][]string{"example.com": {`0 issue "other-ca.example"`}},
			req: caa.Request{Name: "www.example.com"}, at: "example.com", say: `example.com CAA 0 issue "other-ca.example"`},
		{name: "the closest set wins", caa: map[string][]string{"example.com": {`0 issue "other-ca.example"`}, "shop.example.com": {`0 issue "trustline.test"`}},
			req: caa.Request{Name: "www.shop.example.com"}, allowed: true, at: "shop.example.com"},
		{name: "the closest set wins, forbidding", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`}, "shop.example.com": {`0 issue ";"`}},
			req: caa.Request{Name: "shop.example.com"}, at: "shop.example.com", say: "forbids every CA"},
		{name: "one of several", caa: map[string][]string{"example.com": {`0 issue "other-ca.example"`, `0 issue "trustline.test"`, `0 iodef "mailto:sec@example.com"`}},
			req: caa.Request{Name: "example.com"}, allowed: true, at: "example.com"},
		{name: "iodef only", caa: map[string][]string{"example.com": {`0 iodef "mailto:sec@example.com"`}},
			req: caa.Request{Name: "example.com"}, allowed: true, at: "example.com"},
		{name: "critical unknown property", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`, `128 tbs "unknown"`}},
			req: caa.Request{Name: "example.com"}, at: "example.com", say: "critical"},
		{name: "non-critical unknown property", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`, `0 tbs "unknown"`}},
			req: caa.Request{Name: "example.com"}, allowed: true, at: "example.com"},
		{name: "wildcard: issuewild for another CA", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`, `0 issuewild "other-ca.example"`}},
			req: caa.Request{Name: "*.example.com"}, at: "example.com", say: `issuewild "other-ca.example"`},
		{name: "the same set lets the plain name through", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`, `0 issuewild "other-ca.example"`}},
			req: caa.Request{Name: "example.com"}, allowed: true, at: "example.com"},
		{name: "wildcard: issue applies without issuewild", caa: map[string][]string{"example.com": {`0 issue "trustline.test"`}},
			req: caa.Request{Name: "*.example.com"}, allowed: true, at: "example.com"},
		{name: "wildcard: issuewild ours, issue not", caa: map[string][]string{"example.com": {`0 issue ";"`, `0 issuewild "trustline.test"`}},
			req: caa.Request{Name: "*.example.com"}, allowed: true, at: "example.com"},
		{name: "accounturi ours", caa: map[string][]string{"example.com": {`0 issue "trustline.test; accounturi=` + account + `"`}},
			req: caa.Request{Name: "example.com", AccountURI: account}, allowed: true, at: "example.com"},
		{name: "accounturi another account's", caa: map[string][]string{"example.com": {`0 issue "trustline.test; accounturi=` + account + `"`}},
			req: caa.Request{Name: "example.com", AccountURI: account + "2"}, at: "example.com", say: "accounturi"},
		{name: "validationmethods allows ours", caa: map[string][]string{"example.com": {`0 issue "trustline.test; validationmethods=dns-01,ca-dns-txt"`}},
			req: caa.Request{Name: "example.com", Method: caa.MethodLabel("dns-txt")}, allowed: true, at: "example.com"},
		{name: "validationmethods excludes ours", caa: map[string][]string{"example.com": {`0 issue "trustline.test; validationmethods=http-01"`}},
			req: caa.Request{Name: "example.com", Method: caa.MethodLabel("email")}, at: "example.com", say: "validationmethods"},
		{name: "malformed value forbids", caa: map[string][]string{"example.com": {`0 issue "trustline.test; accounturi"`}},
			req: caa.Request{Name: "example.com"}, at: "example.com", say: "malformed"},
		{name: "cname to a forbidding set", cname: map[string]string{"www.example.net": "cdn.example.org"},
			caa: map[string][]string{"cdn.example.org": {`0 issue "other-ca.example"`}},
			req: caa.Request{Name: "www.example.net"}, at: "www.example.net", say: "other-ca.example"},
		{name: "cname to a permitting set", cname: map[string]string{"www.example.net": "cdn.example.org"},
			caa: map[string][]string{"cdn.example.org": {`0 issue "trustline.test"`}, "example.net": {`0 issue ";"`}},
			req: caa.Request{Name: "www.example.net"}, allowed: true, at: "www.example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := dnstest.Start(t)
			for n, recs := range tt.caa {
				z.SetCAA(n, recs...)
			}
			for n, target := range tt.cname {
				z.SetCNAME(n, target)
			}
			res, err := checker(t, z.Addr).Check(context.Background(), tt.req)
			if tt.allowed != (err == nil) || res.Permitted != tt.allowed {
				t.Fatalf("Check: err %v, permitted %v; want allowed %v", err, res.Permitted, tt.allowed)
			}
			if !tt.allowed && (!errors.Is(err, caa.ErrForbidden) || !strings.Contains(err.Error(), tt.say) || !strings.Contains(err.Error(), tt.req.Name)) {
				t.Errorf("refusal %q: want ErrForbidden naming %s and saying %q", err, tt.req.Name, tt.say)
			}
			if res.RelevantAt != tt.at {
				t.Errorf("relevant set at %q, want %q", res.RelevantAt, tt.at)
			}
			if z.CAAQueries() == 0 || res.Resolver != z.Addr || res.At.IsZero() || len(res.Queried) == 0 {
				t.Errorf("evidence incomplete: %+v after %d CAA queries", res, z.CAAQueries())
			}
		})
	}
}

// TestClimbStopsAtTheFirstSet: the names asked, in order, stop where the
// relevant set is found, and a wildcard is checked at its base name.
func TestClimbStopsAtTheFirstSet(t *testing.T) {
	z := dnstest.Start(t)
	z.SetCAA("example.com", `0 issue "trustline.test"`)
	res, err := checker(t, z.Addr).Check(context.Background(), caa.Request{Name: "*.a.b.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.b.example.com", "b.example.com", "example.com"}
	if strings.Join(res.Queried, " ") != strings.Join(want, " ") {
		t.Errorf("queried %q, want %q", res.Queried, want)
	}
}

// TestLookupFailures: a resolver that answers SERVFAIL (as a validating
// resolver does for a zone whose DNSSEC chain is broken) or refuses is a
// lookup failure, one that does not answer at all a resolver failure:
// neither is permission.
func TestLookupFailures(t *testing.T) {
	z := dnstest.Start(t)
	z.SetFail("broken-dnssec.example", dns.RcodeServerFailure)
	z.SetFail("refused.example", dns.RcodeRefused)
	c := checker(t, z.Addr)
	for _, name := range []string{"www.broken-dnssec.example", "refused.example"} {
		res, err := c.Check(context.Background(), caa.Request{Name: name})
		if !errors.Is(err, caa.ErrLookup) || res.Permitted {
			t.Errorf("%s: err %v, permitted %v; want ErrLookup", name, err, res.Permitted)
		}
	}
	// A port nobody answers on.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	silent, err := caa.New(caa.Config{Identities: []string{self}, Resolver: pc.LocalAddr().String(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := silent.Check(context.Background(), caa.Request{Name: "example.com"}); !errors.Is(err, caa.ErrResolver) {
		t.Errorf("silent resolver: err %v, want ErrResolver", err)
	}
}

func TestParseValue(t *testing.T) {
	good := map[string]caa.Value{
		`trustline.test`:    {Issuer: "trustline.test", Params: map[string]string{}},
		` trustline.test `:  {Issuer: "trustline.test", Params: map[string]string{}},
		`;`:                 {Params: map[string]string{}},
		``:                  {Params: map[string]string{}},
		`ca.test; a=b; c=d`: {Issuer: "ca.test", Params: map[string]string{"a": "b", "c": "d"}},
		`ca.test;accounturi=https://x.test/acct/1`: {Issuer: "ca.test", Params: map[string]string{"accounturi": "https://x.test/acct/1"}},
	}
	for in, want := range good {
		got, err := caa.ParseValue(in)
		if err != nil || got.Issuer != want.Issuer || len(got.Params) != len(want.Params) {
			t.Errorf("ParseValue(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		for k, v := range want.Params {
			if got.Params[k] != v {
				t.Errorf("ParseValue(%q): %s = %q, want %q", in, k, got.Params[k], v)
			}
		}
	}
	for _, bad := range []string{`-ca.test`, `ca..test`, `ca_test`, `ca.test; accounturi`, `ca.test; =x`, `ca.test; a=b c`, "ca.test; a=\x7f"} {
		if v, err := caa.ParseValue(bad); err == nil {
			t.Errorf("ParseValue(%q) = %+v, want an error", bad, v)
		}
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []caa.Config{
		{Resolver: "127.0.0.1:53"},
		{Identities: []string{self}},
		{Identities: []string{"not a name!"}, Resolver: "127.0.0.1:53"},
		{Identities: []string{self}, Resolver: "127.0.0.1:53", Transport: "quic"},
	} {
		if _, err := caa.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{`trustline.test`, `;`, `ca.test; accounturi=https://x.test/1; validationmethods=dns-01,http-01`, `-`, "a=\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := caa.ParseValue(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(v.Issuer, " \t;") {
			t.Errorf("issuer %q from %q", v.Issuer, s)
		}
		for k, val := range v.Params {
			if k == "" || strings.ContainsAny(val, " ;") {
				t.Errorf("param %q=%q from %q", k, val, s)
			}
		}
	})
}
