package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
		return fmt.Errorf("postgres: creating account %s: key belongs to account %q", a.ID, k.AccountID)
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, email, role, created_at, created_by, person, email_verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			a.ID, a.Email, string(a.Role), ts(a.CreatedAt), a.CreatedBy, a.Person, nullTime(a.EmailVerifiedAt)); err != nil {
			return err
		}
		return insertAPIKey(ctx, tx, k)
	})
	return wrap(err, "creating account %s", a.ID)
}

func insertAPIKey(ctx context.Context, q querier, k store.APIKey) error {
	_, err := q.Exec(ctx, `INSERT INTO api_keys (id, account_id, hash, created_at) VALUES ($1, $2, $3, $4)`,
		k.ID, k.AccountID, k.Hash, ts(k.CreatedAt))
	return err
}

// AddAPIKey stores another key for an existing account (ErrNotFound if
// there is none).
func (s *Store) AddAPIKey(ctx context.Context, k store.APIKey) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := insertAPIKey(ctx, s.pool, k)
	return wrap(err, "adding API key %s", k.ID)
}

const accountCols = `a.id, a.email, a.role, a.created_at, a.created_by, a.person, a.email_verified_at`

func scanAccount(sc scanner) (store.Account, error) {
	var a store.Account
	var role string
	var verified *time.Time
	if err := sc.Scan(&a.ID, &a.Email, &role, &a.CreatedAt, &a.CreatedBy, &a.Person, &verified); err != nil {
		return store.Account{}, err
	}
	a.Role, a.CreatedAt, a.EmailVerifiedAt = store.Role(role), fromTS(a.CreatedAt), fromNullTS(verified)
	return a, nil
}

// Account returns the account with that id.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	a, err := queryRow(ctx, s, scanAccount, `SELECT `+accountCols+` FROM accounts a WHERE a.id = $1`, id)
	return a, wrap(err, "reading account %s", id)
}

// AccountsByEmail lists the accounts with that email (stored lowercase;
// the comparison is exact), oldest first.
func (s *Store) AccountsByEmail(ctx context.Context, email string) ([]store.Account, error) {
	out, err := query(ctx, s, scanAccount, `SELECT `+accountCols+` FROM accounts a WHERE a.email = $1 ORDER BY a.created_at, a.id`, email)
	return out, wrap(err, "reading accounts by email")
}

// VerifyAccountEmail records the confirmation of an account's address.
func (s *Store) VerifyAccountEmail(ctx context.Context, id, email string, at time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, $3) WHERE id = $1 AND email = $2`, id, email, ts(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "confirming the address of account %s", id)
}

// APIKey returns a key and the account it belongs to.
func (s *Store) APIKey(ctx context.Context, keyID string) (store.APIKey, store.Account, error) {
	type keyAndAccount struct {
		k store.APIKey
		a store.Account
	}
	r, err := queryRow(ctx, s, func(sc scanner) (keyAndAccount, error) {
		var r keyAndAccount
		var role string
		var revoked, verified *time.Time
		err := sc.Scan(&r.k.ID, &r.k.AccountID, &r.k.Hash, &r.k.CreatedAt, &revoked, &r.a.ID, &r.a.Email, &role, &r.a.CreatedAt, &r.a.CreatedBy, &r.a.Person, &verified)
		r.k.Hash, r.k.CreatedAt, r.k.RevokedAt = bytesOrNil(r.k.Hash), fromTS(r.k.CreatedAt), fromNullTS(revoked)
		r.a.Role, r.a.CreatedAt, r.a.EmailVerifiedAt = store.Role(role), fromTS(r.a.CreatedAt), fromNullTS(verified)
		return r, err
	}, `SELECT k.id, k.account_id, k.hash, k.created_at, k.revoked_at, `+accountCols+`
		FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1`, keyID)
	if err != nil {
		return store.APIKey{}, store.Account{}, wrap(err, "reading API key %s", keyID)
	}
	return r.k, r.a, nil
}

// fromNullTS reads a nullable time column (api_keys.revoked_at,
// accounts.email_verified_at): NULL is the zero time.
func fromNullTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return fromTS(*t)
}

// APIKeys lists an account's keys, oldest first.
func (s *Store) APIKeys(ctx context.Context, accountID string) ([]store.APIKey, error) {
	out, err := query(ctx, s, func(sc scanner) (store.APIKey, error) {
		var k store.APIKey
		var revoked *time.Time
		err := sc.Scan(&k.ID, &k.AccountID, &k.Hash, &k.CreatedAt, &revoked)
		k.Hash, k.CreatedAt, k.RevokedAt = bytesOrNil(k.Hash), fromTS(k.CreatedAt), fromNullTS(revoked)
		return k, err
	}, `SELECT id, account_id, hash, created_at, revoked_at FROM api_keys WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	return out, wrap(err, "listing API keys of %s", accountID)
}

// RevokeAPIKey marks a key revoked; a revoked key keeps its first time.
func (s *Store) RevokeAPIKey(ctx context.Context, keyID string, at time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, keyID, ts(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "revoking API key %s", keyID)
}

const validationCols = `id, account_id, domain, method, contact, secret, status, attempts,
	created_at, expires_at, validated_at, valid_until, evidence, version`

func scanValidation(sc scanner) (store.Validation, error) {
	var v store.Validation
	var st string
	err := sc.Scan(&v.ID, &v.AccountID, &v.Domain, &v.Method, &v.Contact, &v.Secret, &st, &v.Attempts,
		&v.CreatedAt, &v.ExpiresAt, &v.ValidatedAt, &v.ValidUntil, &v.Evidence, &v.Version)
	if err != nil {
		return store.Validation{}, err
	}
	v.Status = store.ValidationStatus(st)
	v.Secret, v.Evidence = bytesOrNil(v.Secret), bytesOrNil(v.Evidence)
	v.CreatedAt, v.ExpiresAt = fromTS(v.CreatedAt), fromTS(v.ExpiresAt)
	v.ValidatedAt, v.ValidUntil = fromTS(v.ValidatedAt), fromTS(v.ValidUntil)
	return v, nil
}

// CreateValidation stores a new validation as given (Version included).
func (s *Store) CreateValidation(ctx context.Context, v store.Validation) error {
	_, err := s.exec(ctx, `INSERT INTO validations (`+validationCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		v.ID, v.AccountID, v.Domain, v.Method, v.Contact, v.Secret, string(v.Status), v.Attempts,
		ts(v.CreatedAt), ts(v.ExpiresAt), ts(v.ValidatedAt), ts(v.ValidUntil), v.Evidence, v.Version)
	return wrap(err, "creating validation %s", v.ID)
}

// Validation returns the validation with that id.
func (s *Store) Validation(ctx context.Context, id string) (store.Validation, error) {
	v, err := queryRow(ctx, s, scanValidation, `SELECT `+validationCols+` FROM validations WHERE id = $1`, id)
	return v, wrap(err, "reading validation %s", id)
}

// UpdateValidation stores v's mutable fields (contact, secret, status,
// attempts, expiry, validation times, evidence) if the stored Version is
// still v.Version, and returns the stored row with Version+1. Id, account,
// domain, method and creation time never change.
func (s *Store) UpdateValidation(ctx context.Context, v store.Validation) (store.Validation, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	out, err := scanValidation(s.pool.QueryRow(ctx, `UPDATE validations SET
		contact = $1, secret = $2, status = $3, attempts = $4, expires_at = $5, validated_at = $6,
		valid_until = $7, evidence = $8, version = version + 1
		WHERE id = $9 AND version = $10 RETURNING `+validationCols,
		v.Contact, v.Secret, string(v.Status), v.Attempts, ts(v.ExpiresAt), ts(v.ValidatedAt),
		ts(v.ValidUntil), v.Evidence, v.ID, v.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = staleOrMissing(ctx, s.pool, "validations", v.ID, v.Version)
	}
	return out, wrap(err, "updating validation %s", v.ID)
}

// staleOrMissing explains why a versioned UPDATE matched nothing. (The row
// may have moved on again since; either way the caller's copy is stale.)
func staleOrMissing(ctx context.Context, q querier, table, id string, version int) error {
	var stored int
	err := q.QueryRow(ctx, `SELECT version FROM `+table+` WHERE id = $1`, id).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
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
	vs, err := query(ctx, s, scanValidation, `SELECT `+validationCols+` FROM validations
		WHERE account_id = $1 AND status = $2 AND valid_until > $3 ORDER BY created_at, id`,
		accountID, string(store.ValidationValid), ts(now))
	return vs, wrap(err, "listing valid validations of %s", accountID)
}

// ListValidations returns the account's validations, newest first.
func (s *Store) ListValidations(ctx context.Context, accountID string, limit int) ([]store.Validation, error) {
	if limit <= 0 {
		limit = 100
	}
	vs, err := query(ctx, s, scanValidation, `SELECT `+validationCols+` FROM validations
		WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, accountID, limit)
	return vs, wrap(err, "listing validations of %s", accountID)
}

const orderCols = `id, account_id, profile, csr, names, organization, status, serial, reject_reason,
	created_at, updated_at, version, validity_seconds, account_uri`

func scanOrder(sc scanner) (store.Order, error) {
	var o store.Order
	var names, st, ser string
	var validity int64
	err := sc.Scan(&o.ID, &o.AccountID, &o.Profile, &o.CSR, &names, &o.Organization, &st, &ser, &o.RejectReason,
		&o.CreatedAt, &o.UpdatedAt, &o.Version, &validity, &o.AccountURI)
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
	o.CreatedAt, o.UpdatedAt = fromTS(o.CreatedAt), fromTS(o.UpdatedAt)
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
	_, err = s.exec(ctx, `INSERT INTO orders (`+orderCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		o.ID, o.AccountID, o.Profile, o.CSR, names, o.Organization, string(o.Status), string(o.Serial), o.RejectReason,
		ts(o.CreatedAt), ts(o.UpdatedAt), o.Version, int64(o.Validity/time.Second), o.AccountURI)
	return wrap(err, "creating order %s", o.ID)
}

// Order returns the order with that id.
func (s *Store) Order(ctx context.Context, id string) (store.Order, error) {
	o, err := queryRow(ctx, s, scanOrder, `SELECT `+orderCols+` FROM orders WHERE id = $1`, id)
	return o, wrap(err, "reading order %s", id)
}

// UpdateOrder stores o's mutable fields (names, organization, status,
// serial, reject reason, UpdatedAt) if the stored Version is still
// o.Version, and returns the stored row with Version+1.
func (s *Store) UpdateOrder(ctx context.Context, o store.Order) (store.Order, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	names, err := namesJSON(o.Names)
	if err != nil {
		return store.Order{}, wrap(err, "updating order %s", o.ID)
	}
	out, err := scanOrder(s.pool.QueryRow(ctx, `UPDATE orders SET
		names = $1, organization = $2, status = $3, serial = $4, reject_reason = $5, updated_at = $6,
		version = version + 1
		WHERE id = $7 AND version = $8 RETURNING `+orderCols,
		names, o.Organization, string(o.Status), string(o.Serial), o.RejectReason, ts(o.UpdatedAt),
		o.ID, o.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = staleOrMissing(ctx, s.pool, "orders", o.ID, o.Version)
	}
	return out, wrap(err, "updating order %s", o.ID)
}

// ListOrders returns the orders matching f, newest first.
func (s *Store) ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error) {
	q := `SELECT ` + orderCols + ` FROM orders WHERE true`
	var args []any
	if f.AccountID != "" {
		args = append(args, f.AccountID)
		q += fmt.Sprintf(` AND account_id = $%d`, len(args))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		q += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	order := `created_at DESC, id DESC`
	if f.OldestFirst {
		order = `created_at, id`
	}
	q += fmt.Sprintf(` ORDER BY %s LIMIT $%d`, order, len(args))
	out, err := query(ctx, s, scanOrder, q, args...)
	return out, wrap(err, "listing orders")
}

// AddReview records a reviewer's decision on an existing order.
func (s *Store) AddReview(ctx context.Context, r store.Review) error {
	_, err := s.exec(ctx, `INSERT INTO reviews (order_id, reviewer_id, decision, notes, evidence, at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.OrderID, r.ReviewerID, r.Decision, r.Notes, r.Evidence, ts(r.At))
	return wrap(err, "adding review of order %s", r.OrderID)
}

// Reviews returns an order's reviews, oldest first (ties in insertion order).
func (s *Store) Reviews(ctx context.Context, orderID string) ([]store.Review, error) {
	rs, err := query(ctx, s, func(sc scanner) (store.Review, error) {
		var r store.Review
		err := sc.Scan(&r.OrderID, &r.ReviewerID, &r.Decision, &r.Notes, &r.Evidence, &r.At)
		r.Evidence, r.At = bytesOrNil(r.Evidence), fromTS(r.At)
		return r, err
	}, `SELECT order_id, reviewer_id, decision, notes, evidence, at
		FROM reviews WHERE order_id = $1 ORDER BY at, id`, orderID)
	return rs, wrap(err, "listing reviews of order %s", orderID)
}

// AddReviewPattern adds a Manual Review List entry.
func (s *Store) AddReviewPattern(ctx context.Context, p store.ReviewPattern) error {
	_, err := s.exec(ctx, `INSERT INTO review_patterns (id, pattern, created_by, created_at) VALUES ($1, $2, $3, $4)`,
		p.ID, p.Pattern, p.CreatedBy, ts(p.CreatedAt))
	return wrap(err, "adding review pattern %s", p.ID)
}

// ReviewPatterns returns the Manual Review List, oldest first.
func (s *Store) ReviewPatterns(ctx context.Context) ([]store.ReviewPattern, error) {
	ps, err := query(ctx, s, func(sc scanner) (store.ReviewPattern, error) {
		var p store.ReviewPattern
		err := sc.Scan(&p.ID, &p.Pattern, &p.CreatedBy, &p.CreatedAt)
		p.CreatedAt = fromTS(p.CreatedAt)
		return p, err
	}, `SELECT id, pattern, created_by, created_at FROM review_patterns ORDER BY created_at, id`)
	return ps, wrap(err, "listing review patterns")
}

// DeleteReviewPattern removes an entry; ErrNotFound if there is none.
func (s *Store) DeleteReviewPattern(ctx context.Context, id string) error {
	tag, err := s.exec(ctx, `DELETE FROM review_patterns WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "deleting review pattern %s", id)
}
