package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// SetAccountPerson records the person behind an account.
func (s *Store) SetAccountPerson(ctx context.Context, accountID, person string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET person = ? WHERE id = ?`, person, accountID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	return wrap(err, "setting the person of account %s", accountID)
}

const grantCols = `id, account_id, role, requested_by, requested_at, status, decided_by, decided_at`

func scanGrant(sc scanner) (store.RoleGrant, error) {
	var g store.RoleGrant
	var role, status string
	var req, dec int64
	err := sc.Scan(&g.ID, &g.AccountID, &role, &g.RequestedBy, &req, &status, &g.DecidedBy, &dec)
	g.Role, g.Status, g.RequestedAt, g.DecidedAt = store.Role(role), store.GrantStatus(status), fromMicros(req), fromMicros(dec)
	return g, err
}

// CreateRoleGrant stores a grant.
func (s *Store) CreateRoleGrant(ctx context.Context, g store.RoleGrant) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO role_grants (`+grantCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.AccountID, string(g.Role), g.RequestedBy, micros(g.RequestedAt), string(g.Status), g.DecidedBy, micros(g.DecidedAt))
		return err
	})
	return wrap(err, "creating role grant %s", g.ID)
}

// RoleGrant returns one grant.
func (s *Store) RoleGrant(ctx context.Context, id string) (store.RoleGrant, error) {
	g, err := scanGrant(s.r.QueryRowContext(ctx, `SELECT `+grantCols+` FROM role_grants WHERE id = ?`, id))
	return g, wrap(err, "reading role grant %s", id)
}

// RoleGrants lists grants in status, oldest first.
func (s *Store) RoleGrants(ctx context.Context, status store.GrantStatus) ([]store.RoleGrant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+grantCols+` FROM role_grants WHERE ? = '' OR status = ? ORDER BY requested_at, id`,
		string(status), string(status))
	if err != nil {
		return nil, wrap(err, "listing role grants")
	}
	defer rows.Close()
	var out []store.RoleGrant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, wrap(err, "listing role grants")
		}
		out = append(out, g)
	}
	return out, wrap(rows.Err(), "listing role grants")
}

// DecideRoleGrant decides a pending grant and applies an approval.
func (s *Store) DecideRoleGrant(ctx context.Context, id string, status store.GrantStatus, by string, at time.Time) (store.RoleGrant, error) {
	var g store.RoleGrant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if g, err = scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantCols+` FROM role_grants WHERE id = ?`, id)); err != nil {
			return err
		}
		if g.Status != store.GrantPending {
			return store.ErrConflict
		}
		g.Status, g.DecidedBy, g.DecidedAt = status, by, at.UTC().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `UPDATE role_grants SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`,
			string(status), by, micros(at), id); err != nil {
			return err
		}
		if status == store.GrantApproved {
			_, err = tx.ExecContext(ctx, `UPDATE accounts SET role = ? WHERE id = ?`, string(g.Role), g.AccountID)
		}
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return store.RoleGrant{}, store.ErrConflict
	}
	return g, wrap(err, "deciding role grant %s", id)
}
