// Package pkcs11key signs with keys held in a PKCS#11 token (an HSM, or
// SoftHSM2 in development and tests), following PKCS#11 v2.40 (OASIS
// "PKCS #11 Cryptographic Token Interface Base Specification"). It is the
// only package in Trustline that uses cgo or imports
// github.com/miekg/pkcs11 (DESIGN.md: "cgo/PKCS#11 lives in one package").
//
// A Token is a logged-in pool of sessions on one token; its keys come out as
// *Signer, a crypto.Signer that callers use like any other key (STYLE.md §3).
// Sessions that the device or the library has lost are replaced and the
// operation retried once, so a token reset costs one slow signature rather
// than an outage.
//
// A token that cannot even open or log in a session (removed, failed, out
// of sessions) is marked unavailable: operations then fail at once with
// ErrUnavailable instead of each paying for a round trip to a dead device,
// except one probe per Config.ProbeInterval, whose success makes the token
// available again. Token.Available reports the state to health checks.
//
// Only cmd/trustline (wiring) and the issuance core's key loading may import
// this package; the responder and origin must not (a deps test enforces
// it). Everything else receives a crypto.Signer.
package pkcs11key

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// Defaults for zero Config fields.
const (
	DefaultSessions       = 4
	DefaultAcquireTimeout = 5 * time.Second
	DefaultProbeInterval  = time.Second
)

// maxLabelLen is the size of CK_TOKEN_INFO.label.
const maxLabelLen = 32

// Config says which token to use and how hard to use it.
type Config struct {
	// ModulePath is the absolute path of the PKCS#11 library, e.g.
	// /usr/lib/softhsm/libsofthsm2.so. Absolute, so that dlopen never
	// searches LD_LIBRARY_PATH for code that will see the PIN.
	ModulePath string
	// TokenLabel selects the token by its CK_TOKEN_INFO label (at most 32
	// bytes). Exactly one present token must carry it.
	TokenLabel string
	// PIN is the user (CKU_USER) PIN. It is never logged or put in errors.
	PIN string
	// Sessions is the size of the session pool; 0 means DefaultSessions.
	// Signing throughput scales with it up to what the device offers
	// (SoftHSM2 stops scaling past about 2 per process); hardware HSMs
	// also cap sessions per application.
	Sessions int
	// AcquireTimeout bounds how long Sign, which has no context, waits for
	// a free session; 0 means DefaultAcquireTimeout. Methods that take a
	// context wait as long as the context allows.
	AcquireTimeout time.Duration
	// ProbeInterval is how often, while the token is unavailable, one
	// operation is let through to find out whether it is back; all the
	// others fail at once with ErrUnavailable. 0 means
	// DefaultProbeInterval. Shorter notices a restored token sooner; each
	// probe of a dead token costs its caller one failed round trip.
	ProbeInterval time.Duration
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	switch {
	case c.ModulePath == "":
		return errors.New("pkcs11key: config: ModulePath is required")
	case !filepath.IsAbs(c.ModulePath):
		return fmt.Errorf("pkcs11key: config: ModulePath %q must be absolute", c.ModulePath)
	case c.TokenLabel == "":
		return errors.New("pkcs11key: config: TokenLabel is required")
	case len(c.TokenLabel) > maxLabelLen:
		return fmt.Errorf("pkcs11key: config: TokenLabel %q is longer than %d bytes", c.TokenLabel, maxLabelLen)
	case c.PIN == "":
		return errors.New("pkcs11key: config: PIN is required")
	case c.Sessions < 0 || c.Sessions > 1024:
		return fmt.Errorf("pkcs11key: config: Sessions %d must be between 0 (default %d) and 1024", c.Sessions, DefaultSessions)
	case c.AcquireTimeout < 0:
		return fmt.Errorf("pkcs11key: config: AcquireTimeout %v must not be negative", c.AcquireTimeout)
	case c.ProbeInterval < 0:
		return fmt.Errorf("pkcs11key: config: ProbeInterval %v must not be negative", c.ProbeInterval)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Sessions == 0 {
		c.Sessions = DefaultSessions
	}
	if c.AcquireTimeout == 0 {
		c.AcquireTimeout = DefaultAcquireTimeout
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	return c
}

// String describes c without the PIN, so that printing a config is safe.
func (c Config) String() string {
	return fmt.Sprintf("pkcs11key.Config{ModulePath:%q TokenLabel:%q PIN:<redacted> Sessions:%d AcquireTimeout:%v ProbeInterval:%v}",
		c.ModulePath, c.TokenLabel, c.Sessions, c.AcquireTimeout, c.ProbeInterval)
}

// GoString keeps %#v from printing the PIN too.
func (c Config) GoString() string { return c.String() }

// LogValue logs c without the PIN.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("module", c.ModulePath),
		slog.String("token", c.TokenLabel),
		slog.Int("sessions", c.Sessions),
		slog.Duration("acquire_timeout", c.AcquireTimeout),
		slog.Duration("probe_interval", c.ProbeInterval),
	)
}

// Errors callers may branch on.
var (
	ErrTokenNotFound = errors.New("token not found")
	ErrPINIncorrect  = errors.New("incorrect PIN")
	ErrKeyNotFound   = errors.New("key not found")
	ErrKeyExists     = errors.New("a key with this label already exists")
	ErrClosed        = errors.New("token closed")
	// ErrUnavailable means the token could not be reached (removed,
	// failed, out of sessions) and the operation failed without trying it,
	// or trying it found the token gone. It is temporary: a caller that
	// can degrade (answer "try later", retry later) should, rather than
	// queue for the token. Callers that must not import this package
	// recognise it by its method Unavailable() bool.
	ErrUnavailable error = unavailableError{}
)

// unavailableError is ErrUnavailable's type.
type unavailableError struct{}

func (unavailableError) Error() string { return "token unavailable" }

// Unavailable reports that the error is a temporary outage of the token.
func (unavailableError) Unavailable() bool { return true }

// Token is an open, logged-in PKCS#11 token with a pool of sessions. It is
// safe for concurrent use.
type Token struct {
	cfg  Config
	log  *slog.Logger
	mod  *module
	p11  cryptoki // mod.ctx, for brevity; tests wrap it to inject faults
	slot uint
	brk  breaker

	pool      chan *session
	done      chan struct{} // closed by Close: wakes waiters in acquire
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// genMu serialises GenerateKey so that its label check and the
	// creation cannot interleave within this process. Other processes
	// sharing the token are not covered; ceremonies run one at a time.
	genMu sync.Mutex
}

// Open loads the module, finds the token labelled cfg.TokenLabel, opens
// cfg.Sessions read-write sessions and logs the user in. A nil logger
// discards.
func Open(cfg Config, logger *slog.Logger) (*Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mod, err := loadModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	t := &Token{
		cfg:  cfg,
		log:  logger,
		mod:  mod,
		p11:  mod.ctx,
		pool: make(chan *session, cfg.Sessions),
		done: make(chan struct{}),
		brk: breaker{
			interval: cfg.ProbeInterval,
			now:      time.Now,
			log:      logger,
			token:    cfg.TokenLabel,
		},
	}
	info, err := t.findSlot()
	if err == nil {
		err = t.fillPool()
	}
	if err != nil {
		t.closeSessions()
		return nil, errors.Join(err, mod.release())
	}
	logger.Info("pkcs11 token opened",
		"config", cfg,
		"slot", t.slot,
		"manufacturer", info.ManufacturerID,
		"model", info.Model,
		"serial", info.SerialNumber)
	return t, nil
}

// Available reports whether the token is open and answering: it turns
// false when an operation finds the token unreachable, and true again when
// a probe (see Config.ProbeInterval) reaches it. It costs two atomic
// loads, so health checks and metrics may call it freely.
func (t *Token) Available() bool {
	return !t.closed.Load() && !t.brk.down.Load()
}

// findSlot sets t.slot to the one slot whose token has the configured label.
func (t *Token) findSlot() (pkcs11.TokenInfo, error) {
	label := t.cfg.TokenLabel
	slots, err := t.p11.GetSlotList(true)
	if err != nil {
		return pkcs11.TokenInfo{}, fmt.Errorf("pkcs11key: listing slots: %w", err)
	}
	var (
		found  []uint
		info   pkcs11.TokenInfo
		labels []string
	)
	for _, s := range slots {
		ti, err := t.p11.GetTokenInfo(s)
		if err != nil {
			return pkcs11.TokenInfo{}, fmt.Errorf("pkcs11key: reading token info of slot %d: %w", s, err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		labels = append(labels, ti.Label)
		if ti.Label == label {
			found = append(found, s)
			info = ti
		}
	}
	switch len(found) {
	case 0:
		slices.Sort(labels)
		return info, fmt.Errorf("pkcs11key: %w: no initialised token labelled %q in %s (present: %q)",
			ErrTokenNotFound, label, t.cfg.ModulePath, labels)
	case 1:
	default:
		return info, fmt.Errorf("pkcs11key: %d tokens are labelled %q (slots %v); labels must be unique", len(found), label, found)
	}
	if info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0 {
		return info, fmt.Errorf("pkcs11key: token %q: the user PIN is locked", label)
	}
	if info.Flags&pkcs11.CKF_USER_PIN_INITIALIZED == 0 {
		return info, fmt.Errorf("pkcs11key: token %q: no user PIN has been set", label)
	}
	t.slot = found[0]
	return info, nil
}

// fillPool opens the pool's sessions; the first one logs in, which logs in
// every session of this application on the token (PKCS#11 §5.6 C_Login).
func (t *Token) fillPool() error {
	for range t.cfg.Sessions {
		s := &session{}
		if err := t.openSession(s); err != nil {
			return err
		}
		t.pool <- s
	}
	return nil
}

// Close waits for operations in flight, closes the sessions and releases the
// module (finalising it if this was its last Token). Later calls return the
// first call's result; signers of a closed Token return ErrClosed.
func (t *Token) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		close(t.done)
		// Take every session back: in-flight operations return theirs.
		var errs []error
		for range t.cfg.Sessions {
			s := <-t.pool
			if s.open {
				if err := t.p11.CloseSession(s.h); err != nil {
					errs = append(errs, fmt.Errorf("pkcs11key: closing session: %w", err))
				}
			}
		}
		errs = append(errs, t.mod.release())
		t.closeErr = errors.Join(errs...)
		t.log.Info("pkcs11 token closed", "token", t.cfg.TokenLabel)
	})
	return t.closeErr
}

// closeSessions undoes a partial fillPool.
func (t *Token) closeSessions() {
	for {
		select {
		case s := <-t.pool:
			if s.open {
				_ = t.p11.CloseSession(s.h) // best effort: Open already failed
			}
		default:
			return
		}
	}
}
