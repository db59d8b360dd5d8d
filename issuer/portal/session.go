package portal

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// Sessions live in the store (store.PortalSession), so any API instance
// serves any signed-in browser and a restart signs nobody out. The cookie
// holds a random 256-bit token; the store has only its SHA-256, and the
// session's form token is derived from the token, so reading the table
// gives neither.

// SessionStore is the subset of the store sessions are kept in
// (store.Store's portal-session methods; see them for the contract).
type SessionStore interface {
	CreatePortalSession(ctx context.Context, s store.PortalSession, maxPerAccount int) error
	PortalSession(ctx context.Context, tokenHash []byte) (store.PortalSession, error)
	TouchPortalSession(ctx context.Context, tokenHash []byte, at, idleExpiresAt time.Time) error
	SetPortalSessionNotice(ctx context.Context, tokenHash []byte, notice string) error
	DeletePortalSession(ctx context.Context, tokenHash []byte) error
	DeleteExpiredPortalSessions(ctx context.Context, now time.Time) (int64, error)
}

const (
	// maxTouchInterval: a session's use is written at most once in this
	// long (in a tenth of the idle timeout, if shorter), to keep store
	// writes off most requests. The idle timeout therefore ends a session
	// between idle minus this and idle after its last use.
	maxTouchInterval = time.Minute
	// sweepInterval: expired sessions and sign-in links are deleted, on
	// sign-in and on link requests, at most this often per process.
	// Meanwhile expired sessions are deleted when next presented, and
	// expired links refused.
	sweepInterval = time.Minute
	// noticeTimeout bounds the store calls of setNotice and takeNotice,
	// whose callers have no request context to give them.
	noticeTimeout = 5 * time.Second
)

// session is a snapshot of a signed-in browser's session.
type session struct {
	accountID string
	csrf      string // the session's form token
}

// sessionState says why a cookie did or did not resolve to a session.
type sessionState int

const (
	sessionNone        sessionState = iota // no cookie, an unknown token, or a session ended
	sessionExpired                         // known token, past its lifetime or idle limit
	sessionOK                              // signed in
	sessionUnavailable                     // the store could not be asked
)

// sessionTable starts, resolves and ends sessions over a SessionStore.
type sessionTable struct {
	st         SessionStore
	rnd        io.Reader
	log        *slog.Logger
	lifetime   time.Duration
	idle       time.Duration
	perAccount int
	touchEvery time.Duration
}

func newSessions(st SessionStore, cfg Config, rnd io.Reader, log *slog.Logger) *sessionTable {
	return &sessionTable{st: st, rnd: rnd, log: log, lifetime: cfg.SessionLifetime, idle: cfg.SessionIdle,
		perAccount: cfg.SessionsPerAccount, touchEvery: min(maxTouchInterval, cfg.SessionIdle/10)}
}

// tableKey is a token's SHA-256, the key sessions and sign-in links are
// kept under.
func tableKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return string(sum[:])
}

// csrfToken derives a session's form token from its token. Nobody without
// the token can compute it, and it does not reveal the token.
func csrfToken(token string) string {
	sum := sha256.Sum256([]byte("trustline portal session form token\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomToken returns n random octets in unpadded base64url.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("portal: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// plausible screens cookie values before they cost a store query.
func plausible(token string) bool { return token != "" && len(token) <= 100 }

// start signs accountID in and returns the new session's token (the
// cookie's value). The store ends the account's least recently used
// sessions beyond perAccount, so signing in many times ends only one's
// own sessions.
func (t *sessionTable) start(ctx context.Context, accountID string, now time.Time) (string, session, error) {
	tok, err := randomToken(t.rnd, 32)
	if err != nil {
		return "", session{}, err
	}
	ps := store.PortalSession{
		TokenHash:     []byte(tableKey(tok)),
		AccountID:     accountID,
		CreatedAt:     now,
		LastUsed:      now,
		ExpiresAt:     now.Add(t.lifetime),
		IdleExpiresAt: now.Add(t.idle),
	}
	if err := t.st.CreatePortalSession(ctx, ps, t.perAccount); err != nil {
		return "", session{}, fmt.Errorf("portal: starting a session: %w", err)
	}
	return tok, session{accountID: accountID, csrf: csrfToken(tok)}, nil
}

// sweeper deletes expired sessions and sign-in links from the store.
type sweeper struct {
	sessions SessionStore
	links    LinkStore
	log      *slog.Logger
	last     atomic.Int64 // UnixNano of the last sweep
}

// sweep deletes expired sessions and links if no sweep ran in the last
// sweepInterval. A failure is logged: both are also refused when
// presented.
func (s *sweeper) sweep(ctx context.Context, now time.Time) {
	last := s.last.Load()
	if now.UnixNano()-last < int64(sweepInterval) || !s.last.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if n, err := s.sessions.DeleteExpiredPortalSessions(ctx, now); err != nil {
		s.log.Warn("deleting expired portal sessions", "err", err)
	} else if n > 0 {
		s.log.Debug("deleted expired portal sessions", "count", n)
	}
	if n, err := s.links.DeleteExpiredSignInLinks(ctx, now); err != nil {
		s.log.Warn("deleting expired sign-in links", "err", err)
	} else if n > 0 {
		s.log.Debug("deleted expired sign-in links", "count", n)
	}
}

// lookup resolves a cookie value at now. An expired session is deleted; a
// live one has its use recorded if the last record is touchEvery old. An
// error is the store's, with sessionUnavailable.
func (t *sessionTable) lookup(ctx context.Context, tok string, now time.Time) (session, sessionState, error) {
	if !plausible(tok) {
		return session{}, sessionNone, nil
	}
	key := []byte(tableKey(tok))
	ps, err := t.st.PortalSession(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return session{}, sessionNone, nil
	}
	if err != nil {
		return session{}, sessionUnavailable, fmt.Errorf("portal: reading a session: %w", err)
	}
	if t.expired(ps, now) {
		if err := t.st.DeletePortalSession(ctx, key); err != nil {
			t.log.Warn("deleting an expired portal session", "err", err)
		}
		return session{}, sessionExpired, nil
	}
	if now.Sub(ps.LastUsed) >= t.touchEvery {
		err := t.st.TouchPortalSession(ctx, key, now, now.Add(t.idle))
		if errors.Is(err, store.ErrNotFound) {
			return session{}, sessionNone, nil // ended meanwhile, on another instance
		}
		if err != nil {
			return session{}, sessionUnavailable, fmt.Errorf("portal: recording a session's use: %w", err)
		}
	}
	return session{accountID: ps.AccountID, csrf: csrfToken(tok)}, sessionOK, nil
}

// expired reports whether a session is over: by the limits it was given,
// or by those in force now if they were lowered since.
func (t *sessionTable) expired(ps store.PortalSession, now time.Time) bool {
	return ps.Expired(now) || !now.Before(ps.CreatedAt.Add(t.lifetime)) || !now.Before(ps.LastUsed.Add(t.idle))
}

// end ends the session of a cookie value; an unknown one is no error.
func (t *sessionTable) end(ctx context.Context, tok string) error {
	if !plausible(tok) {
		return nil
	}
	if err := t.st.DeletePortalSession(ctx, []byte(tableKey(tok))); err != nil {
		return fmt.Errorf("portal: ending a session: %w", err)
	}
	return nil
}

// setNotice leaves a message for the next page the session sees. Its
// callers give no context, so it bounds the store call itself; a failure
// costs only the message, and is logged.
func (t *sessionTable) setNotice(tok, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
	defer cancel()
	err := t.st.SetPortalSessionNotice(ctx, []byte(tableKey(tok)), msg)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.log.Warn("leaving a notice for a portal session", "err", err)
	}
}

// takeNotice returns and clears the session's notice; see setNotice for
// its context. Two pages loading at once may both show it.
func (t *sessionTable) takeNotice(tok string) string {
	if !plausible(tok) {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
	defer cancel()
	key := []byte(tableKey(tok))
	ps, err := t.st.PortalSession(ctx, key)
	if err != nil || ps.Notice == "" {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.log.Warn("reading a portal session's notice", "err", err)
		}
		return ""
	}
	if err := t.st.SetPortalSessionNotice(ctx, key, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.log.Warn("clearing a portal session's notice", "err", err)
	}
	return ps.Notice
}
