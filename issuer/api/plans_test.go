package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
)

// TestPlannedRevocations: an admin plans the revocation of certificates by
// a deadline, lists the plans a page at a time and cancels one; the
// requests a plan must not pass are refused with nothing recorded, and
// subscribers cannot plan at all.
func TestPlannedRevocations(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	var serials []string
	for i := range 3 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]any{"csr": csrPEM(t, k, fmt.Sprintf("w%d.example.com", i)), "profile": "dv"})
		if c != 201 || out["status"] != "issued" {
			t.Fatalf("order: %d %v", c, out)
		}
		serials = append(serials, out["serial"].(string))
	}
	const path = "/api/v1/admin/planned-revocations"
	deadline := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	plan := func(key string, body map[string]any) (int, map[string]any) {
		c, out, _ := e.call(t, "POST", path, key, body)
		return c, out
	}
	good := map[string]any{"serials": serials[:2], "revoke_by": deadline, "reason": "superseded", "explanation_url": "https://status.example.net/incident-7"}
	if c, _ := plan(alice, good); c != 403 {
		t.Fatalf("a subscriber planning: %d, want 403", c)
	}
	if c, _, _ := e.call(t, "GET", path, alice, nil); c != 403 {
		t.Fatalf("a subscriber listing: %d, want 403", c)
	}
	for name, tc := range map[string]struct {
		body map[string]any
		code int
		want string
	}{
		"no serials":     {map[string]any{"serials": []string{}, "revoke_by": deadline}, 400, "at least one"},
		"past deadline":  {map[string]any{"serials": serials[:1], "revoke_by": time.Now().Add(-time.Minute)}, 400, "future"},
		"far deadline":   {map[string]any{"serials": serials[:1], "revoke_by": time.Now().Add(60 * 24 * time.Hour)}, 400, "days ahead"},
		"no deadline":    {map[string]any{"serials": serials[:1]}, 400, "revoke_by"},
		"CA reason":      {map[string]any{"serials": serials[:1], "revoke_by": deadline, "reason": "cACompromise"}, 400, "BR 7.2.2"},
		"unknown reason": {map[string]any{"serials": serials[:1], "revoke_by": deadline, "reason": "bored"}, 400, "unknown reason"},
		"http url":       {map[string]any{"serials": serials[:1], "revoke_by": deadline, "explanation_url": "http://x.example/"}, 400, "https"},
		"bad serial":     {map[string]any{"serials": []string{"zz"}, "revoke_by": deadline}, 400, "not a serial"},
		"unknown serial": {map[string]any{"serials": []string{serials[0], "7777777777"}, "revoke_by": deadline}, 404, "7777777777"},
		"unknown field":  {map[string]any{"serials": serials[:1], "revoke_by": deadline, "when": "soon"}, 400, "unknown field"},
	} {
		c, out := plan(e.admin, tc.body)
		if c != tc.code || !strings.Contains(fmt.Sprint(out["detail"]), tc.want) {
			t.Errorf("%s: %d %v, want %d mentioning %q", name, c, out["detail"], tc.code, tc.want)
		}
	}
	if c, out, _ := e.call(t, "GET", path, e.admin, nil); c != 200 || len(out["planned_revocations"].([]any)) != 0 {
		t.Fatalf("refused plans recorded something: %d %v", c, out)
	}

	c, out := plan(e.admin, good)
	if c != 201 || len(out["planned_revocations"].([]any)) != 2 {
		t.Fatalf("plan: %d %v", c, out)
	}
	later := deadline.Add(time.Hour)
	if c, out := plan(e.admin, map[string]any{"serials": serials[2:], "revoke_by": later}); c != 201 {
		t.Fatalf("second plan: %d %v", c, out)
	}
	if n := len(e.audits(t, "revocation.planned", "")); n != 2 {
		t.Errorf("revocation.planned audit entries: %d, want 2", n)
	}
	// Two pages of two and one, earliest deadline first.
	c, page1, _ := e.call(t, "GET", path+"?limit=2", e.admin, nil)
	list, _ := page1["planned_revocations"].([]any)
	if c != 200 || len(list) != 2 || page1["next"] == nil {
		t.Fatalf("page 1: %d %v", c, page1)
	}
	first := list[0].(map[string]any)
	if first["reason"] != "superseded" || first["explanation_url"] != good["explanation_url"] || first["revoke_by"] != deadline.Format(time.RFC3339) {
		t.Errorf("a plan reads %v", first)
	}
	c, page2, _ := e.call(t, "GET", path+"?limit=2&after="+page1["next"].(string), e.admin, nil)
	list, _ = page2["planned_revocations"].([]any)
	if c != 200 || len(list) != 1 || list[0].(map[string]any)["serial"] != serials[2] || page2["next"] != nil {
		t.Fatalf("page 2: %d %v", c, page2)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?after=!!!", "?after=bm9wZQ"} {
		if c, _, _ := e.call(t, "GET", path+q, e.admin, nil); c != 400 {
			t.Errorf("GET %s: %d, want 400", q, c)
		}
	}

	if c, _, _ := e.call(t, "DELETE", path+"/"+serials[2], alice, nil); c != 403 {
		t.Errorf("a subscriber cancelling: %d, want 403", c)
	}
	if c, _, _ := e.call(t, "DELETE", path+"/"+serials[2], e.admin, nil); c != 204 {
		t.Fatalf("cancel: %d", c)
	}
	if c, _, _ := e.call(t, "DELETE", path+"/"+serials[2], e.admin, nil); c != 404 {
		t.Errorf("cancelling again: %d, want 404", c)
	}
	if _, err := e.st.PlannedRevocation(context.Background(), serial.Serial(serials[2])); err == nil {
		t.Error("the cancelled plan is still stored")
	}
	if n := len(e.audits(t, "revocation.plan_cancelled", serials[2])); n != 1 {
		t.Errorf("revocation.plan_cancelled audit entries: %d, want 1", n)
	}
}
