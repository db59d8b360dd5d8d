package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store"
)

// SetAccountPerson records the person behind an account.
func (s *Store) SetAccountPerson(ctx context.Context, accountID, person string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET person = $2 WHERE id = $1`, accountID, person)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "setting the person of account %s", accountID)
}

const grantCols = `id, account_id, role, requested_by, requested_at, status, decided_by, decided_at`

func scanGrant(sc scanner) (store.RoleGrant, error) {
	var g store.RoleGrant
	var role, status string
	var dec *time.Time
	err := sc.Scan(&g.ID, &g.AccountID, &role, &g.RequestedBy, &g.RequestedAt, &status, &g.DecidedBy, &dec)
	g.Role, g.Status, g.RequestedAt = store.Role(role), store.GrantStatus(status), fromTS(g.RequestedAt)
	if dec != nil {
		g.DecidedAt = fromTS(*dec)
	}
	return g, err
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

// CreateRoleGrant stores a grant.
func (s *Store) CreateRoleGrant(ctx context.Context, g store.RoleGrant) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO role_grants (`+grantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		g.ID, g.AccountID, string(g.Role), g.RequestedBy, ts(g.RequestedAt), string(g.Status), g.DecidedBy, nullTime(g.DecidedAt))
	return wrap(err, "creating role grant %s", g.ID)
}

// RoleGrant returns one grant.
func (s *Store) RoleGrant(ctx context.Context, id string) (store.RoleGrant, error) {
	g, err := queryRow(ctx, s, scanGrant, `SELECT `+grantCols+` FROM role_grants WHERE id = $1`, id)
	return g, wrap(err, "reading role grant %s", id)
}

// RoleGrants lists grants in status, oldest first.
func (s *Store) RoleGrants(ctx context.Context, status store.GrantStatus) ([]store.RoleGrant, error) {
	out, err := query(ctx, s, scanGrant, `SELECT `+grantCols+` FROM role_grants WHERE $1 = '' OR status = $1 ORDER BY requested_at, id`, string(status))
	return out, wrap(err, "listing role grants")
}

// DecideRoleGrant decides a pending grant and applies an approval.
func (s *Store) DecideRoleGrant(ctx context.Context, id string, status store.GrantStatus, by string, at time.Time) (store.RoleGrant, error) {
	var g store.RoleGrant
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if g, err = scanGrant(tx.QueryRow(ctx, `SELECT `+grantCols+` FROM role_grants WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return err
		}
		if g.Status != store.GrantPending {
			return store.ErrConflict
		}
		g.Status, g.DecidedBy, g.DecidedAt = status, by, ts(at)
		if _, err := tx.Exec(ctx, `UPDATE role_grants SET status = $2, decided_by = $3, decided_at = $4 WHERE id = $1`,
			id, string(status), by, ts(at)); err != nil {
			return err
		}
		if status == store.GrantApproved {
			_, err = tx.Exec(ctx, `UPDATE accounts SET role = $2 WHERE id = $1`, g.AccountID, string(g.Role))
		}
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return store.RoleGrant{}, store.ErrConflict
	}
	return g, wrap(err, "deciding role grant %s", id)
}
