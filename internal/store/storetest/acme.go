package storetest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// thumbprint is the key thumbprint of test ACME account i: base64url
// SHA-256, as RFC 7638 makes them.
func thumbprint(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("acme-account-key-%d", i)))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// acmeAccount is ACME account i, acting for accountID, with every field
// set but EABKeyID.
func acmeAccount(i int, accountID string) store.ACMEAccount {
	return store.ACMEAccount{
		ID:         fmt.Sprintf("acme-acct-%d", i),
		AccountID:  accountID,
		Thumbprint: thumbprint(i),
		JWK:        []byte(fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"x-%d","y":"y-%d"}`, i, i)),
		Status:     store.ACMEAccountValid,
		Contact:    []string{fmt.Sprintf("mailto:admin%d@example.com", i), fmt.Sprintf("mailto:ops%d@example.com", i)},
		CreatedAt:  us(t0.Add(time.Duration(i) * time.Second)),
		Version:    1,
	}
}

// eabKey is binding key i for accountID, unused, good for a week.
func eabKey(i int, accountID string) store.ACMEEABKey {
	return store.ACMEEABKey{
		ID:        fmt.Sprintf("eab-%d", i),
		AccountID: accountID,
		CreatedBy: accountID,
		CreatedAt: us(t0),
		ExpiresAt: us(t0.Add(7 * 24 * time.Hour)),
	}
}

// acmeAuthz is a pending authorization i of an ACME account for domain.
func acmeAuthz(i int, acmeAccountID, domain string, wildcard bool) store.ACMEAuthorization {
	created := us(t0.Add(time.Duration(i) * time.Minute))
	return store.ACMEAuthorization{
		ID:            fmt.Sprintf("authz-%d", i),
		ACMEAccountID: acmeAccountID,
		Domain:        domain,
		Wildcard:      wildcard,
		Token:         fmt.Sprintf("token-%d-with-128-bits-of-entropy", i),
		Status:        store.ACMEAuthzPending,
		ExpiresAt:     created.Add(7 * 24 * time.Hour),
		CreatedAt:     created,
		Version:       1,
	}
}

// acmeOrder is a pending order i of an ACME account, for the identifiers
// of authzs (one name each, in their order), created in minute i.
func acmeOrder(i int, acmeAccountID string, authzs ...store.ACMEAuthorization) store.ACMEOrder {
	created := us(t0.Add(time.Duration(i) * time.Minute))
	o := store.ACMEOrder{
		ID:            fmt.Sprintf("acme-order-%d", i),
		ACMEAccountID: acmeAccountID,
		Status:        store.ACMEOrderPending,
		ExpiresAt:     created.Add(7 * 24 * time.Hour),
		CreatedAt:     created,
		Version:       1,
	}
	for _, az := range authzs {
		name := az.Domain
		if az.Wildcard {
			name = "*." + name
		}
		o.Names = append(o.Names, name)
		o.AuthzIDs = append(o.AuthzIDs, az.ID)
	}
	return o
}

// seedACMEAccount creates ACME account i for a new Trustline account i.
func seedACMEAccount(t *testing.T, s store.Store, i int) store.ACMEAccount {
	t.Helper()
	a := acmeAccount(i, seedAccount(t, s, i).ID)
	must(t, s.CreateACMEAccount(ctx(t), a), "creating ACME account")
	return a
}

// wantACMEAccount fails unless the store holds want under its id and its
// thumbprint.
func wantACMEAccount(t *testing.T, s store.Store, want store.ACMEAccount, doing string) {
	t.Helper()
	got, err := s.ACMEAccount(ctx(t), want.ID)
	must(t, err, doing+": reading by id")
	if d := diff(want, got); d != "" {
		t.Errorf("%s: ACMEAccount (-want +got):\n%s", doing, d)
	}
	got, err = s.ACMEAccountByThumbprint(ctx(t), want.Thumbprint)
	must(t, err, doing+": reading by thumbprint")
	if d := diff(want, got); d != "" {
		t.Errorf("%s: ACMEAccountByThumbprint (-want +got):\n%s", doing, d)
	}
}

// wantNoACMEAccount fails if the store holds an ACME account with that id.
func wantNoACMEAccount(t *testing.T, s store.Store, id, doing string) {
	t.Helper()
	_, err := s.ACMEAccount(ctx(t), id)
	wantErr(t, err, store.ErrNotFound, doing+": the ACME account must not be stored")
}

func testACMEAccounts(t *testing.T, s store.Store) {
	owner := seedAccount(t, s, 1)
	a := acmeAccount(1, owner.ID)
	must(t, s.CreateACMEAccount(ctx(t), a), "creating ACME account")
	wantACMEAccount(t, s, a, "after creation")

	noContact := acmeAccount(2, owner.ID)
	noContact.Contact, noContact.Status = nil, store.ACMEAccountDeactivated
	must(t, s.CreateACMEAccount(ctx(t), noContact), "creating an ACME account without contact")
	wantACMEAccount(t, s, noContact, "without contact")

	sameID := acmeAccount(3, owner.ID)
	sameID.ID = a.ID
	wantErr(t, s.CreateACMEAccount(ctx(t), sameID), store.ErrDuplicate, "creating an ACME account with a stored id")
	sameKey := acmeAccount(3, owner.ID)
	sameKey.Thumbprint = a.Thumbprint
	wantErr(t, s.CreateACMEAccount(ctx(t), sameKey), store.ErrDuplicate, "creating an ACME account with a stored thumbprint")
	wantNoACMEAccount(t, s, sameKey.ID, "after a duplicate thumbprint")
	wantACMEAccount(t, s, a, "after the duplicates")

	orphan := acmeAccount(4, "nobody")
	if err := s.CreateACMEAccount(ctx(t), orphan); err == nil {
		t.Error("an ACME account for a missing Trustline account was stored")
	}
	wantNoACMEAccount(t, s, orphan.ID, "for a missing Trustline account")

	_, err := s.ACMEAccount(ctx(t), "acme-acct-9")
	wantErr(t, err, store.ErrNotFound, "reading a missing ACME account")
	_, err = s.ACMEAccountByThumbprint(ctx(t), thumbprint(9))
	wantErr(t, err, store.ErrNotFound, "reading the ACME account of an unknown key")
}

// testACMEEABKeys: binding keys round trip, and one binds one ACME account
// only, marked used in the transaction that creates it.
func testACMEEABKeys(t *testing.T, s store.Store) {
	owner := seedAccount(t, s, 1)
	other := seedAccount(t, s, 2)
	k := eabKey(1, owner.ID)
	must(t, s.CreateACMEEABKey(ctx(t), k), "creating a binding key")
	got, err := s.ACMEEABKey(ctx(t), k.ID)
	must(t, err, "reading the binding key")
	if d := diff(k, got); d != "" {
		t.Errorf("ACMEEABKey (-want +got):\n%s", d)
	}
	wantErr(t, s.CreateACMEEABKey(ctx(t), k), store.ErrDuplicate, "creating it twice")
	ov := eabKey(6, owner.ID)
	ov.CertProfile, ov.Organization = "ov", []byte(`{"name":"Example Ltd","country":"GB"}`)
	must(t, s.CreateACMEEABKey(ctx(t), ov), "creating an OV binding key")
	if got, err := s.ACMEEABKey(ctx(t), ov.ID); err != nil || diff(ov, got) != "" {
		t.Errorf("the OV binding key reads back (-want +got):\n%s (%v)", diff(ov, got), err)
	}
	_, err = s.ACMEEABKey(ctx(t), "eab-9")
	wantErr(t, err, store.ErrNotFound, "reading a missing binding key")
	if err := s.CreateACMEEABKey(ctx(t), eabKey(8, "nobody")); err == nil {
		t.Error("a binding key for a missing Trustline account was stored")
	}
	used := eabKey(7, owner.ID)
	used.UsedAt = us(t0.Add(time.Hour))
	must(t, s.CreateACMEEABKey(ctx(t), used), "creating a used binding key")
	if got, err := s.ACMEEABKey(ctx(t), used.ID); err != nil || !got.UsedAt.Equal(used.UsedAt) {
		t.Errorf("the used binding key reads back %+v, %v", got, err)
	}

	wantUnused := func(doing string) {
		t.Helper()
		got, err := s.ACMEEABKey(ctx(t), k.ID)
		must(t, err, doing+": reading the binding key")
		if d := diff(k, got); d != "" {
			t.Errorf("%s: the binding key changed (-want +got):\n%s", doing, d)
		}
	}

	// Failures leave the key unused.
	unknown := acmeAccount(3, owner.ID)
	unknown.EABKeyID = "eab-9"
	wantErr(t, s.CreateACMEAccount(ctx(t), unknown), store.ErrNotFound, "binding with an unknown key")
	wantNoACMEAccount(t, s, unknown.ID, "bound with an unknown key")
	stranger := acmeAccount(4, other.ID)
	stranger.EABKeyID = k.ID
	if err := s.CreateACMEAccount(ctx(t), stranger); err == nil {
		t.Error("an ACME account for one Trustline account was bound with another's key")
	}
	wantNoACMEAccount(t, s, stranger.ID, "bound with another account's key")
	wantUnused("after binding another account")
	must(t, s.CreateACMEAccount(ctx(t), acmeAccount(6, owner.ID)), "creating an ACME account without binding")
	clash := acmeAccount(5, owner.ID)
	clash.EABKeyID, clash.Thumbprint = k.ID, thumbprint(6)
	wantErr(t, s.CreateACMEAccount(ctx(t), clash), store.ErrDuplicate, "binding an account whose key is registered")
	wantUnused("after a duplicate thumbprint")
	timeless := acmeAccount(10, owner.ID)
	timeless.EABKeyID, timeless.CreatedAt = k.ID, time.Time{}
	if err := s.CreateACMEAccount(ctx(t), timeless); err == nil {
		t.Error("a binding key was marked used at the zero time")
	}
	wantUnused("after binding at the zero time")

	a := acmeAccount(1, owner.ID)
	a.EABKeyID = k.ID
	must(t, s.CreateACMEAccount(ctx(t), a), "binding with the key")
	wantACMEAccount(t, s, a, "bound")
	want := k
	want.UsedAt = a.CreatedAt
	got, err = s.ACMEEABKey(ctx(t), k.ID)
	must(t, err, "reading the used binding key")
	if d := diff(want, got); d != "" {
		t.Errorf("the binding key after binding (-want +got):\n%s", d)
	}

	again := acmeAccount(2, owner.ID)
	again.EABKeyID = k.ID
	wantErr(t, s.CreateACMEAccount(ctx(t), again), store.ErrConflict, "binding a second account with the key")
	wantNoACMEAccount(t, s, again.ID, "bound with a used key")
	// The same key registered again is a duplicate, whatever its binding
	// key: the caller answers with the account that exists.
	retry := a
	retry.ID = "acme-acct-11"
	wantErr(t, s.CreateACMEAccount(ctx(t), retry), store.ErrDuplicate, "registering a bound key again")
	if got, _ := s.ACMEEABKey(ctx(t), k.ID); !got.UsedAt.Equal(a.CreatedAt) {
		t.Errorf("the binding key's UsedAt moved to %v", got.UsedAt)
	}
	late := acmeAccount(12, owner.ID)
	late.EABKeyID = used.ID
	wantErr(t, s.CreateACMEAccount(ctx(t), late), store.ErrConflict, "binding with a key created used")
}

func testUpdateACMEAccount(t *testing.T, s store.Store) {
	a := seedACMEAccount(t, s, 1)
	b := seedACMEAccount(t, s, 2)

	rolled := a
	rolled.Thumbprint, rolled.JWK = thumbprint(3), []byte(`{"crv":"P-256","kty":"EC","x":"new-x","y":"new-y"}`)
	rolled.Contact = []string{"mailto:new@example.com"}
	got, err := s.UpdateACMEAccount(ctx(t), rolled)
	must(t, err, "rolling the key over")
	want := rolled
	want.Version = 2
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateACMEAccount returned (-want +got):\n%s", d)
	}
	wantACMEAccount(t, s, want, "after the rollover")
	_, err = s.ACMEAccountByThumbprint(ctx(t), a.Thumbprint)
	wantErr(t, err, store.ErrNotFound, "reading by the old key")

	stale := a
	stale.Status = store.ACMEAccountDeactivated
	_, err = s.UpdateACMEAccount(ctx(t), stale)
	wantErr(t, err, store.ErrConflict, "updating with a stale version")
	wantACMEAccount(t, s, want, "after a stale update")

	taken := want
	taken.Thumbprint = b.Thumbprint
	_, err = s.UpdateACMEAccount(ctx(t), taken)
	wantErr(t, err, store.ErrDuplicate, "rolling over to another account's key")
	wantACMEAccount(t, s, want, "after a rollover to a key in use")
	wantACMEAccount(t, s, b, "the other account after a rollover to its key")

	deactivated := want
	deactivated.Status, deactivated.Contact = store.ACMEAccountDeactivated, nil
	got, err = s.UpdateACMEAccount(ctx(t), deactivated)
	must(t, err, "deactivating")
	deactivated.Version = 3
	if d := diff(deactivated, got); d != "" {
		t.Errorf("UpdateACMEAccount returned (-want +got):\n%s", d)
	}
	wantACMEAccount(t, s, deactivated, "deactivated")

	_, err = s.UpdateACMEAccount(ctx(t), acmeAccount(9, a.AccountID))
	wantErr(t, err, store.ErrNotFound, "updating a missing ACME account")
}

// wantACMEAuthz fails unless the store holds want under its id.
func wantACMEAuthz(t *testing.T, s store.Store, want store.ACMEAuthorization, doing string) {
	t.Helper()
	got, err := s.ACMEAuthorization(ctx(t), want.ID)
	must(t, err, doing+": reading the authorization")
	if d := diff(want, got); d != "" {
		t.Errorf("%s: ACMEAuthorization (-want +got):\n%s", doing, d)
	}
}

// wantACMEOrder fails unless the store holds want under its id.
func wantACMEOrder(t *testing.T, s store.Store, want store.ACMEOrder, doing string) {
	t.Helper()
	got, err := s.ACMEOrder(ctx(t), want.ID)
	must(t, err, doing+": reading the order")
	if d := diff(want, got); d != "" {
		t.Errorf("%s: ACMEOrder (-want +got):\n%s", doing, d)
	}
}

// testACMEOrders: an order and its new authorizations are stored together,
// and every authorization an order names must be stored for its account.
func testACMEOrders(t *testing.T, s store.Store) {
	acct := seedACMEAccount(t, s, 1)
	other := seedACMEAccount(t, s, 2)

	plain := acmeAuthz(1, acct.ID, "example.com", false)
	wild := acmeAuthz(2, acct.ID, "example.com", true)
	wild.Status, wild.Challenge, wild.ValidationID = store.ACMEAuthzValid, "dns-01", "val-1"
	o := acmeOrder(1, acct.ID, plain, wild)
	o.Status, o.Profile, o.Replaces = store.ACMEOrderInvalid, "dv-90d", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
	o.OrderID, o.Error = "order-1", []byte(`{"type":"urn:ietf:params:acme:error:rejectedIdentifier"}`)
	must(t, s.CreateACMEOrder(ctx(t), o, []store.ACMEAuthorization{plain, wild}), "creating an order")
	wantACMEOrder(t, s, o, "after creation")
	wantACMEAuthz(t, s, plain, "after creation")
	wantACMEAuthz(t, s, wild, "after creation")

	// A second order reuses one authorization and brings a new one.
	www := acmeAuthz(3, acct.ID, "www.example.com", false)
	o2 := acmeOrder(2, acct.ID, www, plain)
	must(t, s.CreateACMEOrder(ctx(t), o2, []store.ACMEAuthorization{www}), "creating an order reusing an authorization")
	wantACMEOrder(t, s, o2, "reusing an authorization")
	wantACMEAuthz(t, s, www, "reusing an authorization")

	// Failures store neither the order nor its new authorizations.
	fresh := acmeAuthz(4, acct.ID, "api.example.com", false)
	dup := acmeOrder(3, acct.ID, fresh)
	dup.ID = o.ID
	wantErr(t, s.CreateACMEOrder(ctx(t), dup, []store.ACMEAuthorization{fresh}), store.ErrDuplicate, "creating an order with a stored id")
	_, err := s.ACMEAuthorization(ctx(t), fresh.ID)
	wantErr(t, err, store.ErrNotFound, "the authorization of a duplicate order must not be stored")
	wantACMEOrder(t, s, o, "after a duplicate")

	missing := acmeOrder(4, acct.ID, fresh, acmeAuthz(9, acct.ID, "mail.example.com", false))
	wantErr(t, s.CreateACMEOrder(ctx(t), missing, []store.ACMEAuthorization{fresh}), store.ErrNotFound, "creating an order naming a missing authorization")
	foreign := acmeOrder(5, other.ID, plain)
	wantErr(t, s.CreateACMEOrder(ctx(t), foreign, nil), store.ErrNotFound, "creating an order naming another account's authorization")
	unnamed := acmeOrder(6, acct.ID, plain)
	if err := s.CreateACMEOrder(ctx(t), unnamed, []store.ACMEAuthorization{fresh}); err == nil {
		t.Error("an order was stored with an authorization it does not name")
	}
	orphan := acmeOrder(7, "acme-acct-9", acmeAuthz(7, "acme-acct-9", "orphan.example.com", false))
	if err := s.CreateACMEOrder(ctx(t), orphan, []store.ACMEAuthorization{acmeAuthz(7, "acme-acct-9", "orphan.example.com", false)}); err == nil {
		t.Error("an order of a missing ACME account was stored")
	}
	for _, id := range []string{missing.ID, foreign.ID, unnamed.ID, orphan.ID} {
		_, err := s.ACMEOrder(ctx(t), id)
		wantErr(t, err, store.ErrNotFound, "a refused order must not be stored: "+id)
	}
	for _, id := range []string{fresh.ID, "authz-7"} {
		_, err := s.ACMEAuthorization(ctx(t), id)
		wantErr(t, err, store.ErrNotFound, "the authorization of a refused order must not be stored: "+id)
	}

	_, err = s.ACMEOrder(ctx(t), "acme-order-9")
	wantErr(t, err, store.ErrNotFound, "reading a missing order")
	_, err = s.ACMEAuthorization(ctx(t), "authz-9")
	wantErr(t, err, store.ErrNotFound, "reading a missing authorization")
}

func testUpdateACMEOrder(t *testing.T, s store.Store) {
	acct := seedACMEAccount(t, s, 1)
	az := acmeAuthz(1, acct.ID, "example.com", false)
	o := acmeOrder(1, acct.ID, az)
	must(t, s.CreateACMEOrder(ctx(t), o, []store.ACMEAuthorization{az}), "creating an order")

	upd := o
	upd.Status, upd.OrderID = store.ACMEOrderValid, "order-1"
	upd.ExpiresAt = us(t0.Add(48 * time.Hour))
	got, err := s.UpdateACMEOrder(ctx(t), upd)
	must(t, err, "updating the order")
	want := upd
	want.Version = 2
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateACMEOrder returned (-want +got):\n%s", d)
	}
	wantACMEOrder(t, s, want, "after the update")

	stale := o
	stale.Status, stale.Error = store.ACMEOrderInvalid, []byte(`{"type":"urn:ietf:params:acme:error:badCSR"}`)
	_, err = s.UpdateACMEOrder(ctx(t), stale)
	wantErr(t, err, store.ErrConflict, "updating with a stale version")
	wantACMEOrder(t, s, want, "after a stale update")

	failed := want
	failed.Status, failed.Error = store.ACMEOrderInvalid, []byte(`{"type":"urn:ietf:params:acme:error:badCSR"}`)
	got, err = s.UpdateACMEOrder(ctx(t), failed)
	must(t, err, "recording an error")
	failed.Version = 3
	if d := diff(failed, got); d != "" {
		t.Errorf("UpdateACMEOrder returned (-want +got):\n%s", d)
	}
	wantACMEOrder(t, s, failed, "after recording an error")

	_, err = s.UpdateACMEOrder(ctx(t), acmeOrder(9, acct.ID))
	wantErr(t, err, store.ErrNotFound, "updating a missing order")
}

func testUpdateACMEAuthorization(t *testing.T, s store.Store) {
	acct := seedACMEAccount(t, s, 1)
	az := acmeAuthz(1, acct.ID, "example.com", true)
	must(t, s.CreateACMEOrder(ctx(t), acmeOrder(1, acct.ID, az), []store.ACMEAuthorization{az}), "creating an order")

	upd := az
	upd.Status, upd.Challenge, upd.ValidationID = store.ACMEAuthzValid, "dns-01", "val-1"
	upd.ExpiresAt = us(t0.Add(30 * 24 * time.Hour))
	got, err := s.UpdateACMEAuthorization(ctx(t), upd)
	must(t, err, "updating the authorization")
	want := upd
	want.Version = 2
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateACMEAuthorization returned (-want +got):\n%s", d)
	}
	wantACMEAuthz(t, s, want, "after the update")

	stale := az
	stale.Status = store.ACMEAuthzInvalid
	_, err = s.UpdateACMEAuthorization(ctx(t), stale)
	wantErr(t, err, store.ErrConflict, "updating with a stale version")
	wantACMEAuthz(t, s, want, "after a stale update")

	deactivated := want
	deactivated.Status = store.ACMEAuthzDeactivated
	got, err = s.UpdateACMEAuthorization(ctx(t), deactivated)
	must(t, err, "deactivating")
	deactivated.Version = 3
	if d := diff(deactivated, got); d != "" {
		t.Errorf("UpdateACMEAuthorization returned (-want +got):\n%s", d)
	}

	_, err = s.UpdateACMEAuthorization(ctx(t), acmeAuthz(9, acct.ID, "example.org", false))
	wantErr(t, err, store.ErrNotFound, "updating a missing authorization")
}

// testListACMEOrders: an account's orders newest first, at most the limit,
// 100 by default.
func testListACMEOrders(t *testing.T, s store.Store) {
	acct := seedACMEAccount(t, s, 1)
	other := seedACMEAccount(t, s, 2)
	az := acmeAuthz(1, acct.ID, "example.com", false)
	otherAz := acmeAuthz(2, other.ID, "example.org", false)
	must(t, s.CreateACMEOrder(ctx(t), acmeOrder(200, other.ID, otherAz), []store.ACMEAuthorization{otherAz}), "creating another account's order, the newest of all")

	// 101 orders sharing one authorization, which the first stored
	// brings, stored out of creation order (37 k mod 101 visits them all).
	var newestFirst []store.ACMEOrder
	for i := 101; i >= 1; i-- {
		newestFirst = append(newestFirst, acmeOrder(i, acct.ID, az))
	}
	brought := []store.ACMEAuthorization{az}
	for k := range 101 {
		o := newestFirst[k*37%101]
		must(t, s.CreateACMEOrder(ctx(t), o, brought), "creating order "+o.ID)
		brought = nil
	}

	for _, tc := range []struct {
		name  string
		limit int
		want  []store.ACMEOrder
	}{
		{"default", 0, newestFirst[:100]},
		{"limit", 3, newestFirst[:3]},
		{"all", 200, newestFirst},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ACMEOrders(ctx(t), acct.ID, tc.limit)
			must(t, err, "listing orders")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ACMEOrders(%d) (-want +got):\n%s", tc.limit, d)
			}
		})
	}
	got, err := s.ACMEOrders(ctx(t), "acme-acct-9", 0)
	if err != nil || len(got) != 0 {
		t.Errorf("ACMEOrders of an unknown ACME account = %v, %v", got, err)
	}
}

// testConcurrentACMEBinding: accounts racing to bind one key: exactly one
// is stored, and the key is marked used at its creation time.
func testConcurrentACMEBinding(t *testing.T, s store.Store) {
	owner := seedAccount(t, s, 1)
	for round := range 3 {
		k := eabKey(round, owner.ID)
		must(t, s.CreateACMEEABKey(ctx(t), k), "creating a binding key")
		accts := make([]store.ACMEAccount, racers)
		for i := range accts {
			accts[i] = acmeAccount(round*racers+i, owner.ID)
			accts[i].EABKeyID = k.ID
		}
		errs := race(racers, func(i int) error { return s.CreateACMEAccount(ctx(t), accts[i]) })
		w := oneWinner(t, errs, store.ErrConflict, fmt.Sprintf("round %d", round))
		got, err := s.ACMEEABKey(ctx(t), k.ID)
		must(t, err, "reading the binding key")
		if !got.UsedAt.Equal(accts[w].CreatedAt) {
			t.Errorf("round %d: the key was marked used at %v, the winner was created at %v", round, got.UsedAt, accts[w].CreatedAt)
		}
		for i, a := range accts {
			if i != w {
				wantNoACMEAccount(t, s, a.ID, fmt.Sprintf("round %d, racer %d", round, i))
			}
		}
	}
}
