package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// The ACME server's objects (store.ACMEStore).

const acmeAccountCols = `id, account_id, thumbprint, jwk, status, contact, eab_key_id, created_at, version`

func scanACMEAccount(sc scanner) (store.ACMEAccount, error) {
	var a store.ACMEAccount
	var st, contact string
	var created int64
	if err := sc.Scan(&a.ID, &a.AccountID, &a.Thumbprint, &a.JWK, &st, &contact, &a.EABKeyID, &created, &a.Version); err != nil {
		return store.ACMEAccount{}, err
	}
	var err error
	if a.Contact, err = stringsFromJSON(contact); err != nil {
		return store.ACMEAccount{}, fmt.Errorf("ACME account %s: decoding contact: %w", a.ID, err)
	}
	a.Status, a.JWK, a.CreatedAt = store.ACMEAccountStatus(st), bytesOrNil(a.JWK), fromMicros(created)
	return a, nil
}

// stringsFromJSON reads a column written by namesJSON; an empty list comes
// back nil.
func stringsFromJSON(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// CreateACMEAccount stores a and, when it names a binding key, marks the
// key used at a.CreatedAt in the same transaction. The account goes in
// first, so that a second registration of one key is ErrDuplicate (its
// caller then answers with the account that exists) even when it also
// names the used binding key.
func (s *Store) CreateACMEAccount(ctx context.Context, a store.ACMEAccount) error {
	if a.EABKeyID != "" && a.CreatedAt.IsZero() {
		// A key marked used at the zero time would read back unused.
		return fmt.Errorf("sqlite: creating ACME account %s: no creation time to mark binding key %s used at", a.ID, a.EABKeyID)
	}
	contact, err := namesJSON(a.Contact)
	if err != nil {
		return wrap(err, "creating ACME account %s", a.ID)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO acme_accounts (`+acmeAccountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.AccountID, a.Thumbprint, a.JWK, string(a.Status), contact, a.EABKeyID, micros(a.CreatedAt), a.Version); err != nil {
			return err
		}
		if a.EABKeyID == "" {
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE acme_eab_keys SET used_at = ? WHERE id = ? AND account_id = ? AND used_at = ?`,
			micros(a.CreatedAt), a.EABKeyID, a.AccountID, zeroMicros)
		if err != nil {
			return fmt.Errorf("marking binding key %s used: %w", a.EABKeyID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return eabKeyUnusable(ctx, tx, a.EABKeyID, a.AccountID)
		}
		return nil
	})
	return wrap(err, "creating ACME account %s", a.ID)
}

// eabKeyUnusable explains why binding key id could not be marked used by
// an ACME account acting for accountID.
func eabKeyUnusable(ctx context.Context, tx *sql.Tx, id, accountID string) error {
	var owner string
	var used int64
	err := tx.QueryRowContext(ctx, `SELECT account_id, used_at FROM acme_eab_keys WHERE id = ?`, id).Scan(&owner, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("binding key %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("reading binding key %s: %w", id, err)
	case used != zeroMicros:
		return fmt.Errorf("%w: binding key %s was used at %s", store.ErrConflict, id, fromMicros(used))
	}
	return fmt.Errorf("binding key %s belongs to account %q, not %q", id, owner, accountID)
}

// ACMEAccount returns the ACME account with that id.
func (s *Store) ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error) {
	a, err := scanACMEAccount(s.r.QueryRowContext(ctx, `SELECT `+acmeAccountCols+` FROM acme_accounts WHERE id = ?`, id))
	return a, wrap(err, "reading ACME account %s", id)
}

// ACMEAccountByThumbprint returns the ACME account of the key with that
// thumbprint.
func (s *Store) ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (store.ACMEAccount, error) {
	a, err := scanACMEAccount(s.r.QueryRowContext(ctx, `SELECT `+acmeAccountCols+` FROM acme_accounts WHERE thumbprint = ?`, thumbprint))
	return a, wrap(err, "reading the ACME account of key %s", thumbprint)
}

// UpdateACMEAccount stores a's mutable fields (key and thumbprint, status,
// contact) if the stored Version is still a.Version, and returns the
// stored row with Version+1. Id, Trustline account, binding key and
// creation time never change.
func (s *Store) UpdateACMEAccount(ctx context.Context, a store.ACMEAccount) (store.ACMEAccount, error) {
	contact, err := namesJSON(a.Contact)
	if err != nil {
		return store.ACMEAccount{}, wrap(err, "updating ACME account %s", a.ID)
	}
	var out store.ACMEAccount
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanACMEAccount(tx.QueryRowContext(ctx, `UPDATE acme_accounts SET
			thumbprint = ?, jwk = ?, status = ?, contact = ?, version = version + 1
			WHERE id = ? AND version = ? RETURNING `+acmeAccountCols,
			a.Thumbprint, a.JWK, string(a.Status), contact, a.ID, a.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, "acme_accounts", a.ID, a.Version)
		}
		return err
	})
	return out, wrap(err, "updating ACME account %s", a.ID)
}

const acmeEABKeyCols = `id, account_id, created_by, created_at, expires_at, used_at, cert_profile, organization`

// CreateACMEEABKey stores a binding key as given.
func (s *Store) CreateACMEEABKey(ctx context.Context, k store.ACMEEABKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO acme_eab_keys (`+acmeEABKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.CreatedBy, micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.UsedAt), k.CertProfile, k.Organization)
	return wrap(err, "creating binding key %s", k.ID)
}

// ACMEEABKey returns the binding key with that id.
func (s *Store) ACMEEABKey(ctx context.Context, id string) (store.ACMEEABKey, error) {
	var k store.ACMEEABKey
	var created, expires, used int64
	err := s.r.QueryRowContext(ctx, `SELECT `+acmeEABKeyCols+` FROM acme_eab_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.AccountID, &k.CreatedBy, &created, &expires, &used, &k.CertProfile, &k.Organization)
	if err != nil {
		return store.ACMEEABKey{}, wrap(err, "reading binding key %s", id)
	}
	k.CreatedAt, k.ExpiresAt, k.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	k.Organization = bytesOrNil(k.Organization)
	return k, nil
}

const acmeOrderCols = `id, acme_account_id, names, authz_ids, status, profile, replaces, order_id, finalized_at,
	error, expires_at, created_at, version`

func scanACMEOrder(sc scanner) (store.ACMEOrder, error) {
	var o store.ACMEOrder
	var names, authzs, st string
	var finalized, expires, created int64
	err := sc.Scan(&o.ID, &o.ACMEAccountID, &names, &authzs, &st, &o.Profile, &o.Replaces, &o.OrderID, &finalized,
		&o.Error, &expires, &created, &o.Version)
	if err != nil {
		return store.ACMEOrder{}, err
	}
	if o.Names, err = stringsFromJSON(names); err != nil {
		return store.ACMEOrder{}, fmt.Errorf("ACME order %s: decoding names: %w", o.ID, err)
	}
	if o.AuthzIDs, err = stringsFromJSON(authzs); err != nil {
		return store.ACMEOrder{}, fmt.Errorf("ACME order %s: decoding authorization ids: %w", o.ID, err)
	}
	o.Status, o.Error = store.ACMEOrderStatus(st), bytesOrNil(o.Error)
	o.FinalizedAt, o.ExpiresAt, o.CreatedAt = fromMicros(finalized), fromMicros(expires), fromMicros(created)
	return o, nil
}

// checkNewAuthzs refuses authorizations that o does not name or that
// belong to another ACME account: CreateACMEOrder would store them
// unreachable.
func checkNewAuthzs(o store.ACMEOrder, authzs []store.ACMEAuthorization) error {
	for _, az := range authzs {
		if !slices.Contains(o.AuthzIDs, az.ID) {
			return fmt.Errorf("authorization %s is not one the order names", az.ID)
		}
		if az.ACMEAccountID != o.ACMEAccountID {
			return fmt.Errorf("authorization %s belongs to ACME account %q, not the order's", az.ID, az.ACMEAccountID)
		}
	}
	return nil
}

// CreateACMEOrder stores o and its new authorizations in one transaction.
// Every authorization o names must then be stored for o's ACME account
// (ErrNotFound otherwise): they are its foreign keys.
func (s *Store) CreateACMEOrder(ctx context.Context, o store.ACMEOrder, authzs []store.ACMEAuthorization) error {
	if err := checkNewAuthzs(o, authzs); err != nil {
		return fmt.Errorf("sqlite: creating ACME order %s: %w", o.ID, err)
	}
	names, err := namesJSON(o.Names)
	if err != nil {
		return wrap(err, "creating ACME order %s", o.ID)
	}
	ids, err := namesJSON(o.AuthzIDs)
	if err != nil {
		return wrap(err, "creating ACME order %s", o.ID)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO acme_orders (`+acmeOrderCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.ACMEAccountID, names, ids, string(o.Status), o.Profile, o.Replaces, o.OrderID, micros(o.FinalizedAt),
			o.Error, micros(o.ExpiresAt), micros(o.CreatedAt), o.Version); err != nil {
			return err
		}
		for _, az := range authzs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO acme_authorizations (`+acmeAuthzCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				az.ID, az.ACMEAccountID, az.Domain, az.Wildcard, az.Token, string(az.Status), az.Challenge, az.ValidationID,
				micros(az.ExpiresAt), micros(az.CreatedAt), az.Version); err != nil {
				return fmt.Errorf("storing authorization %s: %w", az.ID, err)
			}
		}
		var stored int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM acme_authorizations
			WHERE acme_account_id = ? AND id IN (SELECT value FROM json_each(?))`, o.ACMEAccountID, ids).Scan(&stored); err != nil {
			return fmt.Errorf("checking the order's authorizations: %w", err)
		}
		if want := len(distinct(o.AuthzIDs)); stored != want {
			return fmt.Errorf("the order names %d authorizations, %d of them stored for its ACME account: %w", want, stored, store.ErrNotFound)
		}
		return nil
	})
	return wrap(err, "creating ACME order %s", o.ID)
}

// distinct is ss without repeats.
func distinct(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

// ACMEOrder returns the ACME order with that id.
func (s *Store) ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error) {
	o, err := scanACMEOrder(s.r.QueryRowContext(ctx, `SELECT `+acmeOrderCols+` FROM acme_orders WHERE id = ?`, id))
	return o, wrap(err, "reading ACME order %s", id)
}

// UpdateACMEOrder stores o's mutable fields (status, Trustline order,
// finalization time, error, expiry) if the stored Version is still o.Version, and returns the
// stored row with Version+1. Its account, names, authorizations, profile,
// Replaces and creation time never change.
func (s *Store) UpdateACMEOrder(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, error) {
	var out store.ACMEOrder
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanACMEOrder(tx.QueryRowContext(ctx, `UPDATE acme_orders SET
			status = ?, order_id = ?, finalized_at = ?, error = ?, expires_at = ?, version = version + 1
			WHERE id = ? AND version = ? RETURNING `+acmeOrderCols,
			string(o.Status), o.OrderID, micros(o.FinalizedAt), o.Error, micros(o.ExpiresAt), o.ID, o.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, "acme_orders", o.ID, o.Version)
		}
		return err
	})
	return out, wrap(err, "updating ACME order %s", o.ID)
}

// ACMEOrders lists an ACME account's orders, newest first.
func (s *Store) ACMEOrders(ctx context.Context, acmeAccountID string, limit int) ([]store.ACMEOrder, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+acmeOrderCols+` FROM acme_orders
		WHERE acme_account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, acmeAccountID, limit)
	if err != nil {
		return nil, wrap(err, "listing the orders of ACME account %s", acmeAccountID)
	}
	out, err := collect(rows, scanACMEOrder)
	return out, wrap(err, "listing the orders of ACME account %s", acmeAccountID)
}

const acmeAuthzCols = `id, acme_account_id, domain, wildcard, token, status, challenge, validation_id,
	expires_at, created_at, version`

func scanACMEAuthz(sc scanner) (store.ACMEAuthorization, error) {
	var az store.ACMEAuthorization
	var st string
	var expires, created int64
	err := sc.Scan(&az.ID, &az.ACMEAccountID, &az.Domain, &az.Wildcard, &az.Token, &st, &az.Challenge, &az.ValidationID,
		&expires, &created, &az.Version)
	if err != nil {
		return store.ACMEAuthorization{}, err
	}
	az.Status, az.ExpiresAt, az.CreatedAt = store.ACMEAuthzStatus(st), fromMicros(expires), fromMicros(created)
	return az, nil
}

// ACMEAuthorization returns the ACME authorization with that id.
func (s *Store) ACMEAuthorization(ctx context.Context, id string) (store.ACMEAuthorization, error) {
	az, err := scanACMEAuthz(s.r.QueryRowContext(ctx, `SELECT `+acmeAuthzCols+` FROM acme_authorizations WHERE id = ?`, id))
	return az, wrap(err, "reading ACME authorization %s", id)
}

// UpdateACMEAuthorization stores az's mutable fields (status, challenge,
// validation, expiry) if the stored Version is still az.Version, and
// returns the stored row with Version+1. Its account, identifier, token
// and creation time never change.
func (s *Store) UpdateACMEAuthorization(ctx context.Context, az store.ACMEAuthorization) (store.ACMEAuthorization, error) {
	var out store.ACMEAuthorization
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanACMEAuthz(tx.QueryRowContext(ctx, `UPDATE acme_authorizations SET
			status = ?, challenge = ?, validation_id = ?, expires_at = ?, version = version + 1
			WHERE id = ? AND version = ? RETURNING `+acmeAuthzCols,
			string(az.Status), az.Challenge, az.ValidationID, micros(az.ExpiresAt), az.ID, az.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, "acme_authorizations", az.ID, az.Version)
		}
		return err
	})
	return out, wrap(err, "updating ACME authorization %s", az.ID)
}

const plannedRevocationCols = `serial, revoke_by, reason, explanation_url, created_by, created_at`

func scanPlannedRevocation(sc scanner) (store.PlannedRevocation, error) {
	var p store.PlannedRevocation
	var ser string
	var by, rs, created int64
	if err := sc.Scan(&ser, &by, &rs, &p.ExplanationURL, &p.CreatedBy, &created); err != nil {
		return store.PlannedRevocation{}, err
	}
	p.Serial, p.Reason = serial.Serial(ser), reason.Reason(rs)
	p.RevokeBy, p.CreatedAt = fromMicros(by), fromMicros(created)
	return p, nil
}

// PlanRevocations records ps in one transaction, in their order, each
// replacing the plan of its serial (a later one in ps wins). The row is
// inserted from the certificate's, so a serial without a certificate
// inserts nothing: ErrNotFound, and the transaction is rolled back.
func (s *Store) PlanRevocations(ctx context.Context, ps []store.PlannedRevocation) error {
	if len(ps) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO planned_revocations (`+plannedRevocationCols+`)
			SELECT serial, ?, ?, ?, ?, ? FROM certificates WHERE serial = ?
			ON CONFLICT (serial) DO UPDATE SET revoke_by = excluded.revoke_by, reason = excluded.reason,
				explanation_url = excluded.explanation_url, created_by = excluded.created_by, created_at = excluded.created_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, p := range ps {
			res, err := st.ExecContext(ctx, micros(p.RevokeBy), int64(p.Reason), p.ExplanationURL, p.CreatedBy,
				micros(p.CreatedAt), string(p.Serial))
			if err == nil {
				err = mustAffect(res)
			}
			if err != nil {
				return fmt.Errorf("certificate %s: %w", p.Serial, err)
			}
		}
		return nil
	})
	return wrap(err, "planning the revocation of %d certificates", len(ps))
}

// PlannedRevocation returns the plan of the certificate with serial sn.
func (s *Store) PlannedRevocation(ctx context.Context, sn serial.Serial) (store.PlannedRevocation, error) {
	p, err := scanPlannedRevocation(s.r.QueryRowContext(ctx, `SELECT `+plannedRevocationCols+`
		FROM planned_revocations WHERE serial = ?`, string(sn)))
	return p, wrap(err, "reading the planned revocation of %s", sn)
}

// PlannedRevocations lists plans after the cursor, earliest deadline first
// and then in serial order. The zero cursor sorts before every plan.
func (s *Store) PlannedRevocations(ctx context.Context, after store.PlannedRevocationCursor, limit int) ([]store.PlannedRevocation, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+plannedRevocationCols+` FROM planned_revocations
		WHERE (revoke_by, serial) > (?, ?) ORDER BY revoke_by, serial LIMIT ?`,
		micros(after.RevokeBy), string(after.Serial), limit)
	if err != nil {
		return nil, wrap(err, "listing planned revocations after %s %q", after.RevokeBy, after.Serial)
	}
	out, err := collect(rows, scanPlannedRevocation)
	return out, wrap(err, "listing planned revocations after %s %q", after.RevokeBy, after.Serial)
}

// CancelPlannedRevocation deletes the plan of the certificate with serial
// sn; ErrNotFound if there is none.
func (s *Store) CancelPlannedRevocation(ctx context.Context, sn serial.Serial) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM planned_revocations WHERE serial = ?`, string(sn))
	if err == nil {
		err = mustAffect(res)
	}
	return wrap(err, "cancelling the planned revocation of %s", sn)
}
