package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// KeyStore is the subset of the store API key rotation and revocation
// use.
type KeyStore interface {
	AddAPIKey(ctx context.Context, k store.APIKey) error
	APIKeys(ctx context.Context, accountID string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, keyID string, at time.Time) error
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// MaxActiveKeys bounds the active API keys of one account: rotation needs
// two at a time, a few more for separate machines.
const MaxActiveKeys = 10

// Keys rotates and revokes API keys; every change is audited with the
// account that made it (the key's owner, or an admin).
type Keys struct {
	store KeyStore
	now   func() time.Time
}

// NewKeys builds the key service.
func NewKeys(st KeyStore, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{store: st, now: now}
}

// List returns the account's keys, revoked ones too, oldest first.
func (k *Keys) List(ctx context.Context, accountID string) ([]store.APIKey, error) {
	keys, err := k.store.APIKeys(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("issuer: listing API keys: %w", err)
	}
	return keys, nil
}

// Create gives the account a new key (shown once) and records who asked.
func (k *Keys) Create(ctx context.Context, actor store.Account, accountID string) (string, store.APIKey, error) {
	keys, err := k.List(ctx, accountID)
	if err != nil {
		return "", store.APIKey{}, err
	}
	if active(keys) >= MaxActiveKeys {
		return "", store.APIKey{}, &fault.ConflictError{Detail: fmt.Sprintf("the account has %d active API keys, the most it may have; revoke one first", MaxActiveKeys)}
	}
	token, row, err := NewAPIKey(accountID, k.now())
	if err != nil {
		return "", store.APIKey{}, err
	}
	if err := k.store.AddAPIKey(ctx, row); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", store.APIKey{}, &fault.NotFoundError{Detail: "no such account"}
		}
		return "", store.APIKey{}, fmt.Errorf("issuer: adding API key: %w", err)
	}
	if err := k.audit(ctx, "apikey.created", actor, accountID, row.ID); err != nil {
		return "", store.APIKey{}, err
	}
	return token, row, nil
}

// Revoke revokes one of the account's keys. The last active key cannot be
// revoked by its owner (the account would lock itself out; create another
// first); an admin may, to shut out a compromised account.
func (k *Keys) Revoke(ctx context.Context, actor store.Account, accountID, keyID string) (store.APIKey, error) {
	keys, err := k.List(ctx, accountID)
	if err != nil {
		return store.APIKey{}, err
	}
	var found *store.APIKey
	for i := range keys {
		if keys[i].ID == keyID {
			found = &keys[i]
		}
	}
	switch {
	case found == nil:
		return store.APIKey{}, &fault.NotFoundError{Detail: "no such API key on this account"}
	case !found.RevokedAt.IsZero():
		return *found, nil
	case active(keys) == 1 && actor.ID == accountID:
		return store.APIKey{}, &fault.ConflictError{Detail: "this is the account's last active API key; create a new one first, then revoke this one"}
	}
	at := k.now()
	if err := k.store.RevokeAPIKey(ctx, keyID, at); err != nil {
		return store.APIKey{}, fmt.Errorf("issuer: revoking API key: %w", err)
	}
	if err := k.audit(ctx, "apikey.revoked", actor, accountID, keyID); err != nil {
		return store.APIKey{}, err
	}
	found.RevokedAt = at.UTC()
	return *found, nil
}

func (k *Keys) audit(ctx context.Context, kind string, actor store.Account, accountID, keyID string) error {
	payload, _ := json.Marshal(map[string]string{"account": accountID, "key_id": keyID, "by_role": string(actor.Role)})
	if _, err := k.store.AppendAudit(ctx, store.AuditEntry{At: k.now(), Kind: kind, Actor: actor.ID, Subject: accountID, Payload: payload}); err != nil {
		return fmt.Errorf("issuer: auditing %s: %w", kind, err)
	}
	return nil
}

func active(keys []store.APIKey) int {
	n := 0
	for _, k := range keys {
		if k.RevokedAt.IsZero() {
			n++
		}
	}
	return n
}

// KeyID is the public id part of an API key ("tl_<id>_<secret>"), or ""
// when token has not that shape; it names the key without its secret.
func KeyID(token string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), apiKeyPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 {
		return ""
	}
	return id
}
