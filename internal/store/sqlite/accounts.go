package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// CreateAccount stores the account and its first API key, both or neither.
// An empty k.AccountID means a.ID.
func (s *Store) CreateAccount(ctx context.Context, a store.Account, k store.APIKey) error {
	if k.AccountID == "" {
		k.AccountID = a.ID
	}
	if k.AccountID != a.ID {
		return fmt.Errorf("sqlite: creating account %s: key belongs to account %q", a.ID, k.AccountID)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, email, role, created_at, created_by, person, email_verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Email, string(a.Role), micros(a.CreatedAt), a.CreatedBy, a.Person, micros(a.EmailVerifiedAt)); err != nil {
			return err
		}
		return insertAPIKey(ctx, tx, k)
	})
	return wrap(err, "creating account %s", a.ID)
}

func insertAPIKey(ctx context.Context, tx *sql.Tx, k store.APIKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, hash, created_at) VALUES (?, ?, ?, ?)`,
		k.ID, k.AccountID, k.Hash, micros(k.CreatedAt))
	return err
}

// AddAPIKey stores another key for an existing account (ErrNotFound if
// there is none).
func (s *Store) AddAPIKey(ctx context.Context, k store.APIKey) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return insertAPIKey(ctx, tx, k) })
	return wrap(err, "adding API key %s", k.ID)
}

const accountCols = `a.id, a.email, a.role, a.created_at, a.created_by, a.person, a.email_verified_at`

func scanAccount(sc scanner, a *store.Account) error {
	var role string
	var created, verified int64
	if err := sc.Scan(&a.ID, &a.Email, &role, &created, &a.CreatedBy, &a.Person, &verified); err != nil {
		return err
	}
	a.Role, a.CreatedAt, a.EmailVerifiedAt = store.Role(role), fromMicros(created), fromMicros(verified)
	return nil
}

// Account returns the account with that id.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	var a store.Account
	err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts a WHERE a.id = ?`, id), &a)
	return a, wrap(err, "reading account %s", id)
}

// AccountsByEmail lists the accounts with that email (stored lowercase;
// the comparison is exact), oldest first.
func (s *Store) AccountsByEmail(ctx context.Context, email string) ([]store.Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts a WHERE a.email = ? ORDER BY a.created_at, a.id`, email)
	if err != nil {
		return nil, wrap(err, "reading accounts by email")
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		var a store.Account
		if err := scanAccount(rows, &a); err != nil {
			return nil, wrap(err, "reading accounts by email")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "reading accounts by email")
}

// VerifyAccountEmail records the confirmation of an account's address.
func (s *Store) VerifyAccountEmail(ctx context.Context, id, email string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var verified int64
		if err := tx.QueryRowContext(ctx, `SELECT email_verified_at FROM accounts WHERE id = ? AND email = ?`, id, email).Scan(&verified); err != nil {
			return err
		}
		if verified != zeroMicros {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE accounts SET email_verified_at = ? WHERE id = ?`, micros(at), id)
		return err
	})
	return wrap(err, "confirming the address of account %s", id)
}

// APIKey returns a key and the account it belongs to.
func (s *Store) APIKey(ctx context.Context, keyID string) (store.APIKey, store.Account, error) {
	var k store.APIKey
	var a store.Account
	var role string
	var kc, kr, ac, av int64
	err := s.r.QueryRowContext(ctx, `SELECT k.id, k.account_id, k.hash, k.created_at, k.revoked_at, `+accountCols+`
		FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = ?`, keyID).
		Scan(&k.ID, &k.AccountID, &k.Hash, &kc, &kr, &a.ID, &a.Email, &role, &ac, &a.CreatedBy, &a.Person, &av)
	if err != nil {
		return store.APIKey{}, store.Account{}, wrap(err, "reading API key %s", keyID)
	}
	k.Hash, k.CreatedAt, k.RevokedAt = bytesOrNil(k.Hash), fromMicros(kc), revokedAt(kr)
	a.Role, a.CreatedAt, a.EmailVerifiedAt = store.Role(role), fromMicros(ac), fromMicros(av)
	return k, a, nil
}

// revokedAt reads api_keys.revoked_at: 0 while the key is active.
func revokedAt(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

// APIKeys lists an account's keys, oldest first.
func (s *Store) APIKeys(ctx context.Context, accountID string) ([]store.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, hash, created_at, revoked_at FROM api_keys
		WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, wrap(err, "listing API keys of %s", accountID)
	}
	defer rows.Close()
	var out []store.APIKey
	for rows.Next() {
		var k store.APIKey
		var kc, kr int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.Hash, &kc, &kr); err != nil {
			return nil, wrap(err, "listing API keys of %s", accountID)
		}
		k.Hash, k.CreatedAt, k.RevokedAt = bytesOrNil(k.Hash), fromMicros(kc), revokedAt(kr)
		out = append(out, k)
	}
	return out, wrap(rows.Err(), "listing API keys of %s", accountID)
}

// RevokeAPIKey marks a key revoked; a revoked key keeps its first time.
func (s *Store) RevokeAPIKey(ctx context.Context, keyID string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur int64
		if err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM api_keys WHERE id = ?`, keyID).Scan(&cur); err != nil {
			return err
		}
		if cur != 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, micros(at), keyID)
		return err
	})
	return wrap(err, "revoking API key %s", keyID)
}

const validationCols = `id, account_id, domain, method, contact, secret, status, attempts,
	created_at, expires_at, validated_at, valid_until, evidence, version`

func scanValidation(sc scanner) (store.Validation, error) {
	var v store.Validation
	var st string
	var created, expires, validated, until int64
	err := sc.Scan(&v.ID, &v.AccountID, &v.Domain, &v.Method, &v.Contact, &v.Secret, &st, &v.Attempts,
		&created, &expires, &validated, &until, &v.Evidence, &v.Version)
	if err != nil {
		return store.Validation{}, err
	}
	v.Status = store.ValidationStatus(st)
	v.Secret, v.Evidence = bytesOrNil(v.Secret), bytesOrNil(v.Evidence)
	v.CreatedAt, v.ExpiresAt = fromMicros(created), fromMicros(expires)
	v.ValidatedAt, v.ValidUntil = fromMicros(validated), fromMicros(until)
	return v, nil
}

// CreateValidation stores a new validation as given (Version included).
func (s *Store) CreateValidation(ctx context.Context, v store.Validation) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO validations (`+validationCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.AccountID, v.Domain, v.Method, v.Contact, v.Secret, string(v.Status), v.Attempts,
		micros(v.CreatedAt), micros(v.ExpiresAt), micros(v.ValidatedAt), micros(v.ValidUntil), v.Evidence, v.Version)
	return wrap(err, "creating validation %s", v.ID)
}

// Validation returns the validation with that id.
func (s *Store) Validation(ctx context.Context, id string) (store.Validation, error) {
	v, err := scanValidation(s.r.QueryRowContext(ctx, `SELECT `+validationCols+` FROM validations WHERE id = ?`, id))
	return v, wrap(err, "reading validation %s", id)
}

// UpdateValidation stores v's mutable fields (contact, secret, status,
// attempts, expiry, validation times, evidence) if the stored Version is
// still v.Version, and returns the stored row with Version+1. Id, account,
// domain, method and creation time never change.
func (s *Store) UpdateValidation(ctx context.Context, v store.Validation) (store.Validation, error) {
	var out store.Validation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanValidation(tx.QueryRowContext(ctx, `UPDATE validations SET
			contact = ?, secret = ?, status = ?, attempts = ?, expires_at = ?, validated_at = ?,
			valid_until = ?, evidence = ?, version = version + 1
			WHERE id = ? AND version = ? RETURNING `+validationCols,
			v.Contact, v.Secret, string(v.Status), v.Attempts, micros(v.ExpiresAt), micros(v.ValidatedAt),
			micros(v.ValidUntil), v.Evidence, v.ID, v.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, "validations", v.ID, v.Version)
		}
		return err
	})
	return out, wrap(err, "updating validation %s", v.ID)
}

// staleOrMissing explains why a versioned UPDATE matched nothing.
func staleOrMissing(ctx context.Context, tx *sql.Tx, table, id string, version int) error {
	var stored int
	err := tx.QueryRowContext(ctx, `SELECT version FROM `+table+` WHERE id = ?`, id).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: stored version %d, caller has %d", store.ErrConflict, stored, version)
}

// ValidValidations returns the account's validations that are valid and
// whose ValidUntil is after now, oldest first.
func (s *Store) ValidValidations(ctx context.Context, accountID string, now time.Time) ([]store.Validation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+validationCols+` FROM validations
		WHERE account_id = ? AND status = ? AND valid_until > ? ORDER BY created_at, id`,
		accountID, string(store.ValidationValid), micros(now))
	if err != nil {
		return nil, wrap(err, "listing valid validations of %s", accountID)
	}
	vs, err := collect(rows, scanValidation)
	return vs, wrap(err, "listing valid validations of %s", accountID)
}

// ListValidations returns the account's validations, newest first.
func (s *Store) ListValidations(ctx context.Context, accountID string, limit int) ([]store.Validation, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+validationCols+` FROM validations
		WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, wrap(err, "listing validations of %s", accountID)
	}
	vs, err := collect(rows, scanValidation)
	return vs, wrap(err, "listing validations of %s", accountID)
}

// collect reads every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const orderCols = `id, account_id, profile, csr, names, organization, status, serial, reject_reason,
	created_at, updated_at, version, validity_seconds, account_uri`

func scanOrder(sc scanner) (store.Order, error) {
	var o store.Order
	var names, st, ser string
	var created, updated, validity int64
	err := sc.Scan(&o.ID, &o.AccountID, &o.Profile, &o.CSR, &names, &o.Organization, &st, &ser, &o.RejectReason,
		&created, &updated, &o.Version, &validity, &o.AccountURI)
	if err != nil {
		return store.Order{}, err
	}
	if err := json.Unmarshal([]byte(names), &o.Names); err != nil {
		return store.Order{}, fmt.Errorf("order %s: decoding names: %w", o.ID, err)
	}
	if len(o.Names) == 0 {
		o.Names = nil
	}
	o.Status, o.Serial = store.OrderStatus(st), serial.Serial(ser)
	o.Validity = time.Duration(validity) * time.Second
	o.CSR, o.Organization = bytesOrNil(o.CSR), bytesOrNil(o.Organization)
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	return o, nil
}

func namesJSON(names []string) (string, error) {
	if names == nil {
		names = []string{}
	}
	b, err := json.Marshal(names)
	return string(b), err
}

// CreateOrder stores a new order as given.
func (s *Store) CreateOrder(ctx context.Context, o store.Order) error {
	names, err := namesJSON(o.Names)
	if err != nil {
		return wrap(err, "creating order %s", o.ID)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO orders (`+orderCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.AccountID, o.Profile, o.CSR, names, o.Organization, string(o.Status), string(o.Serial), o.RejectReason,
		micros(o.CreatedAt), micros(o.UpdatedAt), o.Version, int64(o.Validity/time.Second), o.AccountURI)
	return wrap(err, "creating order %s", o.ID)
}

// Order returns the order with that id.
func (s *Store) Order(ctx context.Context, id string) (store.Order, error) {
	o, err := scanOrder(s.r.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ?`, id))
	return o, wrap(err, "reading order %s", id)
}

// UpdateOrder stores o's mutable fields (names, organization, status,
// serial, reject reason, UpdatedAt) if the stored Version is still
// o.Version, and returns the stored row with Version+1.
func (s *Store) UpdateOrder(ctx context.Context, o store.Order) (store.Order, error) {
	names, err := namesJSON(o.Names)
	if err != nil {
		return store.Order{}, wrap(err, "updating order %s", o.ID)
	}
	var out store.Order
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanOrder(tx.QueryRowContext(ctx, `UPDATE orders SET
			names = ?, organization = ?, status = ?, serial = ?, reject_reason = ?, updated_at = ?,
			version = version + 1
			WHERE id = ? AND version = ? RETURNING `+orderCols,
			names, o.Organization, string(o.Status), string(o.Serial), o.RejectReason, micros(o.UpdatedAt),
			o.ID, o.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, "orders", o.ID, o.Version)
		}
		return err
	})
	return out, wrap(err, "updating order %s", o.ID)
}

// ListOrders returns the orders matching f, newest first.
func (s *Store) ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error) {
	q := `SELECT ` + orderCols + ` FROM orders WHERE 1 = 1`
	var args []any
	if f.AccountID != "" {
		q += ` AND account_id = ?`
		args = append(args, f.AccountID)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if f.OldestFirst {
		q += ` ORDER BY created_at, id LIMIT ?`
	} else {
		q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err, "listing orders")
	}
	out, err := collect(rows, scanOrder)
	return out, wrap(err, "listing orders")
}

// AddReview records a reviewer's decision on an existing order.
func (s *Store) AddReview(ctx context.Context, r store.Review) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO reviews (order_id, reviewer_id, decision, notes, evidence, at)
		VALUES (?, ?, ?, ?, ?, ?)`, r.OrderID, r.ReviewerID, r.Decision, r.Notes, r.Evidence, micros(r.At))
	return wrap(err, "adding review of order %s", r.OrderID)
}

// Reviews returns an order's reviews, oldest first (ties in insertion order).
func (s *Store) Reviews(ctx context.Context, orderID string) ([]store.Review, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT order_id, reviewer_id, decision, notes, evidence, at
		FROM reviews WHERE order_id = ? ORDER BY at, id`, orderID)
	if err != nil {
		return nil, wrap(err, "listing reviews of order %s", orderID)
	}
	rs, err := collect(rows, func(sc scanner) (store.Review, error) {
		var r store.Review
		var at int64
		if err := sc.Scan(&r.OrderID, &r.ReviewerID, &r.Decision, &r.Notes, &r.Evidence, &at); err != nil {
			return r, err
		}
		r.Evidence, r.At = bytesOrNil(r.Evidence), fromMicros(at)
		return r, nil
	})
	return rs, wrap(err, "listing reviews of order %s", orderID)
}

// AddReviewPattern adds a Manual Review List entry.
func (s *Store) AddReviewPattern(ctx context.Context, p store.ReviewPattern) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO review_patterns (id, pattern, created_by, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.Pattern, p.CreatedBy, micros(p.CreatedAt))
	return wrap(err, "adding review pattern %s", p.ID)
}

// ReviewPatterns returns the Manual Review List, oldest first.
func (s *Store) ReviewPatterns(ctx context.Context) ([]store.ReviewPattern, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, pattern, created_by, created_at FROM review_patterns ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap(err, "listing review patterns")
	}
	ps, err := collect(rows, func(sc scanner) (store.ReviewPattern, error) {
		var p store.ReviewPattern
		var at int64
		err := sc.Scan(&p.ID, &p.Pattern, &p.CreatedBy, &at)
		p.CreatedAt = fromMicros(at)
		return p, err
	})
	return ps, wrap(err, "listing review patterns")
}

// DeleteReviewPattern removes an entry; ErrNotFound if there is none.
func (s *Store) DeleteReviewPattern(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM review_patterns WHERE id = ?`, id)
	if err == nil {
		err = mustAffect(res)
	}
	return wrap(err, "deleting review pattern %s", id)
}

// mustAffect turns "no row matched" into ErrNotFound.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
