package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

// TestReviewListRefusesBadPatterns: a pattern that could never match is
// refused with a problem saying why; an upper-case one is lowered.
func TestReviewListRefusesBadPatterns(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name, pattern string
		status        int
		want          string // in the problem's detail, or the stored pattern
	}{
		{"malformed", "*paypal*[", 400, `pattern "*paypal*[" is malformed: the [ at position 9 has no closing ]`},
		{"blank", "  ", 400, "pattern is empty"},
		{"cyrillic", "*bаnk*", 400, "non-ASCII character"}, // Cyrillic а
		{"slash", "*bank/*", 400, `has "/" at position 6`},
		{"overlong", strings.Repeat("a", 254), 400, "at most 253"},
		{"upper case", " *PayPal* ", 201, "*paypal*"},
		{"class", "*[0-9]bank*", 201, "*[0-9]bank*"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, out, _ := e.call(t, "POST", "/api/v1/admin/review-list", e.admin, map[string]string{"pattern": tt.pattern})
			if c != tt.status {
				t.Fatalf("status %d, want %d: %v", c, tt.status, out["_raw"])
			}
			got, _ := out["pattern"].(string)
			if c >= 400 {
				got, _ = out["detail"].(string)
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
		})
	}
}

// TestReviewListCatchesLookAlikes: an order for mybаnk with a Cyrillic а
// goes to review when *bank* is listed.
func TestReviewListCatchesLookAlikes(t *testing.T) {
	e := newEnv(t)
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/review-list", e.admin, map[string]string{"pattern": "*bank*"}); c != 201 {
		t.Fatalf("add pattern: %d %v", c, out)
	}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, want := range map[string]string{"xn--mybnk-6ve.example.com": "pending_review", "shop.example.com": "issued"} {
		if c, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, k, name)}); c != 201 || out["status"] != want {
			t.Errorf("order for %s: %d %v, want %s", name, c, out, want)
		}
	}
}
