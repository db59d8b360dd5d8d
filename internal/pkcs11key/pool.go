package pkcs11key

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// session is one slot of the pool. A session whose handle was lost and could
// not be replaced stays in the pool with open == false, so the pool keeps
// its size and the next user tries to reopen it.
type session struct {
	h    pkcs11.SessionHandle
	open bool
}

// acquire takes a session from the pool, waiting until ctx is done, the
// token closes, or (if wait > 0) wait has passed.
func (t *Token) acquire(ctx context.Context, wait time.Duration) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pkcs11key: waiting for a session: %w", err)
	}
	var s *session
	select {
	case s = <-t.pool:
	default:
		// The slow path pays for a timer; the fast one must not.
		var timeout <-chan time.Time
		if wait > 0 {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case s = <-t.pool:
		case <-ctx.Done():
			return nil, fmt.Errorf("pkcs11key: waiting for a session: %w", ctx.Err())
		case <-timeout:
			return nil, fmt.Errorf("pkcs11key: no session free within %v (pool of %d): %w",
				wait, t.cfg.Sessions, context.DeadlineExceeded)
		case <-t.done:
			return nil, fmt.Errorf("pkcs11key: %w", ErrClosed)
		}
	}
	if t.closed.Load() {
		t.release(s)
		return nil, fmt.Errorf("pkcs11key: %w", ErrClosed)
	}
	return s, nil
}

// release returns s, open or dropped, to the pool.
func (t *Token) release(s *session) { t.pool <- s }

// do runs op on a pooled session. When op fails because the session, the
// login or the device behind it is gone, the session is replaced and op runs
// once more on the fresh one. op's errors are returned unwrapped, except
// that ErrUnavailable wraps them when a session could not be opened because
// the token is gone; that, and only that, opens the breaker. While the
// breaker is open, do fails at once with ErrUnavailable unless its caller
// is let through as the interval's probe; while it is closed, it costs do
// three atomic loads.
func (t *Token) do(ctx context.Context, wait time.Duration, op func(pkcs11.SessionHandle) error) error {
	var probe bool
	if t.brk.down.Load() {
		var err error
		if probe, err = t.admit(); err != nil {
			return err
		}
	}
	s, err := t.acquire(ctx, wait)
	if err != nil {
		if probe {
			t.brk.abandon()
		}
		return err
	}
	defer t.release(s)
	// Callers that were already waiting for a session when the token went
	// down must not each go and find that out again. (One may become the
	// probe; record treats a probe's outcome like any other.)
	if !probe && t.brk.down.Load() {
		if _, err = t.admit(); err != nil {
			return err
		}
	}
	err = t.run(s, op)
	t.brk.record(err)
	return err
}

// admit asks the open breaker whether the caller may go to the token, as
// the interval's probe or (if it has just closed) as an ordinary caller.
func (t *Token) admit() (probe bool, err error) {
	if t.closed.Load() {
		return false, fmt.Errorf("pkcs11key: %w", ErrClosed)
	}
	return t.brk.admit()
}

// run is do's work on the session s it acquired.
func (t *Token) run(s *session, op func(pkcs11.SessionHandle) error) error {
	if !s.open {
		if err := t.openSession(s); err != nil {
			return unreachable(err, err) // the open error is all there is
		}
	}
	err := op(s.h)
	if !sessionLost(err) {
		return err
	}
	t.log.Warn("pkcs11 session lost, replacing it", "token", t.cfg.TokenLabel, "error", err)
	if rerr := t.openSession(s); rerr != nil {
		return unreachable(fmt.Errorf("%w; replacing the session: %w", err, rerr), rerr)
	}
	err = op(s.h)
	if sessionLost(err) {
		t.drop(s)
	}
	return err
}

// openSession gives s a fresh, logged-in session. The new session is opened
// before the old one is closed: a slot with no session left loses its
// login, and some modules (SoftHSM2 among them) then invalidate the object
// handles that signers hold.
func (t *Token) openSession(s *session) error {
	h, err := t.p11.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.drop(s)
		return fmt.Errorf("pkcs11key: opening a session on token %q: %w", t.cfg.TokenLabel, err)
	}
	if err := t.login(h); err != nil {
		_ = t.p11.CloseSession(h) // the login error is the one to report
		t.drop(s)
		return err
	}
	if s.open {
		// The old handle may already be gone; that is why it is replaced.
		_ = t.p11.CloseSession(s.h)
	}
	s.h, s.open = h, true
	return nil
}

// drop closes s's handle, if any, and marks it for reopening.
func (t *Token) drop(s *session) {
	if s.open {
		_ = t.p11.CloseSession(s.h) // it is being dropped because it failed
	}
	s.h, s.open = 0, false
}

// login logs the user in unless this application already is.
func (t *Token) login(h pkcs11.SessionHandle) error {
	err := t.p11.Login(h, pkcs11.CKU_USER, t.cfg.PIN)
	switch {
	case err == nil, isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return nil
	case isCKR(err, pkcs11.CKR_PIN_INCORRECT):
		return fmt.Errorf("pkcs11key: logging in to token %q: %w: %w", t.cfg.TokenLabel, ErrPINIncorrect, err)
	case isCKR(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("pkcs11key: logging in to token %q: the user PIN is locked: %w", t.cfg.TokenLabel, err)
	}
	return fmt.Errorf("pkcs11key: logging in to token %q: %w", t.cfg.TokenLabel, err)
}

// sessionLost reports errors after which a session is useless but a fresh
// one may work: the handle, the login or the device went away, or the
// session was left with an operation it will not finish.
func sessionLost(err error) bool {
	if err == nil {
		return false // before ckr, which escapes: no allocation on success
	}
	var ckr pkcs11.Error
	if !errors.As(err, &ckr) {
		return false
	}
	switch ckr {
	case pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_OPERATION_ACTIVE:
		return true
	}
	return false
}

// isCKR reports whether err wraps the PKCS#11 return value rv.
func isCKR(err error, rv uint) bool {
	if err == nil {
		return false // as in sessionLost
	}
	var ckr pkcs11.Error
	return errors.As(err, &ckr) && uint(ckr) == rv
}
