package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// caaIdentity is the test CA's issuer domain name in CAA records.
const caaIdentity = "trustline.test"

// dnsValidated validates domain for the account by dns-txt (which covers
// wildcards), publishing the value in the test zone.
func (e *env) dnsValidated(t *testing.T, key, domain string) {
	t.Helper()
	v := e.startPublished(t, key, domain, "dns-txt")
	e.zone.SetTXT("_pki-validation."+domain, v["random_value"].(string))
	if c, out := e.confirm(t, key, v["id"].(string), nil); c != 200 || out["status"] != "valid" {
		t.Fatalf("dns-txt validation of %s: %d %v", domain, c, out)
	}
}

// TestOrderCAA: the finding of issue #12 (a dns-txt validation then a
// wildcard order issued without one CAA query), and each decision at the
// API: refusals are 403 problems naming the name and the record; the
// evidence of every check is in the audit log.
func TestOrderCAA(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@dns-example.com")
	e.dnsValidated(t, alice, "dns-example.com")

	before := e.zone.CAAQueries()
	c, out := e.order(t, alice, "dv", nil, "*.dns-example.com")
	if c != 201 || out["status"] != "issued" || e.zone.CAAQueries() == before {
		t.Fatalf("wildcard order with no CAA records: %d %v after %d CAA queries", c, out, e.zone.CAAQueries()-before)
	}
	ev := e.audits(t, "caa.checked", out["id"].(string))
	if len(ev) != 1 || !strings.Contains(string(ev[0].Payload), `"permitted":true`) || !strings.Contains(string(ev[0].Payload), `"resolver"`) {
		t.Errorf("CAA evidence of the order: %v", ev)
	}

	refusals := []struct {
		name    string
		records []string
		order   string
		say     []string
	}{
		{"another CA named", []string{`0 issue "other-ca.example"`}, "www.dns-example.com",
			[]string{"www.dns-example.com", `dns-example.com CAA 0 issue "other-ca.example"`, "BR 3.2.2.8"}},
		{"issuewild for another CA", []string{`0 issue "` + caaIdentity + `"`, `0 issuewild "other-ca.example"`}, "*.dns-example.com",
			[]string{"*.dns-example.com", "issuewild"}},
		{"validation method not allowed", []string{`0 issue "` + caaIdentity + `; validationmethods=http-01"`}, "dns-example.com",
			[]string{"validationmethods", "ca-dns-txt"}},
		{"critical unknown property", []string{`0 issue "` + caaIdentity + `"`, `128 tbs "x"`}, "dns-example.com",
			[]string{"critical"}},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			e.zone.SetCAA("dns-example.com", r.records...)
			c, out := e.order(t, alice, "dv", nil, r.order)
			detail, _ := out["detail"].(string)
			if c != 403 {
				t.Fatalf("order: %d %v, want 403", c, out)
			}
			for _, s := range r.say {
				if !strings.Contains(detail, s) {
					t.Errorf("detail %q does not say %q", detail, s)
				}
			}
		})
	}
	t.Run("allowed for this account and method", func(t *testing.T) {
		uri := issuertestAccountURI(t, e, alice)
		e.zone.SetCAA("dns-example.com", `0 issue "`+caaIdentity+`; accounturi=`+uri+`; validationmethods=ca-dns-txt"`)
		if c, out := e.order(t, alice, "dv", nil, "dns-example.com", "www.dns-example.com"); c != 201 || out["status"] != "issued" {
			t.Errorf("order: %d %v", c, out)
		}
	})
	t.Run("DNSSEC broken", func(t *testing.T) {
		e.zone.SetCAA("dns-example.com")
		e.zone.SetFail("dns-example.com", dns.RcodeServerFailure)
		c, out := e.order(t, alice, "dv", nil, "dns-example.com")
		if detail, _ := out["detail"].(string); c != 403 || !strings.Contains(detail, "cannot be read") || !strings.Contains(detail, "SERVFAIL") {
			t.Errorf("order: %d %v, want 403 saying the records cannot be read", c, out)
		}
		refused := e.audits(t, "caa.refused", "")
		if len(refused) == 0 || !json.Valid(refused[len(refused)-1].Payload) {
			t.Errorf("no evidence of the refusal: %v", refused)
		}
	})
}

// issuertestAccountURI is the accounturi a CAA record names an account by.
func issuertestAccountURI(t *testing.T, e *env, key string) string {
	t.Helper()
	c, out, _ := e.call(t, "GET", "/api/v1/account", key, nil)
	if c != 200 {
		t.Fatalf("whoami: %d %v", c, out)
	}
	return "http://api.test/api/v1/accounts/" + out["id"].(string)
}
