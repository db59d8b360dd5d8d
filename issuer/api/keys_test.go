package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
)

// TestKeyCompromise: the finding of issue #12 (a certificate revoked for
// keyCompromise, then the same CSR ordered again and issued), and the
// admin's revocation of every certificate of the key.
func TestKeyCompromise(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := csrPEM(t, k, "www.example.com")
	order := func() (int, map[string]any) {
		c, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]any{"csr": csr, "profile": "dv"})
		return c, out
	}
	var serials []string
	for range 3 {
		c, out := order()
		if c != 201 || out["status"] != "issued" {
			t.Fatalf("order: %d %v", c, out)
		}
		serials = append(serials, out["serial"].(string))
	}

	c, out, _ := e.call(t, "POST", "/api/v1/certificates/"+serials[0]+"/revoke", alice, map[string]string{"reason": "keyCompromise"})
	if c != 200 {
		t.Fatalf("revoking for keyCompromise: %d %v", c, out)
	}
	c, out = order()
	detail, _ := out["detail"].(string)
	if c != 403 || !strings.Contains(detail, "blocked") || !strings.Contains(detail, serials[0]) || !strings.Contains(detail, "new key") {
		t.Fatalf("the same CSR after keyCompromise: %d %v, want 403 naming %s", c, out, serials[0])
	}
	if len(e.audits(t, "key.blocked", "")) != 1 {
		t.Errorf("key.blocked audit entries: %v", e.audits(t, "key.blocked", ""))
	}

	path := "/api/v1/admin/certificates/" + serials[0] + "/revoke-key"
	if c, _, _ := e.call(t, "POST", path, alice, nil); c != 403 {
		t.Errorf("a subscriber revoking by key: %d, want 403", c)
	}
	c, out, _ = e.call(t, "POST", path, e.admin, nil)
	others := []string{serials[1], serials[2]}
	slices.Sort(others) // listed in serial order
	if c != 200 || fmt.Sprint(out["revoked"]) != fmt.Sprint(others) || fmt.Sprint(out["already_revoked"]) != fmt.Sprint([]any{serials[0]}) {
		t.Fatalf("admin revoke-key: %d %v; want %v revoked and %s already", c, out, serials[1:], serials[0])
	}
	for _, sn := range serials[1:] {
		if c, err := e.st.Certificate(context.Background(), serial.Serial(sn)); err != nil || c.Status != status.Revoked || c.Reason != reason.KeyCompromise {
			t.Errorf("%s after revoke-key: %v %v %v", sn, c.Status, c.Reason, err)
		}
	}
	if len(e.audits(t, "key.certificates_revoked", "")) != 1 {
		t.Error("no key.certificates_revoked audit entry")
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/admin/certificates/ffff/revoke-key", e.admin, nil); c != 404 {
		t.Errorf("an unknown serial: %d, want 404", c)
	}
}
