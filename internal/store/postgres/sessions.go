package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store"
)

// Portal sessions. Messages never name a session: its key is as good as
// a password's hash.

const sessionCols = `token_hash, account_id, created_at, last_used, expires_at, idle_expires_at, notice`

// CreatePortalSession stores ps and ends the account's least recently used
// sessions beyond maxPerAccount, in one transaction. It first locks the
// account's row (FOR NO KEY UPDATE, which foreign-key checks do not wait
// for), so racing sign-ins of one account take turns and keep the limit.
func (s *Store) CreatePortalSession(ctx context.Context, ps store.PortalSession, maxPerAccount int) error {
	if maxPerAccount < 1 {
		return fmt.Errorf("postgres: creating portal session: maxPerAccount %d is below 1", maxPerAccount)
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, ps.AccountID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no such account: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("locking the account: %w", err)
		}
		idle := ps.IdleExpiresAt
		if ps.ExpiresAt.Before(idle) {
			idle = ps.ExpiresAt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO portal_sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ps.TokenHash, ps.AccountID, ts(ps.CreatedAt), ts(ps.LastUsed), ts(ps.ExpiresAt), ts(idle), ps.Notice); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM portal_sessions
			WHERE account_id = $1 AND token_hash <> $2 AND token_hash NOT IN (
				SELECT token_hash FROM portal_sessions WHERE account_id = $1 AND token_hash <> $2
				ORDER BY last_used DESC, created_at DESC, token_hash LIMIT $3)`,
			ps.AccountID, ps.TokenHash, maxPerAccount-1); err != nil {
			return fmt.Errorf("ending the account's oldest sessions: %w", err)
		}
		return nil
	})
	return wrap(err, "creating portal session for account %s", ps.AccountID)
}

// PortalSession returns a session, expired or not.
func (s *Store) PortalSession(ctx context.Context, tokenHash []byte) (store.PortalSession, error) {
	ps, err := queryRow(ctx, s, func(sc scanner) (store.PortalSession, error) {
		var ps store.PortalSession
		err := sc.Scan(&ps.TokenHash, &ps.AccountID, &ps.CreatedAt, &ps.LastUsed, &ps.ExpiresAt, &ps.IdleExpiresAt, &ps.Notice)
		ps.CreatedAt, ps.LastUsed, ps.ExpiresAt, ps.IdleExpiresAt = fromTS(ps.CreatedAt), fromTS(ps.LastUsed), fromTS(ps.ExpiresAt), fromTS(ps.IdleExpiresAt)
		return ps, err
	}, `SELECT `+sessionCols+` FROM portal_sessions WHERE token_hash = $1`, tokenHash)
	if err != nil {
		return store.PortalSession{}, wrap(err, "reading portal session")
	}
	return ps, nil
}

// TouchPortalSession records a use and moves the idle expiry, capped at
// the absolute one; neither moves backwards (instances' clocks differ a
// little).
func (s *Store) TouchPortalSession(ctx context.Context, tokenHash []byte, at, idleExpiresAt time.Time) error {
	tag, err := s.exec(ctx, `UPDATE portal_sessions
		SET last_used = GREATEST(last_used, $2), idle_expires_at = LEAST(expires_at, GREATEST(idle_expires_at, $3))
		WHERE token_hash = $1`, tokenHash, ts(at), ts(idleExpiresAt))
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "touching portal session")
}

// SetPortalSessionNotice sets the message for the session's next page.
func (s *Store) SetPortalSessionNotice(ctx context.Context, tokenHash []byte, notice string) error {
	tag, err := s.exec(ctx, `UPDATE portal_sessions SET notice = $2 WHERE token_hash = $1`, tokenHash, notice)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return wrap(err, "setting portal session notice")
}

// DeletePortalSession ends a session; one that is gone is no error.
func (s *Store) DeletePortalSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.exec(ctx, `DELETE FROM portal_sessions WHERE token_hash = $1`, tokenHash)
	return wrap(err, "deleting portal session")
}

// DeleteExpiredPortalSessions deletes the sessions expired at now. The
// idle expiry is never after the absolute one, so it alone decides.
func (s *Store) DeleteExpiredPortalSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.exec(ctx, `DELETE FROM portal_sessions WHERE idle_expires_at <= $1`, ts(now))
	if err != nil {
		return 0, wrap(err, "deleting expired portal sessions")
	}
	return tag.RowsAffected(), nil
}
