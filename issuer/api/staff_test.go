package api_test

import (
	"strings"
	"testing"
)

// accountID is the id of the account key belongs to.
func (e *env) accountID(t *testing.T, key string) string {
	t.Helper()
	_, who, _ := e.call(t, "GET", "/api/v1/account", key, nil)
	return who["id"].(string)
}

// TestAdminAloneCannotMakeReviewers: the finding of issue #13 ("an admin
// alone satisfies the EV two-person rule: create two reviewer accounts,
// approve with both → issued"). Under dual control the accounts stay
// subscribers until a second admin approves, and the admin who asked
// cannot approve.
func TestAdminAloneCannotMakeReviewers(t *testing.T) {
	e := newEnv(t)
	var keys, grants []string
	for _, email := range []string{"sock-a@example.org", "sock-b@example.org"} {
		c, out, _ := e.call(t, "POST", "/api/v1/admin/accounts", e.admin, map[string]string{"email": email, "role": "reviewer"})
		if c != 201 || out["role"] != "subscriber" {
			t.Fatalf("create: %d %v", c, out)
		}
		keys = append(keys, out["api_key"].(string))
		grants = append(grants, out["grant"].(map[string]any)["id"].(string))
	}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	_, ord := e.order(t, alice, "ev", evOrg, "www.example.com")
	id := ord["id"].(string)
	for _, k := range keys {
		if c, out := e.approve(t, k, id, map[string]string{}); c != 403 {
			t.Fatalf("approval by an account whose reviewer role is not approved: %d %v", c, out)
		}
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grants[0]+"/approve", e.admin, nil); c != 403 || !strings.Contains(out["detail"].(string), "dual control") {
		t.Fatalf("the asking admin approves: %d %v", c, out)
	}
	// The grantee cannot approve their own grant either, even once an admin.
	c, pending, _ := e.call(t, "GET", "/api/v1/admin/role-grants?status=pending", e.admin2, nil)
	if c != 200 || strings.Count(pending["_raw"].(string), `"status":"pending"`) != 2 {
		t.Fatalf("pending grants: %d %v", c, pending["_raw"])
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grants[0]+"/approve", e.admin2, nil); c != 200 || out["status"] != "approved" || out["decided_by"] == "" {
		t.Fatalf("the second admin approves: %d %v", c, out)
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grants[0]+"/approve", e.admin2, nil); c != 409 {
		t.Errorf("approving twice: %d %v", c, out)
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grants[1]+"/reject", e.admin2, nil); c != 200 || out["status"] != "rejected" {
		t.Fatalf("the second admin rejects: %d %v", c, out)
	}
	if c, out := e.approve(t, keys[0], id, map[string]string{}); c != 200 || out["approvals"] != 1.0 {
		t.Fatalf("the approved reviewer: %d %v", c, out)
	}
	if c, _ := e.approve(t, keys[1], id, map[string]string{}); c != 403 {
		t.Errorf("the rejected one approves: %d", c)
	}
	for kind, n := range map[string]int{"role.requested": 1, "role.approved": 1} {
		if got := len(e.audits(t, kind, e.accountID(t, keys[0]))); got != n {
			t.Errorf("%d %s audit entries, want %d", got, kind, n)
		}
	}
	// A subscriber and a reviewer cannot reach the grant endpoints.
	if c, _, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grants[1]+"/approve", keys[0], nil); c != 403 {
		t.Errorf("a reviewer on the grant endpoint: %d", c)
	}
}

// TestLinkedAccountsDoNotReview: the finding of issue #13 ("a reviewer
// can also open a subscriber account, order OV and approve it"), and the
// EV rule counting people: a reviewer does not decide on orders of an
// account with the same mailbox or the same person, nor gives the second
// approval when linked to the first approver.
func TestLinkedAccountsDoNotReview(t *testing.T) {
	e := newEnv(t)
	r1, r2 := e.reviewer(t, "r1@ca.example"), e.reviewer(t, "r2@ca.example")
	shop := e.newAccount(t, "R1+shop@ca.example") // r1's own mailbox
	e.validate(t, shop, "r1-shop.com")
	_, ord := e.order(t, shop, "ov", ovOrg, "www.r1-shop.com")
	id := ord["id"].(string)
	if c, out := e.approve(t, r1, id, map[string]string{}); c != 403 || !strings.Contains(out["detail"].(string), "same mailbox") {
		t.Fatalf("r1 approves an order from r1+shop@: %d %v", c, out)
	}
	if c, out := e.approve(t, r2, id, map[string]string{}); c != 200 || out["status"] != "issued" {
		t.Fatalf("an unlinked reviewer: %d %v", c, out)
	}

	// r3 is r1 under another address; the admins record it.
	r3 := e.reviewer(t, "r1.private@mail.example")
	for _, k := range []string{r1, r3} {
		if c, out, _ := e.call(t, "PUT", "/api/v1/admin/accounts/"+e.accountID(t, k)+"/person", e.admin, map[string]string{"person": "employee-7"}); c != 200 {
			t.Fatalf("set person: %d %v", c, out)
		}
	}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	_, ord = e.order(t, alice, "ev", evOrg, "www.example.com")
	id = ord["id"].(string)
	if c, out := e.approve(t, r1, id, map[string]string{}); c != 200 || out["approvals"] != 1.0 {
		t.Fatalf("first approval: %d %v", c, out)
	}
	if c, out := e.approve(t, r3, id, map[string]string{}); c != 409 || !strings.Contains(out["detail"].(string), "same person") {
		t.Fatalf("second approval by the same person: %d %v", c, out)
	}
	if c, out := e.approve(t, r2, id, map[string]string{}); c != 200 || out["status"] != "issued" {
		t.Fatalf("second approval by another person: %d %v", c, out)
	}
	if n := len(e.audits(t, "account.person_set", e.accountID(t, r3))); n != 1 {
		t.Errorf("%d account.person_set entries, want 1", n)
	}
}

// TestLinkedAdminCannotApproveGrant: the second admin must be another
// person than the one who asked.
func TestLinkedAdminCannotApproveGrant(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{e.admin, e.admin2} {
		if c, out, _ := e.call(t, "PUT", "/api/v1/admin/accounts/"+e.accountID(t, k)+"/person", e.admin, map[string]string{"person": "the-same-person"}); c != 200 {
			t.Fatalf("set person: %d %v", c, out)
		}
	}
	c, out, _ := e.call(t, "POST", "/api/v1/admin/accounts", e.admin, map[string]string{"email": "new-admin@example.org", "role": "admin"})
	if c != 201 {
		t.Fatalf("create: %d %v", c, out)
	}
	grant := out["grant"].(map[string]any)["id"].(string)
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grant+"/approve", e.admin2, nil); c != 403 || !strings.Contains(out["detail"].(string), "same person") {
		t.Fatalf("an admin linked to the asker approves: %d %v", c, out)
	}
}
