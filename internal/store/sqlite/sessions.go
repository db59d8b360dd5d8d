package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// Portal sessions. Messages never name a session: its key is as good as
// a password's hash.

const sessionCols = `token_hash, account_id, created_at, last_used, expires_at, idle_expires_at, notice`

// CreatePortalSession stores ps and ends the account's least recently used
// sessions beyond maxPerAccount, in one write transaction (which the single
// writer serialises, so racing sign-ins of one account keep the limit).
func (s *Store) CreatePortalSession(ctx context.Context, ps store.PortalSession, maxPerAccount int) error {
	if maxPerAccount < 1 {
		return fmt.Errorf("sqlite: creating portal session: maxPerAccount %d is below 1", maxPerAccount)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ps.TokenHash, ps.AccountID, micros(ps.CreatedAt), micros(ps.LastUsed), micros(ps.ExpiresAt),
			micros(minTime(ps.IdleExpiresAt, ps.ExpiresAt)), ps.Notice); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions
			WHERE account_id = ?1 AND token_hash <> ?2 AND token_hash NOT IN (
				SELECT token_hash FROM portal_sessions WHERE account_id = ?1 AND token_hash <> ?2
				ORDER BY last_used DESC, created_at DESC, token_hash LIMIT ?3)`,
			ps.AccountID, ps.TokenHash, maxPerAccount-1); err != nil {
			return fmt.Errorf("ending the account's oldest sessions: %w", err)
		}
		return nil
	})
	return wrap(err, "creating portal session for account %s", ps.AccountID)
}

// PortalSession returns a session, expired or not.
func (s *Store) PortalSession(ctx context.Context, tokenHash []byte) (store.PortalSession, error) {
	var ps store.PortalSession
	var created, used, expires, idle int64
	err := s.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM portal_sessions WHERE token_hash = ?`, tokenHash).
		Scan(&ps.TokenHash, &ps.AccountID, &created, &used, &expires, &idle, &ps.Notice)
	if err != nil {
		return store.PortalSession{}, wrap(err, "reading portal session")
	}
	ps.CreatedAt, ps.LastUsed, ps.ExpiresAt, ps.IdleExpiresAt = fromMicros(created), fromMicros(used), fromMicros(expires), fromMicros(idle)
	return ps, nil
}

// TouchPortalSession records a use and moves the idle expiry, capped at
// the absolute one; neither moves backwards (instances' clocks differ a
// little).
func (s *Store) TouchPortalSession(ctx context.Context, tokenHash []byte, at, idleExpiresAt time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE portal_sessions
		SET last_used = max(last_used, ?), idle_expires_at = min(expires_at, max(idle_expires_at, ?))
		WHERE token_hash = ?`, micros(at), micros(idleExpiresAt), tokenHash)
	if err == nil {
		err = mustAffect(res)
	}
	return wrap(err, "touching portal session")
}

// SetPortalSessionNotice sets the message for the session's next page.
func (s *Store) SetPortalSessionNotice(ctx context.Context, tokenHash []byte, notice string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE portal_sessions SET notice = ? WHERE token_hash = ?`, notice, tokenHash)
	if err == nil {
		err = mustAffect(res)
	}
	return wrap(err, "setting portal session notice")
}

// DeletePortalSession ends a session; one that is gone is no error.
func (s *Store) DeletePortalSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM portal_sessions WHERE token_hash = ?`, tokenHash)
	return wrap(err, "deleting portal session")
}

// DeleteExpiredPortalSessions deletes the sessions expired at now. The
// idle expiry is never after the absolute one, so it alone decides.
func (s *Store) DeleteExpiredPortalSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM portal_sessions WHERE idle_expires_at <= ?`, micros(now))
	if err != nil {
		return 0, wrap(err, "deleting expired portal sessions")
	}
	n, err := res.RowsAffected()
	return n, wrap(err, "deleting expired portal sessions")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
