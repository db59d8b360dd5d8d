package pkcs11key

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// breaker is a Token's circuit breaker. It opens (the token is down) when
// an operation finds the token unreachable; while it is open, operations
// fail at once with ErrUnavailable, except one probe per interval, and the
// first operation that reaches the token closes it again.
//
// Without it, every signature against a removed or failed device would pay
// for a lost session, a failed C_OpenSession and whatever timeout the
// module applies, holding a pooled session all the while: a queue behind a
// dead device instead of a quick answer the caller can degrade on.
type breaker struct {
	// down is all that operations read while the token answers.
	down atomic.Bool

	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	token    string // the token's label, for logs and errors

	mu        sync.Mutex // guards the rest; taken only around outages
	nextProbe time.Time  // when the next caller may go to the token
	since     time.Time  // when the token went down
	cause     error      // the latest error that showed it unreachable
}

// admit decides, while the breaker is open, whether a caller may go to the
// token: as the one probe of this interval (probe is true), or not at all
// (err wraps ErrUnavailable). The breaker may have closed since the caller
// looked; then the caller goes as an ordinary operation.
func (b *breaker) admit() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down.Load() {
		return false, nil
	}
	now := b.now()
	if now.Before(b.nextProbe) {
		// b.cause wraps ErrUnavailable.
		return false, fmt.Errorf("pkcs11key: token %q unreachable since %s, next probe in %v: %w",
			b.token, b.since.Format(time.RFC3339), b.nextProbe.Sub(now), b.cause)
	}
	b.nextProbe = now.Add(b.interval)
	return true, nil
}

// abandon gives back a probe that never reached the token (its caller
// stopped waiting for a session), so that the next caller may probe at
// once.
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		b.nextProbe = b.now()
	}
}

// record updates the breaker with the result of an operation that went to
// the token: an error wrapping ErrUnavailable opens it, anything else
// (success, or an error the token answered with) closes it.
func (b *breaker) record(err error) {
	if err == nil && !b.down.Load() {
		return // the fast path, inlined
	}
	b.update(err)
}

// update is record's slow path.
func (b *breaker) update(err error) {
	if errors.Is(err, ErrUnavailable) {
		b.trip(err)
		return
	}
	if b.down.Load() {
		b.reset()
	}
}

// trip opens the breaker, or keeps it open after a failed probe, and puts
// the next probe an interval away.
func (b *breaker) trip(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.nextProbe = now.Add(b.interval)
	b.cause = err
	if b.down.Load() {
		b.log.Debug("pkcs11 token still unavailable", "token", b.token, "error", err)
		return
	}
	b.since = now
	b.down.Store(true)
	b.log.Warn("pkcs11 token unavailable, failing operations fast",
		"token", b.token, "error", err, "probe_interval", b.interval)
}

// reset closes the breaker.
func (b *breaker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down.Load() {
		return
	}
	b.down.Store(false)
	b.log.Info("pkcs11 token available again",
		"token", b.token, "unavailable_for", b.now().Sub(b.since))
	b.cause = nil
}

// tokenDown reports errors from C_OpenSession or C_Login that are about the
// token or the device rather than the session or the request, so that
// opening a session on it again will fail the same way until something
// changes on the device's side. It is consulted only for those two calls:
// they touch no key and no caller input, so a device error from them is not
// one key's or one request's problem; and calls on a session report a
// removed token as CKR_SESSION_HANDLE_INVALID, leaving C_OpenSession the
// one to say CKR_TOKEN_NOT_PRESENT. C_Sign's errors never open the breaker
// by themselves (a transient CKR_DEVICE_ERROR is replaced and retried), but
// they drop the session, and the next C_OpenSession finds out whether the
// token is gone.
//
// Not listed, on purpose: CKR_PIN_INCORRECT and CKR_PIN_LOCKED (the token
// answered; failing fast would hide a configuration error behind
// ErrUnavailable), CKR_CRYPTOKI_NOT_INITIALIZED and CKR_HOST_MEMORY (the
// library or the host, which fail without a round trip anyway),
// CKR_FUNCTION_FAILED and vendor-defined values (too vague to take a token
// out of service on).
func tokenDown(err error) bool {
	var ckr pkcs11.Error
	if !errors.As(err, &ckr) {
		return false
	}
	switch ckr {
	case pkcs11.CKR_TOKEN_NOT_PRESENT, // removed, or a network HSM out of reach
		pkcs11.CKR_DEVICE_REMOVED,       // removed during the call
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED, // present but not answering as a token
		pkcs11.CKR_SLOT_ID_INVALID,      // the slot itself went away (re-enumerated)
		pkcs11.CKR_DEVICE_ERROR,         // the device failed
		pkcs11.CKR_DEVICE_MEMORY,        // the device is out of memory
		pkcs11.CKR_GENERAL_ERROR,        // "unrecoverable" (PKCS#11 v2.40 §5.1.1)
		pkcs11.CKR_SESSION_COUNT:        // the device has no session left to give
		return true
	}
	return false
}

// unreachable wraps err, the failure of an operation whose session could
// not be opened or replaced, in ErrUnavailable when openErr, the failure
// of C_OpenSession or C_Login, shows the token itself is gone.
func unreachable(err, openErr error) error {
	if !tokenDown(openErr) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
