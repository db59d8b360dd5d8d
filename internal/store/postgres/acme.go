package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// The ACME server's objects (store.ACMEStore).

const acmeAccountCols = `id, account_id, thumbprint, jwk, status, contact, eab_key_id, created_at, version`

func scanACMEAccount(sc scanner) (store.ACMEAccount, error) {
	var a store.ACMEAccount
	var st, contact string
	if err := sc.Scan(&a.ID, &a.AccountID, &a.Thumbprint, &a.JWK, &st, &contact, &a.EABKeyID, &a.CreatedAt, &a.Version); err != nil {
		return store.ACMEAccount{}, err
	}
	var err error
	if a.Contact, err = stringsFromJSON(contact); err != nil {
		return store.ACMEAccount{}, fmt.Errorf("ACME account %s: decoding contact: %w", a.ID, err)
	}
	a.Status, a.JWK, a.CreatedAt = store.ACMEAccountStatus(st), bytesOrNil(a.JWK), fromTS(a.CreatedAt)
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
// names the used binding key. Racing bindings of one key take turns on
// the key's row: the later one finds it used (ErrConflict).
func (s *Store) CreateACMEAccount(ctx context.Context, a store.ACMEAccount) error {
	if a.EABKeyID != "" && a.CreatedAt.IsZero() {
		// A key marked used at the zero time would read back unused.
		return fmt.Errorf("postgres: creating ACME account %s: no creation time to mark binding key %s used at", a.ID, a.EABKeyID)
	}
	contact, err := namesJSON(a.Contact)
	if err != nil {
		return wrap(err, "creating ACME account %s", a.ID)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO acme_accounts (`+acmeAccountCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.ID, a.AccountID, a.Thumbprint, a.JWK, string(a.Status), contact, a.EABKeyID, ts(a.CreatedAt), a.Version); err != nil {
			return err
		}
		if a.EABKeyID == "" {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE acme_eab_keys SET used_at = $3 WHERE id = $1 AND account_id = $2 AND used_at IS NULL`,
			a.EABKeyID, a.AccountID, ts(a.CreatedAt))
		if err != nil {
			return fmt.Errorf("marking binding key %s used: %w", a.EABKeyID, err)
		}
		if tag.RowsAffected() == 0 {
			return eabKeyUnusable(ctx, tx, a.EABKeyID, a.AccountID)
		}
		return nil
	})
	return wrap(err, "creating ACME account %s", a.ID)
}

// eabKeyUnusable explains why binding key id could not be marked used by
// an ACME account acting for accountID.
func eabKeyUnusable(ctx context.Context, tx pgx.Tx, id, accountID string) error {
	var owner string
	var used *time.Time
	err := tx.QueryRow(ctx, `SELECT account_id, used_at FROM acme_eab_keys WHERE id = $1`, id).Scan(&owner, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("binding key %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("reading binding key %s: %w", id, err)
	case used != nil:
		return fmt.Errorf("%w: binding key %s was used at %s", store.ErrConflict, id, fromTS(*used))
	}
	return fmt.Errorf("binding key %s belongs to account %q, not %q", id, owner, accountID)
}

// ACMEAccount returns the ACME account with that id.
func (s *Store) ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error) {
	a, err := queryRow(ctx, s, scanACMEAccount, `SELECT `+acmeAccountCols+` FROM acme_accounts WHERE id = $1`, id)
	return a, wrap(err, "reading ACME account %s", id)
}

// ACMEAccountByThumbprint returns the ACME account of the key with that
// thumbprint.
func (s *Store) ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (store.ACMEAccount, error) {
	a, err := queryRow(ctx, s, scanACMEAccount, `SELECT `+acmeAccountCols+` FROM acme_accounts WHERE thumbprint = $1`, thumbprint)
	return a, wrap(err, "reading the ACME account of key %s", thumbprint)
}

// UpdateACMEAccount stores a's mutable fields (key and thumbprint, status,
// contact) if the stored Version is still a.Version, and returns the
// stored row with Version+1. Id, Trustline account, binding key and
// creation time never change.
func (s *Store) UpdateACMEAccount(ctx context.Context, a store.ACMEAccount) (store.ACMEAccount, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	contact, err := namesJSON(a.Contact)
	if err != nil {
		return store.ACMEAccount{}, wrap(err, "updating ACME account %s", a.ID)
	}
	out, err := scanACMEAccount(s.pool.QueryRow(ctx, `UPDATE acme_accounts SET
		thumbprint = $1, jwk = $2, status = $3, contact = $4, version = version + 1
		WHERE id = $5 AND version = $6 RETURNING `+acmeAccountCols,
		a.Thumbprint, a.JWK, string(a.Status), contact, a.ID, a.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = staleOrMissing(ctx, s.pool, "acme_accounts", a.ID, a.Version)
	}
	return out, wrap(err, "updating ACME account %s", a.ID)
}

const acmeEABKeyCols = `id, account_id, created_by, created_at, expires_at, used_at, cert_profile, organization`

// CreateACMEEABKey stores a binding key as given.
func (s *Store) CreateACMEEABKey(ctx context.Context, k store.ACMEEABKey) error {
	_, err := s.exec(ctx, `INSERT INTO acme_eab_keys (`+acmeEABKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.AccountID, k.CreatedBy, ts(k.CreatedAt), ts(k.ExpiresAt), nullTime(k.UsedAt), k.CertProfile, k.Organization)
	return wrap(err, "creating binding key %s", k.ID)
}

// ACMEEABKey returns the binding key with that id.
func (s *Store) ACMEEABKey(ctx context.Context, id string) (store.ACMEEABKey, error) {
	k, err := queryRow(ctx, s, func(sc scanner) (store.ACMEEABKey, error) {
		var k store.ACMEEABKey
		var used *time.Time
		err := sc.Scan(&k.ID, &k.AccountID, &k.CreatedBy, &k.CreatedAt, &k.ExpiresAt, &used, &k.CertProfile, &k.Organization)
		k.CreatedAt, k.ExpiresAt, k.UsedAt = fromTS(k.CreatedAt), fromTS(k.ExpiresAt), fromNullTS(used)
		k.Organization = bytesOrNil(k.Organization)
		return k, err
	}, `SELECT `+acmeEABKeyCols+` FROM acme_eab_keys WHERE id = $1`, id)
	return k, wrap(err, "reading binding key %s", id)
}

const acmeOrderCols = `id, acme_account_id, names, authz_ids, status, profile, replaces, order_id, finalized_at,
	error, expires_at, created_at, version`

func scanACMEOrder(sc scanner) (store.ACMEOrder, error) {
	var o store.ACMEOrder
	var names, authzs, st string
	var finalized *time.Time
	err := sc.Scan(&o.ID, &o.ACMEAccountID, &names, &authzs, &st, &o.Profile, &o.Replaces, &o.OrderID, &finalized,
		&o.Error, &o.ExpiresAt, &o.CreatedAt, &o.Version)
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
	o.FinalizedAt, o.ExpiresAt, o.CreatedAt = fromNullTS(finalized), fromTS(o.ExpiresAt), fromTS(o.CreatedAt)
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
		return fmt.Errorf("postgres: creating ACME order %s: %w", o.ID, err)
	}
	names, err := namesJSON(o.Names)
	if err != nil {
		return wrap(err, "creating ACME order %s", o.ID)
	}
	ids, err := namesJSON(o.AuthzIDs)
	if err != nil {
		return wrap(err, "creating ACME order %s", o.ID)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO acme_orders (`+acmeOrderCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			o.ID, o.ACMEAccountID, names, ids, string(o.Status), o.Profile, o.Replaces, o.OrderID, nullTime(o.FinalizedAt),
			o.Error, ts(o.ExpiresAt), ts(o.CreatedAt), o.Version); err != nil {
			return err
		}
		for _, az := range authzs {
			if _, err := tx.Exec(ctx, `INSERT INTO acme_authorizations (`+acmeAuthzCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				az.ID, az.ACMEAccountID, az.Domain, az.Wildcard, az.Token, string(az.Status), az.Challenge, az.ValidationID,
				ts(az.ExpiresAt), ts(az.CreatedAt), az.Version); err != nil {
				return fmt.Errorf("storing authorization %s: %w", az.ID, err)
			}
		}
		want := distinct(o.AuthzIDs)
		var stored int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM acme_authorizations WHERE acme_account_id = $1 AND id = ANY($2)`,
			o.ACMEAccountID, want).Scan(&stored); err != nil {
			return fmt.Errorf("checking the order's authorizations: %w", err)
		}
		if stored != len(want) {
			return fmt.Errorf("the order names %d authorizations, %d of them stored for its ACME account: %w", len(want), stored, store.ErrNotFound)
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
	o, err := queryRow(ctx, s, scanACMEOrder, `SELECT `+acmeOrderCols+` FROM acme_orders WHERE id = $1`, id)
	return o, wrap(err, "reading ACME order %s", id)
}

// UpdateACMEOrder stores o's mutable fields (status, Trustline order,
// finalization time, error, expiry) if the stored Version is still o.Version, and returns the
// stored row with Version+1. Its account, names, authorizations, profile,
// Replaces and creation time never change.
func (s *Store) UpdateACMEOrder(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	out, err := scanACMEOrder(s.pool.QueryRow(ctx, `UPDATE acme_orders SET
		status = $1, order_id = $2, finalized_at = $3, error = $4, expires_at = $5, version = version + 1
		WHERE id = $6 AND version = $7 RETURNING `+acmeOrderCols,
		string(o.Status), o.OrderID, nullTime(o.FinalizedAt), o.Error, ts(o.ExpiresAt), o.ID, o.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = staleOrMissing(ctx, s.pool, "acme_orders", o.ID, o.Version)
	}
	return out, wrap(err, "updating ACME order %s", o.ID)
}

// ACMEOrders lists an ACME account's orders, newest first.
func (s *Store) ACMEOrders(ctx context.Context, acmeAccountID string, limit int) ([]store.ACMEOrder, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := query(ctx, s, scanACMEOrder, `SELECT `+acmeOrderCols+` FROM acme_orders
		WHERE acme_account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, acmeAccountID, limit)
	return out, wrap(err, "listing the orders of ACME account %s", acmeAccountID)
}

const acmeAuthzCols = `id, acme_account_id, domain, wildcard, token, status, challenge, validation_id,
	expires_at, created_at, version`

func scanACMEAuthz(sc scanner) (store.ACMEAuthorization, error) {
	var az store.ACMEAuthorization
	var st string
	err := sc.Scan(&az.ID, &az.ACMEAccountID, &az.Domain, &az.Wildcard, &az.Token, &st, &az.Challenge, &az.ValidationID,
		&az.ExpiresAt, &az.CreatedAt, &az.Version)
	if err != nil {
		return store.ACMEAuthorization{}, err
	}
	az.Status, az.ExpiresAt, az.CreatedAt = store.ACMEAuthzStatus(st), fromTS(az.ExpiresAt), fromTS(az.CreatedAt)
	return az, nil
}

// ACMEAuthorization returns the ACME authorization with that id.
func (s *Store) ACMEAuthorization(ctx context.Context, id string) (store.ACMEAuthorization, error) {
	az, err := queryRow(ctx, s, scanACMEAuthz, `SELECT `+acmeAuthzCols+` FROM acme_authorizations WHERE id = $1`, id)
	return az, wrap(err, "reading ACME authorization %s", id)
}

// UpdateACMEAuthorization stores az's mutable fields (status, challenge,
// validation, expiry) if the stored Version is still az.Version, and
// returns the stored row with Version+1. Its account, identifier, token
// and creation time never change.
func (s *Store) UpdateACMEAuthorization(ctx context.Context, az store.ACMEAuthorization) (store.ACMEAuthorization, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	out, err := scanACMEAuthz(s.pool.QueryRow(ctx, `UPDATE acme_authorizations SET
		status = $1, challenge = $2, validation_id = $3, expires_at = $4, version = version + 1
		WHERE id = $5 AND version = $6 RETURNING `+acmeAuthzCols,
		string(az.Status), az.Challenge, az.ValidationID, ts(az.ExpiresAt), az.ID, az.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = staleOrMissing(ctx, s.pool, "acme_authorizations", az.ID, az.Version)
	}
	return out, wrap(err, "updating ACME authorization %s", az.ID)
}

const plannedRevocationCols = `serial, revoke_by, reason, explanation_url, created_by, created_at`

func scanPlannedRevocation(sc scanner) (store.PlannedRevocation, error) {
	var p store.PlannedRevocation
	var ser string
	var rs int16
	if err := sc.Scan(&ser, &p.RevokeBy, &rs, &p.ExplanationURL, &p.CreatedBy, &p.CreatedAt); err != nil {
		return store.PlannedRevocation{}, err
	}
	p.Serial, p.Reason = serial.Serial(ser), reason.Reason(rs)
	p.RevokeBy, p.CreatedAt = fromTS(p.RevokeBy), fromTS(p.CreatedAt)
	return p, nil
}

// PlanRevocations records ps in one transaction, in their order, each
// replacing the plan of its serial (a later one in ps wins), sent as one
// batch. The row is inserted from the certificate's, so a serial without
// a certificate inserts nothing: ErrNotFound, and the transaction is
// rolled back.
func (s *Store) PlanRevocations(ctx context.Context, ps []store.PlannedRevocation) error {
	if len(ps) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var b pgx.Batch
		for _, p := range ps {
			b.Queue(`INSERT INTO planned_revocations (`+plannedRevocationCols+`)
				SELECT serial, $1::timestamptz, $2::smallint, $3::text, $4::text, $5::timestamptz FROM certificates WHERE serial = $6
				ON CONFLICT (serial) DO UPDATE SET revoke_by = excluded.revoke_by, reason = excluded.reason,
					explanation_url = excluded.explanation_url, created_by = excluded.created_by, created_at = excluded.created_at`,
				ts(p.RevokeBy), int16(p.Reason), p.ExplanationURL, p.CreatedBy, ts(p.CreatedAt), string(p.Serial))
		}
		res := tx.SendBatch(ctx, &b)
		for _, p := range ps {
			tag, err := res.Exec()
			if err == nil && tag.RowsAffected() == 0 {
				err = store.ErrNotFound
			}
			if err != nil {
				res.Close()
				return fmt.Errorf("certificate %s: %w", p.Serial, err)
			}
		}
		return res.Close()
	})
	return wrap(err, "planning the revocation of %d certificates", len(ps))
}

// PlannedRevocation returns the plan of the certificate with serial sn.
func (s *Store) PlannedRevocation(ctx context.Context, sn serial.Serial) (store.PlannedRevocation, error) {
	p, err := queryRow(ctx, s, scanPlannedRevocation, `SELECT `+plannedRevocationCols+`
		FROM planned_revocations WHERE serial = $1`, string(sn))
	return p, wrap(err, "reading the planned revocation of %s", sn)
}

// PlannedRevocations lists plans after the cursor, earliest deadline first
// and then in serial order. The zero cursor sorts before every plan.
func (s *Store) PlannedRevocations(ctx context.Context, after store.PlannedRevocationCursor, limit int) ([]store.PlannedRevocation, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := query(ctx, s, scanPlannedRevocation, `SELECT `+plannedRevocationCols+` FROM planned_revocations
		WHERE (revoke_by, serial) > ($1, $2) ORDER BY revoke_by, serial LIMIT $3`,
		ts(after.RevokeBy), string(after.Serial), limit)
	return out, wrap(err, "listing planned revocations after %s %q", after.RevokeBy, after.Serial)
}

// CancelPlannedRevocation deletes the plan of the certificate with serial
// sn; ErrNotFound if there is none.
func (s *Store) CancelPlannedRevocation(ctx context.Context, sn serial.Serial) error {
	tag, err := s.exec(ctx, `DELETE FROM planned_revocations WHERE serial = $1`, string(sn))
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "cancelling the planned revocation of %s", sn)
}
