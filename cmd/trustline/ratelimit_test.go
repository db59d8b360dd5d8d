package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRateLimits: the finding of issue #13 ("no rate limits: 20 validation
// mails to the same postmaster@ address in a row, unlimited sign-ups"),
// through `trustline dev` with small limits: each kind answers 429 with
// Retry-After once over, as problem+json saying what and when.
func TestRateLimits(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dev.yaml")
	if err := os.WriteFile(cfg, []byte(`rate_limits:
  signups_per_source: {max: 3, per: 1h}
  mails_per_address: {max: 2, per: 24h}
  orders_per_account: {max: 2, per: 1h}
  failed_auth_per_source: {max: 3, per: 10m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := startDev(t, "--data", data, "--config", cfg)
	post := func(path, key string, body any) (int, map[string]any, http.Header) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", p.api+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]any{}
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out, resp.Header
	}
	limited := func(what string, c int, out map[string]any, h http.Header, say string) {
		t.Helper()
		secs, _ := strconv.Atoi(h.Get("Retry-After"))
		if c != 429 || secs < 1 || !strings.Contains(out["detail"].(string), say) {
			t.Errorf("%s: %d Retry-After %q %v, want 429 saying %q", what, c, h.Get("Retry-After"), out, say)
		}
	}

	var key string
	for i := range 3 {
		c, out, _ := post("/api/v1/accounts", "", map[string]string{"email": "user" + strconv.Itoa(i) + "@example.com"})
		if c != 201 {
			t.Fatalf("sign-up %d: %d %v", i, c, out)
		}
		key = out["api_key"].(string)
	}
	c, out, h := post("/api/v1/accounts", "", map[string]string{"email": "user9@example.com"})
	limited("fourth sign-up", c, out, h, "sign-ups from your address")

	for i := range 2 {
		if c, out, _ := post("/api/v1/validations", key, map[string]string{"domain": "example.com", "method": "email", "email": "postmaster@example.com"}); c != 201 {
			t.Fatalf("validation mail %d: %d %v", i, c, out)
		}
	}
	c, out, h = post("/api/v1/validations", key, map[string]string{"domain": "example.com", "method": "email", "email": "postmaster@example.com"})
	limited("third mail to postmaster@", c, out, h, "validation mails to postmaster@example.com")

	for i := range 2 {
		if c, out, _ := post("/api/v1/orders", key, map[string]string{"csr": "not a CSR"}); c != 400 {
			t.Fatalf("order %d: %d %v", i, c, out)
		}
	}
	c, out, h = post("/api/v1/orders", key, map[string]string{"csr": "not a CSR"})
	limited("third order", c, out, h, "orders from this account")

	for i := range 3 {
		if c, _, _ := post("/api/v1/orders", "tl_0011223344556677_wrong", map[string]string{}); c != 401 {
			t.Fatalf("wrong key %d: %d", i, c)
		}
	}
	c, out, h = post("/api/v1/orders", "tl_0011223344556677_wrong", map[string]string{})
	limited("fourth wrong key", c, out, h, "failed sign-in attempts from your address")
	// The right key still works from the same address: only failures are counted.
	if c, _, _ := post("/api/v1/account/keys", key, nil); c != 201 {
		t.Errorf("the right key after failures from the same address: %d", c)
	}
}
