package pkcs11key

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/pkcs11key/hsmtest"
	"github.com/trustline/trustline/internal/testfix"
)

// Log messages the breaker tests look for.
const (
	logTripped   = "pkcs11 token unavailable, failing operations fast"
	logRecovered = "pkcs11 token available again"
)

// faultyToken is a SoftHSM2 token whose module injects faults, with the
// breaker on a settable clock (so no test waits for, or races, a probe
// interval) and its logs captured.
type faultyToken struct {
	*Token
	mod   *faultyModule
	clock *testfix.Clock
	logs  *testfix.Buffer
	key   *Signer
}

// openFaulty opens a token of the given pool size with one ECDSA key, then
// wraps its module. Its cleanup restores the module before the token
// closes, and fails the test if the PIN reached the logs.
func openFaulty(t *testing.T, sessions int) *faultyToken {
	t.Helper()
	cfg := fixture(t, sessions)
	logs := &testfix.Buffer{}
	tok, err := Open(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if strings.Contains(logs.String(), cfg.PIN) {
			t.Error("the PIN was logged")
		}
	})
	ft := &faultyToken{
		Token: tok,
		mod:   newFaultyModule(tok.p11),
		clock: testfix.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		logs:  logs,
		key:   generate(t, tok, "ec", keyfile.ECDSAP256),
	}
	tok.brk.now = ft.clock.Now
	tok.p11 = ft.mod
	t.Cleanup(ft.mod.restore)
	return ft
}

// sign signs a fresh digest with the token's key and returns the error.
func (ft *faultyToken) sign() error {
	_, err := ft.key.Sign(rand.Reader, digestOf(crypto.SHA256, "degraded"), crypto.SHA256)
	return err
}

// signOK signs n times, verifying every signature.
func (ft *faultyToken) signOK(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		d := digestOf(crypto.SHA256, fmt.Sprint("signature ", i))
		sig, err := ft.key.SignContext(context.Background(), d, crypto.SHA256)
		if err != nil {
			t.Fatalf("signature %d of %d: %v", i+1, n, err)
		}
		verify(t, ft.key.Public(), crypto.SHA256, d, sig)
	}
}

// takeDown removes the token and checks that the first signature finds
// out and opens the breaker.
func (ft *faultyToken) takeDown(t *testing.T) {
	t.Helper()
	ft.mod.remove()
	if err := ft.sign(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first signature on a removed token: %v, want ErrUnavailable", err)
	}
	if ft.Available() {
		t.Fatal("Available() = true after the token was found removed")
	}
}

// failFast runs n session-taking operations of every kind and checks that
// each fails with ErrUnavailable without a single call to the module.
func (ft *faultyToken) failFast(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	d := digestOf(crypto.SHA256, "fail fast")
	ops := []func() error{
		ft.sign,
		func() error { _, err := ft.key.SignContext(ctx, d, crypto.SHA256); return err },
		func() error { _, err := ft.FindKey(ctx, "ec"); return err },
		func() error { _, err := ft.GenerateKey(ctx, "new", keyfile.ECDSAP256); return err },
	}
	before := ft.mod.total()
	for i := range n {
		if err := ops[i%len(ops)](); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("operation %d while the breaker is open: %v, want ErrUnavailable", i, err)
		}
	}
	if calls := ft.mod.total() - before; calls != 0 {
		t.Fatalf("%d operations failing fast made %d module calls, want 0", n, calls)
	}
}

// TestTransientDeviceError: one C_Sign failing with CKR_DEVICE_ERROR costs
// a session, not the signature, and does not take the token out of
// service.
func TestTransientDeviceError(t *testing.T) {
	ft := openFaulty(t, 1)
	ft.mod.fail("Sign", pkcs11.CKR_DEVICE_ERROR, 1)
	opens := ft.mod.count("OpenSession")
	ft.signOK(t, 1)
	if n := ft.mod.count("Sign"); n != 2 {
		t.Errorf("C_Sign called %d times, want 2 (the failure and the retry)", n)
	}
	if n := ft.mod.count("OpenSession") - opens; n != 1 {
		t.Errorf("%d sessions opened, want 1 replacement", n)
	}
	if !ft.Available() || strings.Contains(ft.logs.String(), logTripped) {
		t.Error("a transient device error opened the breaker")
	}
}

// TestTokenRemovedFailsFast: once a signature finds the token removed,
// operations fail with ErrUnavailable without touching the module, except
// one probe per interval.
func TestTokenRemovedFailsFast(t *testing.T) {
	ft := openFaulty(t, 2)
	ft.takeDown(t)
	ft.failFast(t, 20)

	ft.clock.Advance(DefaultProbeInterval - time.Nanosecond)
	ft.failFast(t, 4)

	ft.clock.Advance(time.Nanosecond)
	// Two probes: the first finds the session the first signature left
	// open, the second the one it dropped; both must keep the breaker open.
	for i := range 2 {
		before, opens := ft.mod.total(), ft.mod.count("OpenSession")
		if err := ft.sign(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("probe %d of a removed token: %v, want ErrUnavailable", i+1, err)
		}
		if ft.mod.total() == before || ft.mod.count("OpenSession") != opens+1 {
			t.Fatalf("probe %d did not try to open a session", i+1)
		}
		// The failed probe puts the next one an interval away.
		ft.failFast(t, 20)
		ft.clock.Advance(DefaultProbeInterval)
	}

	if n := strings.Count(ft.logs.String(), logTripped); n != 1 {
		t.Errorf("%q logged %d times, want once", logTripped, n)
	}
	if ft.Available() {
		t.Error("Available() = true")
	}
}

// TestTokenRestored: after the token comes back, the next probe closes
// the breaker and every pooled session, all of which the removal ended,
// signs again.
func TestTokenRestored(t *testing.T) {
	const sessions = 3
	ft := openFaulty(t, sessions)
	ft.takeDown(t)
	ft.mod.restore()
	// A real removal ends every session of the application.
	if err := ft.mod.real.CloseAllSessions(ft.slot); err != nil {
		t.Fatal(err)
	}
	// Nothing tells the breaker the token is back until its next probe.
	ft.failFast(t, 4)

	ft.clock.Advance(DefaultProbeInterval)
	ft.signOK(t, 1)
	if !ft.Available() {
		t.Fatal("Available() = false after a successful probe")
	}
	if n := strings.Count(ft.logs.String(), logRecovered); n != 1 {
		t.Errorf("%q logged %d times, want once", logRecovered, n)
	}
	ft.signOK(t, 2*sessions)
	if n := len(ft.pool); n != sessions {
		t.Errorf("pool holds %d sessions, want %d", n, sessions)
	}
}

// TestOneProbePerInterval: of many callers arriving once the probe interval
// has passed, exactly one goes to the token.
func TestOneProbePerInterval(t *testing.T) {
	ft := openFaulty(t, 4)
	ft.takeDown(t)
	ft.clock.Advance(DefaultProbeInterval)
	opens := ft.mod.count("OpenSession")

	const callers = 16
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { errs <- ft.sign() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("concurrent signature on a removed token: %v, want ErrUnavailable", err)
		}
	}
	if n := ft.mod.count("OpenSession") - opens; n != 1 {
		t.Errorf("%d callers tried to open a session, want 1 probe", n)
	}
}

// TestQueuedCallersFailFast: callers already waiting for a session when
// the token is found removed fail fast too, instead of each taking a
// session to the dead token in turn.
func TestQueuedCallersFailFast(t *testing.T) {
	ft := openFaulty(t, 2)
	var held []*session
	for range 2 {
		s, err := ft.acquire(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	const waiters = 8
	errs := make(chan error, waiters)
	for range waiters {
		go func() { errs <- ft.sign() }()
	}
	// Let the waiters queue. The assertions hold whichever way they are
	// scheduled; queued ones are the case under test.
	time.Sleep(20 * time.Millisecond)
	ft.mod.remove()
	opens := ft.mod.count("OpenSession")
	ft.release(held[0]) // the first waiter to get it finds the token gone
	for i := range waiters {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Errorf("waiter %d: %v, want ErrUnavailable", i+1, err)
		}
	}
	ft.release(held[1])
	if n := ft.mod.count("OpenSession") - opens; n != 1 {
		t.Errorf("%d waiters tried to open a session on the removed token, want 1", n)
	}
}

// TestHungToken: a C_Sign that never returns holds its session, but does
// not hold up callers with a deadline, and the pool works once it returns.
func TestHungToken(t *testing.T) {
	ft := openFaulty(t, 1)
	entered, release := ft.mod.hang("Sign")
	t.Cleanup(release) // before Close, which waits for the session

	type result struct {
		sig []byte
		err error
	}
	hung := make(chan result, 1)
	d := digestOf(crypto.SHA256, "hung")
	go func() {
		sig, err := ft.key.Sign(rand.Reader, d, crypto.SHA256)
		hung <- result{sig, err}
	}()
	select {
	case <-entered: // the only session is inside C_Sign
	case r := <-hung:
		t.Fatalf("the signature returned (%v) instead of hanging", r.err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ft.key.SignContext(ctx, d, crypto.SHA256); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SignContext behind a hung C_Sign: %v, want context.DeadlineExceeded", err)
	}
	if !ft.Available() {
		t.Error("a slow token was marked unavailable")
	}

	release()
	r := <-hung
	if r.err != nil {
		t.Fatalf("the hung signature, once released: %v", r.err)
	}
	verify(t, ft.key.Public(), crypto.SHA256, d, r.sig)
	ft.signOK(t, 2)
}

// TestBreakerIgnoresOrdinaryErrors: errors the token answers with, however
// persistent, fail the signature but leave the token in service.
func TestBreakerIgnoresOrdinaryErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault func(ft *faultyToken) error
		is    error
	}{
		{"wrong PIN", func(ft *faultyToken) error {
			ft.cfg.PIN = "00000000"
			// End the login, so that the next session has to log in.
			return ft.mod.real.CloseAllSessions(ft.slot)
		}, ErrPINIncorrect},
		{"key handle invalid", failEvery("SignInit", pkcs11.CKR_KEY_HANDLE_INVALID), pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID)},
		{"bad arguments", failEvery("Sign", pkcs11.CKR_ARGUMENTS_BAD), pkcs11.Error(pkcs11.CKR_ARGUMENTS_BAD)},
		{"general error in C_Sign", failEvery("Sign", pkcs11.CKR_GENERAL_ERROR), pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)},
		// Sessions open and log in: the token is reachable, whatever is
		// wrong with signing.
		{"device error in every C_Sign", failEvery("Sign", pkcs11.CKR_DEVICE_ERROR), pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := openFaulty(t, 1)
			if err := tt.fault(ft); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				ft.failsInService(t, i+1, tt.is)
			}
			ft.cfg.PIN = hsmtest.PIN
			ft.mod.restore()
			ft.signOK(t, 1)
		})
	}
}

// failsInService checks that signature n fails with want, after going to
// the module, and leaves the token available.
func (ft *faultyToken) failsInService(t *testing.T, n int, want error) {
	t.Helper()
	before := ft.mod.total()
	err := ft.sign()
	if !errors.Is(err, want) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("signature %d: %v, want %v and not ErrUnavailable", n, err, want)
	}
	if ft.mod.total() == before {
		t.Fatalf("signature %d failed without reaching the module", n)
	}
	if !ft.Available() {
		t.Fatalf("Available() = false after signature %d", n)
	}
}

// failEvery returns a fault that makes every call to fn fail with rv.
func failEvery(fn string, rv uint) func(*faultyToken) error {
	return func(ft *faultyToken) error {
		ft.mod.fail(fn, rv, -1)
		return nil
	}
}

// TestBreakerOpensWhenSessionsCannotOpen: a lost session whose replacement
// fails at C_OpenSession or C_Login with a device error takes the token out
// of service, and a probe puts it back.
func TestBreakerOpensWhenSessionsCannotOpen(t *testing.T) {
	tests := []struct {
		name, fn string
		rv       uint
	}{
		{"token not present", "OpenSession", pkcs11.CKR_TOKEN_NOT_PRESENT},
		{"no session left", "OpenSession", pkcs11.CKR_SESSION_COUNT},
		{"general error", "OpenSession", pkcs11.CKR_GENERAL_ERROR},
		{"device error at login", "Login", pkcs11.CKR_DEVICE_ERROR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := openFaulty(t, 1)
			ft.mod.fail("SignInit", pkcs11.CKR_SESSION_HANDLE_INVALID, 1)
			ft.mod.fail(tt.fn, tt.rv, -1)
			if err := ft.sign(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, pkcs11.Error(tt.rv)) {
				t.Fatalf("signature: %v, want ErrUnavailable and %v", err, pkcs11.Error(tt.rv))
			}
			ft.failFast(t, 4)
			ft.mod.restore()
			ft.clock.Advance(DefaultProbeInterval)
			ft.signOK(t, 2)
			if !ft.Available() {
				t.Error("Available() = false after a successful probe")
			}
		})
	}
}
