package issuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// AccountStore is the subset of the store accounts use.
type AccountStore interface {
	CreateAccount(ctx context.Context, a store.Account, k store.APIKey) error
	APIKey(ctx context.Context, keyID string) (store.APIKey, store.Account, error)
}

// API keys look like "tl_<key id>_<secret>": the id (16 hex digits) finds
// the stored row, the secret (32 random octets, base64url) is compared
// with its stored SHA-256 in constant time. Only the hash is stored.
const apiKeyPrefix = "tl_"

// ErrUnauthenticated: the bearer token is missing, malformed or unknown.
var ErrUnauthenticated = errors.New("issuer: invalid API key")

// NewAPIKey makes a fresh key: the token to give the user once, and the
// row to store.
func NewAPIKey(accountID string, now time.Time) (token string, row store.APIKey, err error) {
	id := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", store.APIKey{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", store.APIKey{}, err
	}
	sec := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	row = store.APIKey{ID: hex.EncodeToString(id), AccountID: accountID, Hash: sum[:], CreatedAt: now}
	return apiKeyPrefix + row.ID + "_" + sec, row, nil
}

// NewID returns a random, URL-safe identifier for accounts, orders and
// validations (96 bits: unguessable, so ids in URLs reveal nothing).
func NewID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Accounts creates accounts and authenticates API keys.
type Accounts struct {
	store AccountStore
	now   func() time.Time
}

// NewAccounts builds the account service.
func NewAccounts(st AccountStore, now func() time.Time) *Accounts {
	if now == nil {
		now = time.Now
	}
	return &Accounts{store: st, now: now}
}

// NormalizeEmail lowercases and checks an address. The address as given
// and its lowercased form, which is what is stored, must both be one plain
// addr-spec of at most 254 bytes: lowercasing can lengthen an address
// (U+023A takes two bytes, its lower case three), and the stored form must
// pass here again unchanged.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	low := strings.ToLower(s)
	for _, v := range []string{s, low} {
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v || len(v) > 254 {
			return "", fmt.Errorf("%q is not a plain email address", truncate(s, 64))
		}
	}
	return low, nil
}

// Create makes an account with role and returns its API key (shown once).
func (a *Accounts) Create(ctx context.Context, email string, role store.Role) (store.Account, string, error) {
	return a.create(ctx, email, role, "")
}

func (a *Accounts) create(ctx context.Context, email string, role store.Role, createdBy string) (store.Account, string, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return store.Account{}, "", &fault.InputError{Detail: err.Error()}
	}
	if !role.Valid() {
		return store.Account{}, "", &fault.InputError{Detail: fmt.Sprintf("role %q: want subscriber, reviewer or admin", truncate(string(role), 32))}
	}
	acct := store.Account{ID: NewID("acct_"), Email: email, Role: role, CreatedAt: a.now(), CreatedBy: createdBy}
	token, key, err := NewAPIKey(acct.ID, acct.CreatedAt)
	if err != nil {
		return store.Account{}, "", err
	}
	// Several accounts may share an address: nothing here tells whether
	// one exists (a duplicate id is a 96-bit collision, an internal error).
	if err := a.store.CreateAccount(ctx, acct, key); err != nil {
		return store.Account{}, "", fmt.Errorf("issuer: creating account: %w", err)
	}
	return acct, token, nil
}

// CreateForACME makes the subscriber account an ACME account acts for when
// it was not bound to an existing one (issuer/acme): email is the ACME
// account's first mailto contact, "" if it gave none. Like any address it
// is unconfirmed until its owner follows a confirmation link. The
// account's API key is made and thrown away: its holder signs with the
// ACME account key, and can sign in to the portal by email once the
// address is confirmed.
func (a *Accounts) CreateForACME(ctx context.Context, email string) (store.Account, error) {
	if email != "" {
		var err error
		if email, err = NormalizeEmail(email); err != nil {
			return store.Account{}, &fault.InputError{Detail: err.Error()}
		}
	}
	acct := store.Account{ID: NewID("acct_"), Email: email, Role: store.RoleSubscriber, CreatedAt: a.now()}
	_, key, err := NewAPIKey(acct.ID, acct.CreatedAt)
	if err != nil {
		return store.Account{}, err
	}
	if err := a.store.CreateAccount(ctx, acct, key); err != nil {
		return store.Account{}, fmt.Errorf("issuer: creating account: %w", err)
	}
	return acct, nil
}

// Authenticate resolves a bearer token to its account.
func (a *Accounts) Authenticate(ctx context.Context, token string) (store.Account, error) {
	rest, ok := strings.CutPrefix(token, apiKeyPrefix)
	if !ok || len(token) > 128 {
		return store.Account{}, ErrUnauthenticated
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" {
		return store.Account{}, ErrUnauthenticated
	}
	key, acct, err := a.store.APIKey(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Account{}, ErrUnauthenticated
		}
		return store.Account{}, fmt.Errorf("issuer: looking up API key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], key.Hash) != 1 || !key.RevokedAt.IsZero() {
		return store.Account{}, ErrUnauthenticated
	}
	return acct, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a character boundary, so a message never shows half of one.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
