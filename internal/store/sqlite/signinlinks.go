package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// Portal sign-in links. Messages never name a link: its key is as good as
// a password's hash.

const linkCols = `token_hash, account_id, created_at, expires_at`

// CreateSignInLink stores l unless the account's newest link is less than
// lim.Interval old or lim.Total links are live, and trims the account's
// oldest links beyond lim.PerAccount, in one write transaction (which the
// single writer serialises, so racing requests keep the limits).
func (s *Store) CreateSignInLink(ctx context.Context, l store.SignInLink, lim store.SignInLinkLimits) (bool, error) {
	if err := lim.Validate(); err != nil {
		return false, fmt.Errorf("sqlite: creating sign-in link: %w", err)
	}
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Checked first: an unknown account has no links to limit it, and
		// must not be answered "rate-limited".
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, l.AccountID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no such account: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading the account: %w", err)
		}
		// The live count stops at Total: that is all the bound needs.
		var recent bool
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM signin_links WHERE account_id = ? AND created_at > ?),
			(SELECT count(*) FROM (SELECT 1 FROM signin_links WHERE expires_at > ? LIMIT ?))`,
			l.AccountID, micros(l.CreatedAt)-lim.Interval.Microseconds(), micros(l.CreatedAt), lim.Total).Scan(&recent, &live); err != nil {
			return fmt.Errorf("checking the limits: %w", err)
		}
		if recent || live >= lim.Total {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signin_links (`+linkCols+`) VALUES (?, ?, ?, ?)`,
			l.TokenHash, l.AccountID, micros(l.CreatedAt), micros(l.ExpiresAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signin_links
			WHERE account_id = ?1 AND token_hash <> ?2 AND token_hash NOT IN (
				SELECT token_hash FROM signin_links WHERE account_id = ?1 AND token_hash <> ?2
				ORDER BY created_at DESC, token_hash LIMIT ?3)`,
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
	var created, expires int64
	err := sc.Scan(&l.TokenHash, &l.AccountID, &created, &expires)
	l.CreatedAt, l.ExpiresAt = fromMicros(created), fromMicros(expires)
	return l, err
}

// SignInLink returns a link, expired or not, without using it up.
func (s *Store) SignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error) {
	l, err := scanLink(s.r.QueryRowContext(ctx, `SELECT `+linkCols+` FROM signin_links WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return store.SignInLink{}, wrap(err, "reading sign-in link")
	}
	return l, nil
}

// ConsumeSignInLink deletes a link and returns it, in one statement on
// the single writer: of racing consumers, one finds the row.
func (s *Store) ConsumeSignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error) {
	l, err := scanLink(s.w.QueryRowContext(ctx, `DELETE FROM signin_links WHERE token_hash = ? RETURNING `+linkCols, tokenHash))
	if err != nil {
		return store.SignInLink{}, wrap(err, "consuming sign-in link")
	}
	return l, nil
}

// DeleteExpiredSignInLinks deletes the links expired at now.
func (s *Store) DeleteExpiredSignInLinks(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM signin_links WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, wrap(err, "deleting expired sign-in links")
	}
	n, err := res.RowsAffected()
	return n, wrap(err, "deleting expired sign-in links")
}
