package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store"
)

// Portal sign-in links. Messages never name a link: its key is as good as
// a password's hash.

const linkCols = `token_hash, account_id, created_at, expires_at`

// CreateSignInLink stores l unless the account's newest link is less than
// lim.Interval old or lim.Total links are live, and trims the account's
// oldest links beyond lim.PerAccount, in one transaction. It first locks
// the account's row (FOR NO KEY UPDATE, as CreatePortalSession does), so
// racing requests for one account take turns and keep the limits.
func (s *Store) CreateSignInLink(ctx context.Context, l store.SignInLink, lim store.SignInLinkLimits) (bool, error) {
	if err := lim.Validate(); err != nil {
		return false, fmt.Errorf("postgres: creating sign-in link: %w", err)
	}
	created := false
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, l.AccountID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no such account: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("locking the account: %w", err)
		}
		// The live count stops at Total: that is all the bound needs.
		var recent bool
		var live int
		if err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM signin_links WHERE account_id = $1 AND created_at > $2),
			(SELECT count(*) FROM (SELECT 1 FROM signin_links WHERE expires_at > $3 LIMIT $4) AS l)`,
			l.AccountID, ts(l.CreatedAt).Add(-lim.Interval), ts(l.CreatedAt), lim.Total).Scan(&recent, &live); err != nil {
			return fmt.Errorf("checking the limits: %w", err)
		}
		if recent || live >= lim.Total {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signin_links (`+linkCols+`) VALUES ($1, $2, $3, $4)`,
			l.TokenHash, l.AccountID, ts(l.CreatedAt), ts(l.ExpiresAt)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signin_links
			WHERE account_id = $1 AND token_hash <> $2 AND token_hash NOT IN (
				SELECT token_hash FROM signin_links WHERE account_id = $1 AND token_hash <> $2
				ORDER BY created_at DESC, token_hash LIMIT $3)`,
			l.AccountID, l.TokenHash, lim.PerAccount-1); err != nil {
			return fmt.Errorf("dropping the account's oldest links: %w", err)
		}
		created = true
		return nil
	})
	if err != nil {
		return false, wrap(err, "creating sign-in link for account %s", l.AccountID)
	}
	return created, nil
}

func scanLink(sc scanner) (store.SignInLink, error) {
	var l store.SignInLink
	err := sc.Scan(&l.TokenHash, &l.AccountID, &l.CreatedAt, &l.ExpiresAt)
	l.CreatedAt, l.ExpiresAt = fromTS(l.CreatedAt), fromTS(l.ExpiresAt)
	return l, err
}

// SignInLink returns a link, expired or not, without using it up.
func (s *Store) SignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error) {
	l, err := queryRow(ctx, s, scanLink, `SELECT `+linkCols+` FROM signin_links WHERE token_hash = $1`, tokenHash)
	if err != nil {
		return store.SignInLink{}, wrap(err, "reading sign-in link")
	}
	return l, nil
}

// ConsumeSignInLink deletes a link and returns it. Of racing consumers,
// the first deletes the row; the others wait for its lock, then find
// nothing.
func (s *Store) ConsumeSignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error) {
	l, err := queryRow(ctx, s, scanLink, `DELETE FROM signin_links WHERE token_hash = $1 RETURNING `+linkCols, tokenHash)
	if err != nil {
		return store.SignInLink{}, wrap(err, "consuming sign-in link")
	}
	return l, nil
}

// DeleteExpiredSignInLinks deletes the links expired at now.
func (s *Store) DeleteExpiredSignInLinks(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.exec(ctx, `DELETE FROM signin_links WHERE expires_at <= $1`, ts(now))
	if err != nil {
		return 0, wrap(err, "deleting expired sign-in links")
	}
	return tag.RowsAffected(), nil
}
