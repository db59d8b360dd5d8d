package acme

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/profile"
)

// EABKeyLifetime is how long an external account binding key stays usable
// if no ACME account is bound with it.
const EABKeyLifetime = 7 * 24 * time.Hour

// EABStore is the subset of the store binding keys are made in.
type EABStore interface {
	CreateACMEEABKey(ctx context.Context, k store.ACMEEABKey) error
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// EABKeys makes external account binding keys (RFC 8555 §7.3.4): a key id
// and an HMAC key that tie the one ACME account bound with them to a
// Trustline account, so that its orders are that account's (its
// validations reused, its OV/EV orders reviewed). Each is audited.
type EABKeys struct {
	st     EABStore
	secret []byte
	now    func() time.Time
}

// NewEABKeys builds the service over the server's binding secret (the one
// Deps.EABKey derives keys from). nil now means time.Now.
func NewEABKeys(st EABStore, secret []byte, now func() time.Time) (*EABKeys, error) {
	if len(secret) < 32 {
		return nil, errors.New("acme: the binding secret must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &EABKeys{st: st, secret: secret, now: now}, nil
}

// EABKeyOptions say what the orders of the account a key binds are: DV
// (the zero value), or OV or EV for the organization given, which then
// wait for the review queue like any OV or EV order.
type EABKeyOptions struct {
	Profile      string                `json:"profile"`
	Organization *profile.Organization `json:"organization"`
}

// Create makes a binding key for accountID at the request of actor and
// returns it with its HMAC key, base64url: shown this once, never stored.
func (k *EABKeys) Create(ctx context.Context, actor store.Account, accountID string, opts EABKeyOptions) (store.ACMEEABKey, string, error) {
	now := k.now().UTC()
	key := store.ACMEEABKey{ID: "eab_" + newID(), AccountID: accountID, CreatedBy: actor.ID, CreatedAt: now, ExpiresAt: now.Add(EABKeyLifetime)}
	if opts.Profile != "" {
		prof, err := profile.Parse(opts.Profile)
		if err != nil {
			return store.ACMEEABKey{}, "", &fault.InputError{Detail: err.Error()}
		}
		switch {
		case prof.NeedsReview() && opts.Organization == nil:
			return store.ACMEEABKey{}, "", &fault.InputError{Detail: fmt.Sprintf("profile %s needs an organization", prof)}
		case !prof.NeedsReview() && opts.Organization != nil:
			return store.ACMEEABKey{}, "", &fault.InputError{Detail: "a dv binding carries no organization"}
		}
		if opts.Organization != nil {
			if err := opts.Organization.Validate(prof); err != nil {
				return store.ACMEEABKey{}, "", &fault.InputError{Detail: err.Error()}
			}
			key.Organization, _ = json.Marshal(opts.Organization)
		}
		key.CertProfile = string(prof)
	} else if opts.Organization != nil {
		return store.ACMEEABKey{}, "", &fault.InputError{Detail: "an organization needs profile ov or ev"}
	}
	if err := k.st.CreateACMEEABKey(ctx, key); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.ACMEEABKey{}, "", &fault.NotFoundError{Detail: "no such account"}
		}
		return store.ACMEEABKey{}, "", fmt.Errorf("acme: making a binding key: %w", err)
	}
	payload, _ := json.Marshal(map[string]string{"account": accountID, "key_id": key.ID, "by_role": string(actor.Role), "profile": key.CertProfile})
	if _, err := k.st.AppendAudit(ctx, store.AuditEntry{At: now, Kind: "acme.eab_key.created", Actor: actor.ID, Subject: accountID, Payload: payload}); err != nil {
		return store.ACMEEABKey{}, "", fmt.Errorf("acme: auditing a binding key: %w", err)
	}
	return key, base64.RawURLEncoding.EncodeToString(EABKey(k.secret, key.ID)), nil
}
