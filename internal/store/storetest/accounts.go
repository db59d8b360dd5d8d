package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

func testAccounts(t *testing.T, s store.Store) {
	a := account(1)
	k := apiKey(1, a.ID)
	must(t, s.CreateAccount(ctx(t), a, k), "creating account")

	got, err := s.Account(ctx(t), a.ID)
	must(t, err, "reading account")
	if d := diff(a, got); d != "" {
		t.Errorf("Account (-want +got):\n%s", d)
	}
	// Several accounts may share an address; they come back oldest first.
	sameEmail := account(3)
	sameEmail.Email, sameEmail.CreatedAt = a.Email, us(a.CreatedAt.Add(time.Minute))
	must(t, s.CreateAccount(ctx(t), sameEmail, apiKey(3, sameEmail.ID)), "creating a second account with the same email")
	byEmail, err := s.AccountsByEmail(ctx(t), a.Email)
	must(t, err, "reading accounts by email")
	if d := diff([]store.Account{a, sameEmail}, byEmail); d != "" {
		t.Errorf("AccountsByEmail (-want +got):\n%s", d)
	}
	if none, err := s.AccountsByEmail(ctx(t), "nobody@example.com"); err != nil || len(none) != 0 {
		t.Errorf("AccountsByEmail of an unknown address: %v, %v", none, err)
	}

	// Confirming the address: kept at the first time, refused for another address.
	at := us(t0.Add(time.Hour))
	must(t, s.VerifyAccountEmail(ctx(t), a.ID, a.Email, at), "confirming the address")
	must(t, s.VerifyAccountEmail(ctx(t), a.ID, a.Email, at.Add(time.Hour)), "confirming it again")
	wantErr(t, s.VerifyAccountEmail(ctx(t), a.ID, "other@example.com", at), store.ErrNotFound, "confirming another address")
	wantErr(t, s.VerifyAccountEmail(ctx(t), "nobody", a.Email, at), store.ErrNotFound, "confirming for a missing account")
	if got, _ := s.Account(ctx(t), a.ID); !got.EmailVerifiedAt.Equal(at) {
		t.Errorf("EmailVerifiedAt = %v, want %v", got.EmailVerifiedAt, at)
	}
	if got, _ := s.Account(ctx(t), sameEmail.ID); !got.EmailVerifiedAt.IsZero() {
		t.Errorf("the other account with the address is confirmed too: %v", got.EmailVerifiedAt)
	}

	dupID := account(2)
	dupID.ID = a.ID
	for _, tc := range []struct {
		name string
		a    store.Account
		k    store.APIKey
	}{
		{"same id", dupID, apiKey(2, a.ID)},
		{"same key id", account(4), apiKey(1, account(4).ID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.CreateAccount(ctx(t), tc.a, tc.k), store.ErrDuplicate, "creating duplicate account")
		})
	}

	for _, tc := range []struct {
		name string
		get  func() error
	}{
		{"Account", func() error { _, err := s.Account(ctx(t), "nobody"); return err }},
		{"APIKey", func() error { _, _, err := s.APIKey(ctx(t), "no-such-key"); return err }},
	} {
		t.Run("missing "+tc.name, func(t *testing.T) {
			wantErr(t, tc.get(), store.ErrNotFound, tc.name)
		})
	}
}

// A key that cannot be stored leaves no account behind.
func testAccountAtomicity(t *testing.T, s store.Store) {
	seedAccount(t, s, 1)
	a := account(2)
	err := s.CreateAccount(ctx(t), a, apiKey(1, a.ID)) // key-1 is taken
	wantErr(t, err, store.ErrDuplicate, "creating account with a taken key id")
	_, err = s.Account(ctx(t), a.ID)
	wantErr(t, err, store.ErrNotFound, "reading the account whose key failed")
	if byEmail, err := s.AccountsByEmail(ctx(t), a.Email); err != nil || len(byEmail) != 0 {
		t.Errorf("accounts by email after the failed creation: %v, %v", byEmail, err)
	}
	// The id and email are still free.
	must(t, s.CreateAccount(ctx(t), a, apiKey(2, a.ID)), "creating the account again with a free key id")
}

func testAPIKeys(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	k2 := apiKey(2, a.ID)
	k2.CreatedAt = us(t0.Add(time.Hour))
	must(t, s.AddAPIKey(ctx(t), k2), "adding a second key")
	for _, k := range []store.APIKey{apiKey(1, a.ID), k2} {
		gotK, gotA, err := s.APIKey(ctx(t), k.ID)
		must(t, err, "reading key "+k.ID)
		if d := diff(k, gotK); d != "" {
			t.Errorf("APIKey(%s) key (-want +got):\n%s", k.ID, d)
		}
		if d := diff(a, gotA); d != "" {
			t.Errorf("APIKey(%s) account (-want +got):\n%s", k.ID, d)
		}
	}
	wantErr(t, s.AddAPIKey(ctx(t), apiKey(2, a.ID)), store.ErrDuplicate, "adding a duplicate key id")

	// Revocation: listed with its time, kept at the first time, unknown keys not found.
	at := us(t0.Add(2 * time.Hour))
	must(t, s.RevokeAPIKey(ctx(t), k2.ID, at), "revoking a key")
	must(t, s.RevokeAPIKey(ctx(t), k2.ID, at.Add(time.Hour)), "revoking it again")
	wantErr(t, s.RevokeAPIKey(ctx(t), "no-such-key", at), store.ErrNotFound, "revoking a missing key")
	keys, err := s.APIKeys(ctx(t), a.ID)
	must(t, err, "listing keys")
	revoked := k2
	revoked.RevokedAt = at
	if d := diff([]store.APIKey{apiKey(1, a.ID), revoked}, keys); d != "" {
		t.Errorf("APIKeys (-want +got):\n%s", d)
	}
	if gotK, _, err := s.APIKey(ctx(t), k2.ID); err != nil || !gotK.RevokedAt.Equal(at) {
		t.Errorf("APIKey of a revoked key: %+v, %v", gotK, err)
	}
	if keys, err := s.APIKeys(ctx(t), "no-such-account"); err != nil || len(keys) != 0 {
		t.Errorf("APIKeys of a missing account: %v, %v", keys, err)
	}
	if err := s.AddAPIKey(ctx(t), apiKey(3, "no-such-account")); err == nil {
		t.Error("AddAPIKey for a missing account succeeded")
	}
}

func validation(i int, accountID string) store.Validation {
	return store.Validation{
		ID:        fmt.Sprintf("val-%d", i),
		AccountID: accountID,
		Domain:    fmt.Sprintf("d%d.example.com", i),
		Method:    "dns-txt",
		Contact:   fmt.Sprintf("_validation-contactemail.d%d.example.com", i),
		Secret:    []byte(fmt.Sprintf("random-value-%d", i)),
		Status:    store.ValidationPending,
		CreatedAt: us(t0.Add(time.Duration(i) * time.Minute)),
		ExpiresAt: us(t0.Add(time.Duration(i)*time.Minute + 24*time.Hour)),
		Version:   1,
	}
}

func testValidations(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	v := validation(1, a.ID)
	must(t, s.CreateValidation(ctx(t), v), "creating validation")
	got, err := s.Validation(ctx(t), v.ID)
	must(t, err, "reading validation")
	if d := diff(v, got); d != "" {
		t.Errorf("Validation (-want +got):\n%s", d)
	}
	wantErr(t, s.CreateValidation(ctx(t), v), store.ErrDuplicate, "creating duplicate validation")
	_, err = s.Validation(ctx(t), "no-such-validation")
	wantErr(t, err, store.ErrNotFound, "reading missing validation")
}

func testUpdateValidation(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	v := validation(1, a.ID)
	must(t, s.CreateValidation(ctx(t), v), "creating validation")

	upd := v
	upd.Status = store.ValidationValid
	upd.Attempts = 1
	upd.ValidatedAt = us(t0.Add(time.Hour))
	upd.ValidUntil = us(t0.Add(398 * 24 * time.Hour))
	upd.Evidence = []byte(`{"method":"dns-txt"}`)
	got, err := s.UpdateValidation(ctx(t), upd)
	must(t, err, "updating validation")
	want := upd
	want.Version = v.Version + 1
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateValidation returned (-want +got):\n%s", d)
	}
	stored, err := s.Validation(ctx(t), v.ID)
	must(t, err, "reading updated validation")
	if d := diff(want, stored); d != "" {
		t.Errorf("stored after UpdateValidation (-want +got):\n%s", d)
	}

	stale := v // still Version 1
	stale.Attempts = 5
	_, err = s.UpdateValidation(ctx(t), stale)
	wantErr(t, err, store.ErrConflict, "updating with a stale version")
	stored, err = s.Validation(ctx(t), v.ID)
	must(t, err, "reading after stale update")
	if d := diff(want, stored); d != "" {
		t.Errorf("a stale update changed the row (-want +got):\n%s", d)
	}

	missing := validation(9, a.ID)
	_, err = s.UpdateValidation(ctx(t), missing)
	wantErr(t, err, store.ErrNotFound, "updating a missing validation")
}

func testValidValidations(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	b := seedAccount(t, s, 2)
	now := t0.Add(48 * time.Hour)
	mk := func(i int, acct string, st store.ValidationStatus, until time.Time) store.Validation {
		v := validation(i, acct)
		v.Status = st
		if st == store.ValidationValid {
			v.ValidatedAt = us(t0)
			v.ValidUntil = us(until)
		}
		return v
	}
	vs := []store.Validation{
		mk(1, a.ID, store.ValidationValid, now.Add(time.Hour)),     // yes
		mk(2, a.ID, store.ValidationValid, now.Add(-time.Second)),  // lapsed
		mk(3, a.ID, store.ValidationValid, now),                    // ends exactly now: not after now
		mk(4, a.ID, store.ValidationPending, time.Time{}),          // not valid
		mk(5, a.ID, store.ValidationInvalid, time.Time{}),          // not valid
		mk(6, b.ID, store.ValidationValid, now.Add(time.Hour)),     // other account
		mk(7, a.ID, store.ValidationValid, now.Add(400*time.Hour)), // yes
	}
	for _, v := range vs {
		must(t, s.CreateValidation(ctx(t), v), "creating validation "+v.ID)
	}
	for _, tc := range []struct {
		account string
		want    []store.Validation
	}{
		{a.ID, []store.Validation{vs[0], vs[6]}},
		{b.ID, []store.Validation{vs[5]}},
		{"nobody", nil},
	} {
		t.Run(tc.account, func(t *testing.T) {
			got, err := s.ValidValidations(ctx(t), tc.account, now)
			must(t, err, "listing valid validations")
			sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ValidValidations (-want +got):\n%s", d)
			}
		})
	}
}

func testListValidations(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	b := seedAccount(t, s, 2)
	var mine []store.Validation
	for i := 1; i <= 5; i++ {
		v := validation(i, a.ID)
		if i == 2 {
			v.Status = store.ValidationInvalid
		}
		must(t, s.CreateValidation(ctx(t), v), "creating validation "+v.ID)
		mine = append(mine, v)
	}
	must(t, s.CreateValidation(ctx(t), validation(9, b.ID)), "creating another account's validation")
	got, err := s.ListValidations(ctx(t), a.ID, 0)
	must(t, err, "listing validations")
	want := []store.Validation{mine[4], mine[3], mine[2], mine[1], mine[0]} // newest first, every state
	if d := diff(want, got); d != "" {
		t.Errorf("ListValidations (-want +got):\n%s", d)
	}
	got, err = s.ListValidations(ctx(t), a.ID, 2)
	must(t, err, "listing validations with a limit")
	if d := diff(want[:2], got); d != "" {
		t.Errorf("ListValidations limit 2 (-want +got):\n%s", d)
	}
	got, err = s.ListValidations(ctx(t), "nobody", 0)
	if err != nil || len(got) != 0 {
		t.Errorf("ListValidations of an unknown account = %v, %v", got, err)
	}
}
