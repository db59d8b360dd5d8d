package api_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/trustline/trustline/issuer/acme"
)

// TestEABKeys: a subscriber makes a binding key for its own account, an
// admin for any; the HMAC key is the one the ACME server derives for the
// id, shown once, and every key is audited.
func TestEABKeys(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	bob := e.newAccount(t, "bob@example.com")
	code, out, _ := e.call(t, "POST", "/api/v1/account/acme-eab-keys", alice, nil)
	if code != 201 {
		t.Fatalf("own key: %d %v", code, out)
	}
	id, _ := out["key_id"].(string)
	if want := base64.RawURLEncoding.EncodeToString(acme.EABKey(make([]byte, 32), id)); id == "" || out["hmac_key"] != want || out["expires_at"] == nil {
		t.Fatalf("own key: %v", out)
	}
	k, err := e.st.ACMEEABKey(context.Background(), id)
	if err != nil || k.AccountID != e.accountIDOf(t, alice) || !k.UsedAt.IsZero() {
		t.Fatalf("stored key %+v, %v", k, err)
	}
	if got := e.audits(t, "acme.eab_key.created", e.accountIDOf(t, alice)); len(got) != 1 {
		t.Fatalf("%d audit entries, want 1", len(got))
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/admin/accounts/"+e.accountIDOf(t, bob)+"/acme-eab-keys", alice, nil); code != 403 {
		t.Fatalf("a subscriber making a key for another account: %d, want 403", code)
	}
	if code, out, _ := e.call(t, "POST", "/api/v1/admin/accounts/"+e.accountIDOf(t, bob)+"/acme-eab-keys", e.admin, nil); code != 201 {
		t.Fatalf("admin for bob: %d %v", code, out)
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/admin/accounts/acct_nobody/acme-eab-keys", e.admin, nil); code != 404 {
		t.Fatalf("admin for an unknown account: %d, want 404", code)
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/account/acme-eab-keys", "", nil); code != 401 {
		t.Fatalf("no API key: %d, want 401", code)
	}
}

// TestEABKeyProfiles: a binding key may make its account's orders OV or
// EV for an organization the issuer's own check accepts.
func TestEABKeyProfiles(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	org := map[string]string{"name": "Example Ltd", "locality": "London", "country": "GB"}
	code, out, _ := e.call(t, "POST", "/api/v1/account/acme-eab-keys", alice, map[string]any{"profile": "ov", "organization": org})
	if code != 201 || out["profile"] != "ov" {
		t.Fatalf("OV key: %d %v", code, out)
	}
	k, err := e.st.ACMEEABKey(context.Background(), out["key_id"].(string))
	if err != nil || k.CertProfile != "ov" || len(k.Organization) == 0 {
		t.Fatalf("stored OV key %+v, %v", k, err)
	}
	for name, body := range map[string]any{
		"ov without an organization": map[string]any{"profile": "ov"},
		"organization without ov":    map[string]any{"organization": org},
		"unknown profile":            map[string]any{"profile": "qv"},
		"bad country":                map[string]any{"profile": "ov", "organization": map[string]string{"name": "X", "country": "Great Britain"}},
		"unknown field":              map[string]any{"profile": "dv", "lifetime": 1},
	} {
		if code, out, _ := e.call(t, "POST", "/api/v1/account/acme-eab-keys", alice, body); code != 400 {
			t.Errorf("%s: %d %v, want 400", name, code, out)
		}
	}
}
