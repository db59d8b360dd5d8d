package portal

import (
	"context"
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/acme"
)

// TestACMEPage: a subscriber finds the ACME directory and makes a binding
// key, shown once, that is theirs and audited; the form needs the
// session's token, and the page is for signed-in users only.
func TestACMEPage(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "alice@example.com", store.RoleSubscriber)
	alice := e.accountByEmail(t, "alice@example.com")

	anon := e.browser(t)
	if p := anon.get(t, "/account/acme"); p.status != 303 || !strings.HasPrefix(p.location(), "/?") {
		t.Fatalf("signed out: %d %q", p.status, p.location())
	}

	b := e.browser(t)
	home := b.signIn(t, key)
	wantContains(t, "dashboard navigation", home, `href="/account/acme"`)
	p := b.get(t, "/account/acme")
	wantStatus(t, "ACME page", p, 200)
	wantContains(t, "ACME page", p, e.srv.URL+"/acme/directory", "Make a binding key", `aria-current="page">ACME`)
	if strings.Contains(p.body, "HMAC key</dt>") {
		t.Fatal("the page shows a key before one was made")
	}

	if p := b.post(t, "/account/acme/keys", url.Values{"csrf": {"forged"}}); p.status != 403 {
		t.Fatalf("a forged form token: %d", p.status)
	}
	p = b.post(t, "/account/acme/keys", url.Values{})
	wantStatus(t, "make a key", p, 200)
	wantContains(t, "made key", p, "shown only this once", "--eab-kid eab_")
	m := regexp.MustCompile(`<dt>Key id</dt><dd><code>(eab_[0-9a-f]+)</code></dd>\s*<dt>HMAC key</dt><dd><code>([A-Za-z0-9_-]+)</code>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no key on the page: %s", excerpt(p.body))
	}
	k, err := e.st.ACMEEABKey(context.Background(), m[1])
	if err != nil || k.AccountID != alice.ID || k.CertProfile != "" {
		t.Fatalf("stored key %+v (%v), want a DV key of %s", k, err, alice.ID)
	}
	if want := base64.RawURLEncoding.EncodeToString(acme.EABKey(e.eabSecret, k.ID)); m[2] != want {
		t.Errorf("the page shows HMAC key %s; the server derives %s", m[2], want)
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q on a page with a credential", p.header.Get("Cache-Control"))
	}
	var audited bool
	e.st.ScanAudit(context.Background(), 0, func(a store.AuditEntry) error {
		audited = audited || (a.Kind == "acme.eab_key.created" && a.Subject == alice.ID && a.Actor == alice.ID)
		return nil
	})
	if !audited {
		t.Error("no acme.eab_key.created audit entry")
	}
	if again := b.get(t, "/account/acme"); strings.Contains(again.body, m[2]) {
		t.Error("the HMAC key is shown again")
	}
}
