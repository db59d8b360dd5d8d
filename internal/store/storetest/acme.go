package storetest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
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

// testACMEOrderFinalizedAt: FinalizedAt is stored at creation and by
// updates (CAS on Version as the other fields), the zero time as "not
// finalized", in UTC at microsecond precision.
func testACMEOrderFinalizedAt(t *testing.T, s store.Store) {
	acct := seedACMEAccount(t, s, 1)
	az := acmeAuthz(1, acct.ID, "example.com", false)
	open := acmeOrder(1, acct.ID, az)
	must(t, s.CreateACMEOrder(ctx(t), open, []store.ACMEAuthorization{az}), "creating an order not finalized")
	wantACMEOrder(t, s, open, "not finalized")

	// Nanoseconds and another zone come back truncated, in UTC.
	claimed := t0.Add(90 * time.Minute).In(time.FixedZone("UTC+5", 5*3600))
	created := acmeOrder(2, acct.ID, az)
	created.Status, created.OrderID, created.FinalizedAt = store.ACMEOrderProcessing, "order-2", claimed
	must(t, s.CreateACMEOrder(ctx(t), created, nil), "creating a finalized order")
	wantCreated := created
	wantCreated.FinalizedAt = us(claimed)
	wantACMEOrder(t, s, wantCreated, "created finalized")
	got, err := s.ACMEOrders(ctx(t), acct.ID, 0)
	must(t, err, "listing the orders")
	if d := diff([]store.ACMEOrder{wantCreated, open}, got); d != "" {
		t.Errorf("ACMEOrders (-want +got):\n%s", d)
	}

	claim := open
	claim.Status, claim.OrderID, claim.FinalizedAt = store.ACMEOrderProcessing, "order-1", claimed
	upd, err := s.UpdateACMEOrder(ctx(t), claim)
	must(t, err, "claiming the order")
	want := claim
	want.FinalizedAt, want.Version = us(claimed), 2
	if d := diff(want, upd); d != "" {
		t.Errorf("UpdateACMEOrder returned (-want +got):\n%s", d)
	}
	wantACMEOrder(t, s, want, "after the claim")

	again := open
	again.FinalizedAt = t0.Add(2 * time.Hour)
	_, err = s.UpdateACMEOrder(ctx(t), again)
	wantErr(t, err, store.ErrConflict, "claiming with a stale version")
	wantACMEOrder(t, s, want, "after a stale claim")

	released := want
	released.Status, released.OrderID, released.FinalizedAt = store.ACMEOrderReady, "", time.Time{}
	upd, err = s.UpdateACMEOrder(ctx(t), released)
	must(t, err, "releasing the claim")
	released.Version = 3
	if d := diff(released, upd); d != "" {
		t.Errorf("UpdateACMEOrder returned (-want +got):\n%s", d)
	}
	wantACMEOrder(t, s, released, "after releasing the claim")
}

// plannedRevocation is the plan to revoke certificate sn(i) by by, made
// at t0 (both with nanoseconds: stores keep microseconds).
func plannedRevocation(i int, by time.Time) store.PlannedRevocation {
	return store.PlannedRevocation{
		Serial:         sn(i),
		RevokeBy:       by,
		Reason:         reason.Superseded,
		ExplanationURL: fmt.Sprintf("https://status.example.com/incidents/%d", i),
		CreatedBy:      "staff-1",
		CreatedAt:      t0,
	}
}

// stored is p as the store returns it.
func stored(p store.PlannedRevocation) store.PlannedRevocation {
	p.RevokeBy, p.CreatedAt = us(p.RevokeBy), us(p.CreatedAt)
	return p
}

// wantPlans fails unless the store holds exactly want, listed in that
// order.
func wantPlans(t *testing.T, s store.Store, doing string, want ...store.PlannedRevocation) {
	t.Helper()
	for _, p := range want {
		got, err := s.PlannedRevocation(ctx(t), p.Serial)
		must(t, err, doing+": reading the plan of "+string(p.Serial))
		if d := diff(p, got); d != "" {
			t.Errorf("%s: PlannedRevocation(%s) (-want +got):\n%s", doing, p.Serial, d)
		}
	}
	got, err := s.PlannedRevocations(ctx(t), store.PlannedRevocationCursor{}, 1000)
	must(t, err, doing+": listing the plans")
	if d := diff(want, got); d != "" {
		t.Errorf("%s: PlannedRevocations (-want +got):\n%s", doing, d)
	}
}

// wantNoPlan fails if the store holds a plan for sn.
func wantNoPlan(t *testing.T, s store.Store, sn serial.Serial, doing string) {
	t.Helper()
	_, err := s.PlannedRevocation(ctx(t), sn)
	wantErr(t, err, store.ErrNotFound, doing+": reading the plan of "+string(sn))
}

// testPlanRevocations: plans are stored for certificates only, all or
// none, each replacing the plan of its serial.
func testPlanRevocations(t *testing.T, s store.Store) {
	for i := 1; i <= 3; i++ {
		issue(t, s, cert(i, issuerA, 0))
	}
	// A serial reserved but never issued has no certificate.
	must(t, s.ReserveSerial(ctx(t), sn(8), issuerA, t0), "reserving a serial")

	wantErr(t, s.PlanRevocations(ctx(t), nil), nil, "planning nothing")
	wantPlans(t, s, "after planning nothing")

	p1 := plannedRevocation(1, t0.Add(24*time.Hour).In(time.FixedZone("UTC-7", -7*3600)))
	p2 := plannedRevocation(2, t0.Add(24*time.Hour))
	p2.Reason, p2.ExplanationURL = reason.KeyCompromise, ""
	must(t, s.PlanRevocations(ctx(t), []store.PlannedRevocation{p1, p2}), "planning two revocations")
	wantPlans(t, s, "after planning", stored(p1), stored(p2))

	// A plan replaces the serial's, every field but the serial.
	p1b := plannedRevocation(1, t0.Add(5*24*time.Hour))
	p1b.Reason, p1b.ExplanationURL = reason.PrivilegeWithdrawn, ""
	p1b.CreatedBy, p1b.CreatedAt = "staff-2", t0.Add(time.Hour)
	must(t, s.PlanRevocations(ctx(t), []store.PlannedRevocation{p1b}), "replacing a plan")
	wantPlans(t, s, "after replacing a plan", stored(p2), stored(p1b))

	// Within one call, a later plan of a serial replaces an earlier one.
	p3 := plannedRevocation(3, t0.Add(2*time.Hour))
	p3b := plannedRevocation(3, t0.Add(3*time.Hour))
	p3b.Reason = reason.CessationOfOperation
	must(t, s.PlanRevocations(ctx(t), []store.PlannedRevocation{p3, p3b}), "planning one serial twice in a call")
	wantPlans(t, s, "after planning one serial twice", stored(p3b), stored(p2), stored(p1b))
	must(t, s.CancelPlannedRevocation(ctx(t), p3.Serial), "cancelling the plan of serial 3")

	// A serial without a certificate fails the whole call, whether it
	// comes first or after plans that would have been stored.
	for _, tc := range []struct {
		name string
		ps   []store.PlannedRevocation
	}{
		{"unknown serial", []store.PlannedRevocation{plannedRevocation(9, t0)}},
		{"reserved serial", []store.PlannedRevocation{plannedRevocation(8, t0)}},
		{"unknown first", []store.PlannedRevocation{plannedRevocation(9, t0), p3}},
		{"unknown after new and replacing plans", []store.PlannedRevocation{p3, plannedRevocation(1, t0), plannedRevocation(9, t0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.PlanRevocations(ctx(t), tc.ps), store.ErrNotFound, "planning "+tc.name)
			for _, i := range []int{3, 8, 9} {
				wantNoPlan(t, s, sn(i), "after "+tc.name)
			}
			wantPlans(t, s, "after "+tc.name, stored(p2), stored(p1b))
		})
	}
}

// testPlannedRevocations: plans listed earliest deadline first, equal
// deadlines in serial order, in pages after a cursor; 100 by default.
func testPlannedRevocations(t *testing.T, s store.Store) {
	var cs []store.Certificate
	for i := 1; i <= 101; i++ {
		cs = append(cs, cert(i, issuerA, 0))
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")

	// Serials 1-5 share two deadlines, and pages split the second; 6-101
	// come after them, in reverse serial order.
	d1, d2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	ps := []store.PlannedRevocation{
		plannedRevocation(4, d2), plannedRevocation(5, d1), plannedRevocation(2, d2),
		plannedRevocation(1, d2), plannedRevocation(3, d1),
	}
	for i := 6; i <= 101; i++ {
		ps = append(ps, plannedRevocation(i, t0.Add(time.Duration(200-i)*time.Hour)))
	}
	must(t, s.PlanRevocations(ctx(t), ps), "planning 101 revocations")
	all := []store.PlannedRevocation{
		stored(plannedRevocation(3, d1)), stored(plannedRevocation(5, d1)),
		stored(plannedRevocation(1, d2)), stored(plannedRevocation(2, d2)), stored(plannedRevocation(4, d2)),
	}
	for i := 101; i >= 6; i-- {
		all = append(all, stored(plannedRevocation(i, t0.Add(time.Duration(200-i)*time.Hour))))
	}
	cursor := func(p store.PlannedRevocation) store.PlannedRevocationCursor {
		return store.PlannedRevocationCursor{RevokeBy: p.RevokeBy, Serial: p.Serial}
	}

	for _, tc := range []struct {
		name  string
		after store.PlannedRevocationCursor
		limit int
		want  []store.PlannedRevocation
	}{
		{"default", store.PlannedRevocationCursor{}, 0, all[:100]},
		{"all", store.PlannedRevocationCursor{}, 200, all},
		{"first page", store.PlannedRevocationCursor{}, 3, all[:3]},
		{"second page", cursor(all[2]), 3, all[3:6]},
		{"within a deadline", cursor(all[3]), 2, all[4:6]},
		{"last page", cursor(all[98]), 3, all[99:]},
		{"after the last", cursor(all[100]), 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.PlannedRevocations(ctx(t), tc.after, tc.limit)
			must(t, err, "listing plans")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("PlannedRevocations(%v %q, %d) (-want +got):\n%s", tc.after.RevokeBy, tc.after.Serial, tc.limit, d)
			}
		})
	}

	// A cursor stays good when its plan is cancelled between pages.
	must(t, s.CancelPlannedRevocation(ctx(t), all[2].Serial), "cancelling the plan at the cursor")
	got, err := s.PlannedRevocations(ctx(t), cursor(all[2]), 3)
	must(t, err, "listing after a cancelled plan")
	if d := diff(all[3:6], got); d != "" {
		t.Errorf("PlannedRevocations after a cancelled plan (-want +got):\n%s", d)
	}
}

// testCancelPlannedRevocation: a cancelled plan is gone, and cancelling
// one that is not there is ErrNotFound.
func testCancelPlannedRevocation(t *testing.T, s store.Store) {
	issue(t, s, cert(1, issuerA, 0))
	issue(t, s, cert(2, issuerA, 0))
	p1, p2 := plannedRevocation(1, t0.Add(time.Hour)), plannedRevocation(2, t0.Add(time.Hour))
	must(t, s.PlanRevocations(ctx(t), []store.PlannedRevocation{p1, p2}), "planning revocations")

	must(t, s.CancelPlannedRevocation(ctx(t), p1.Serial), "cancelling a plan")
	wantNoPlan(t, s, p1.Serial, "after cancelling it")
	wantPlans(t, s, "after cancelling one", stored(p2))
	wantErr(t, s.CancelPlannedRevocation(ctx(t), p1.Serial), store.ErrNotFound, "cancelling it again")
	wantErr(t, s.CancelPlannedRevocation(ctx(t), sn(9)), store.ErrNotFound, "cancelling the plan of an unknown serial")
	wantPlans(t, s, "after cancelling missing plans", stored(p2))

	// The certificate itself is untouched, and may be planned again.
	c, err := s.Certificate(ctx(t), p1.Serial)
	must(t, err, "reading the certificate")
	if d := diff(cert(1, issuerA, 0), c); d != "" {
		t.Errorf("the certificate changed (-want +got):\n%s", d)
	}
	must(t, s.PlanRevocations(ctx(t), []store.PlannedRevocation{p1}), "planning it again")
	wantPlans(t, s, "after planning again", stored(p1), stored(p2))
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
