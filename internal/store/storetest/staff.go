package storetest

import (
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// testStaff: the person and creator of an account, and role grants
// decided once, an approval giving the role in the same step.
func testStaff(t *testing.T, s store.Store) {
	admin := seedAccount(t, s, 1)
	a := account(2)
	a.CreatedBy, a.Person = admin.ID, ""
	must(t, s.CreateAccount(ctx(t), a, apiKey(2, a.ID)), "creating an account with its creator")
	must(t, s.SetAccountPerson(ctx(t), a.ID, "employee-42"), "setting the person")
	wantErr(t, s.SetAccountPerson(ctx(t), "nobody", "x"), store.ErrNotFound, "setting the person of a missing account")
	got, err := s.Account(ctx(t), a.ID)
	must(t, err, "reading the account")
	a.Person = "employee-42"
	if d := diff(a, got); d != "" {
		t.Errorf("Account (-want +got):\n%s", d)
	}

	g := store.RoleGrant{ID: "grant-1", AccountID: a.ID, Role: store.RoleReviewer, RequestedBy: admin.ID,
		RequestedAt: us(t0), Status: store.GrantPending}
	must(t, s.CreateRoleGrant(ctx(t), g), "creating a grant")
	wantErr(t, s.CreateRoleGrant(ctx(t), g), store.ErrDuplicate, "creating it twice")
	other := g
	other.ID, other.AccountID = "grant-2", "nobody"
	if err := s.CreateRoleGrant(ctx(t), other); err == nil {
		t.Error("a grant for a missing account was stored")
	}
	rejected := g
	rejected.ID, rejected.RequestedAt = "grant-3", us(t0.Add(time.Minute))
	must(t, s.CreateRoleGrant(ctx(t), rejected), "creating a second grant")

	pending, err := s.RoleGrants(ctx(t), store.GrantPending)
	must(t, err, "listing pending grants")
	if d := diff([]store.RoleGrant{g, rejected}, pending); d != "" {
		t.Errorf("RoleGrants(pending) (-want +got):\n%s", d)
	}

	at := us(t0.Add(time.Hour))
	decided, err := s.DecideRoleGrant(ctx(t), g.ID, store.GrantApproved, "admin-2", at)
	must(t, err, "approving")
	want := g
	want.Status, want.DecidedBy, want.DecidedAt = store.GrantApproved, "admin-2", at
	if d := diff(want, decided); d != "" {
		t.Errorf("DecideRoleGrant (-want +got):\n%s", d)
	}
	if got, _ := s.Account(ctx(t), a.ID); got.Role != store.RoleReviewer {
		t.Errorf("approved, the account's role is %s", got.Role)
	}
	_, err = s.DecideRoleGrant(ctx(t), g.ID, store.GrantRejected, "admin-3", at)
	wantErr(t, err, store.ErrConflict, "deciding a decided grant")
	_, err = s.DecideRoleGrant(ctx(t), "grant-9", store.GrantApproved, "admin-2", at)
	wantErr(t, err, store.ErrNotFound, "deciding a missing grant")

	r, err := s.DecideRoleGrant(ctx(t), rejected.ID, store.GrantRejected, "admin-2", at)
	must(t, err, "rejecting")
	if r.Status != store.GrantRejected {
		t.Errorf("rejected grant: %+v", r)
	}
	stored, err := s.RoleGrant(ctx(t), g.ID)
	must(t, err, "reading a grant")
	if d := diff(want, stored); d != "" {
		t.Errorf("RoleGrant (-want +got):\n%s", d)
	}
	all, err := s.RoleGrants(ctx(t), "")
	must(t, err, "listing every grant")
	if len(all) != 2 {
		t.Errorf("RoleGrants(all) = %d grants, want 2", len(all))
	}
	if p, _ := s.RoleGrants(ctx(t), store.GrantPending); len(p) != 0 {
		t.Errorf("still pending: %v", p)
	}
}
