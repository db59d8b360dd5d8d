package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// keysOf lists the keys the caller sees at path.
func (e *env) keysOf(t *testing.T, key, path string) []map[string]any {
	t.Helper()
	c, out, _ := e.call(t, "GET", path, key, nil)
	if c != 200 {
		t.Fatalf("GET %s: %d %v", path, c, out)
	}
	var keys []map[string]any
	if err := json.Unmarshal([]byte(out["_raw"].(string)), &keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestAPIKeyRotation: the finding of issue #13 ("API keys cannot be
// rotated or revoked"). A subscriber creates a second key, revokes the
// first, rotates in one call; a revoked key authenticates no one; the
// last active key cannot be revoked by its owner; an admin lists and
// revokes another account's keys; each change is audited.
func TestAPIKeyRotation(t *testing.T) {
	e := newEnv(t)
	first := e.newAccount(t, "rotate@example.com")
	if c, _, _ := e.call(t, "GET", "/api/v1/account", first, nil); c != 200 {
		t.Fatal("the first key does not work")
	}
	_, who, _ := e.call(t, "GET", "/api/v1/account", first, nil)
	acct := who["id"].(string)

	keys := e.keysOf(t, first, "/api/v1/account/keys")
	if len(keys) != 1 || keys[0]["current"] != true {
		t.Fatalf("keys: %v", keys)
	}
	firstID := keys[0]["id"].(string)
	if c, out, _ := e.call(t, "DELETE", "/api/v1/account/keys/"+firstID, first, nil); c != 409 || !strings.Contains(out["detail"].(string), "last active") {
		t.Errorf("revoking the last key: %d %v", c, out)
	}

	c, out, _ := e.call(t, "POST", "/api/v1/account/keys", first, nil)
	second, _ := out["api_key"].(string)
	if c != 201 || !strings.HasPrefix(second, "tl_") {
		t.Fatalf("create a key: %d %v", c, out)
	}
	if c, out, _ := e.call(t, "DELETE", "/api/v1/account/keys/"+firstID, second, nil); c != 200 || out["revoked_at"] == nil {
		t.Fatalf("revoking the first key: %d %v", c, out)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/account", first, nil); c != 401 {
		t.Errorf("a revoked key authenticated: %d", c)
	}

	c, out, _ = e.call(t, "POST", "/api/v1/account/keys/rotate", second, nil)
	third, _ := out["api_key"].(string)
	if c != 201 || third == "" || third == second {
		t.Fatalf("rotate: %d %v", c, out)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/account", second, nil); c != 401 {
		t.Errorf("the key rotated away still authenticates: %d", c)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/account", third, nil); c != 200 {
		t.Errorf("the rotated-in key does not authenticate: %d", c)
	}

	// Another account's key is not found through one's own endpoint.
	mallory := e.newAccount(t, "mallory@example.com")
	if c, _, _ := e.call(t, "DELETE", "/api/v1/account/keys/"+keys[0]["id"].(string), mallory, nil); c != 404 {
		t.Errorf("revoking another account's key: %d, want 404", c)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/admin/accounts/"+acct+"/keys", mallory, nil); c != 403 {
		t.Errorf("a subscriber on the admin endpoint: %d, want 403", c)
	}

	all := e.keysOf(t, e.admin, "/api/v1/admin/accounts/"+acct+"/keys")
	if len(all) != 3 || all[0]["revoked_at"] == nil || all[1]["revoked_at"] == nil || all[2]["revoked_at"] != nil {
		t.Fatalf("admin's list: %v", all)
	}
	// An admin may revoke the last active key, shutting a compromised account out.
	if c, out, _ := e.call(t, "DELETE", "/api/v1/admin/accounts/"+acct+"/keys/"+all[2]["id"].(string), e.admin, nil); c != 200 {
		t.Fatalf("admin revoking the last key: %d %v", c, out)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/account", third, nil); c != 401 {
		t.Errorf("a key the admin revoked still authenticates: %d", c)
	}
	created, revoked := e.audits(t, "apikey.created", acct), e.audits(t, "apikey.revoked", acct)
	if len(created) != 2 || len(revoked) != 3 {
		t.Errorf("audit: %d apikey.created, %d apikey.revoked, want 2 and 3", len(created), len(revoked))
	}
	for _, a := range append(created, revoked...) {
		if strings.Contains(string(a.Payload), "tl_") {
			t.Errorf("a secret reached the audit log: %s", a.Payload)
		}
	}
}
