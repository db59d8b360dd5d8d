package issuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/csrcheck"
)

// ValidationStore is the subset of the store validations use.
type ValidationStore interface {
	CreateValidation(ctx context.Context, v store.Validation) error
	Validation(ctx context.Context, id string) (store.Validation, error)
	UpdateValidation(ctx context.Context, v store.Validation) (store.Validation, error)
	ValidValidations(ctx context.Context, accountID string, now time.Time) ([]store.Validation, error)
}

// ConstructedLocalParts are the addresses BR §3.2.2.4.4 lets a CA mail:
// admin, administrator, webmaster, hostmaster or postmaster @ the domain.
var ConstructedLocalParts = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

const (
	// CodeBits is the entropy of a mailed code: BR §1.6.1 asks at least
	// 112 bits of a Random Value.
	CodeBits = 130
	// CodeLifetime: a pending validation dies after this; BR §3.2.2.4.4
	// allows a Random Value to be used for at most 30 days.
	CodeLifetime = 24 * time.Hour
	// MaxAttempts bounds wrong codes before the validation is dead.
	MaxAttempts = 5
)

// ReusePeriod is how long a completed domain validation may be relied on
// for a certificate issued at t (BR §4.2.1).
func ReusePeriod(t time.Time) time.Duration {
	const day = 24 * time.Hour
	switch {
	case t.Before(time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)):
		return 398 * day
	case t.Before(time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)):
		return 200 * day
	case t.Before(time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC)):
		return 100 * day
	}
	return 10 * day
}

// Validations runs domain validation.
type Validations struct {
	store ValidationStore
	mail  mail.Sender
	now   func() time.Time
}

// NewValidations builds the validation service.
func NewValidations(st ValidationStore, m mail.Sender, now func() time.Time) *Validations {
	if now == nil {
		now = time.Now
	}
	return &Validations{store: st, mail: m, now: now}
}

// NormalizeDomain lowercases and checks a domain to validate.
func NormalizeDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if strings.HasPrefix(d, "*.") {
		return "", &InputError{Detail: "validate the base domain, not a wildcard name"}
	}
	if err := csrcheck.CheckName(d); err != nil {
		return "", &InputError{Detail: err.Error()}
	}
	return d, nil
}

// StartEmail begins an email validation (BR §3.2.2.4.4): a random code is
// mailed to a constructed address at the domain; only its hash is stored.
func (v *Validations) StartEmail(ctx context.Context, acct store.Account, domain, address string) (store.Validation, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return store.Validation{}, err
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	local, at, ok := strings.Cut(addr, "@")
	if !ok || at != domain || !contains(ConstructedLocalParts, local) {
		return store.Validation{}, &InputError{Detail: fmt.Sprintf(
			"email must be one of %s@%s (BR 3.2.2.4.4 constructed addresses)", strings.Join(ConstructedLocalParts, "|"), domain)}
	}
	code, err := newCode()
	if err != nil {
		return store.Validation{}, err
	}
	now := v.now()
	sum := sha256.Sum256([]byte(code))
	val := store.Validation{
		ID: NewID("val_"), AccountID: acct.ID, Domain: domain, Method: "email", Contact: addr,
		Secret: sum[:], Status: store.ValidationPending, CreatedAt: now, ExpiresAt: now.Add(CodeLifetime),
	}
	if err := v.store.CreateValidation(ctx, val); err != nil {
		return store.Validation{}, fmt.Errorf("issuer: creating validation: %w", err)
	}
	msg := mail.Message{
		To:      addr,
		Subject: "Confirm control of " + domain,
		Body: fmt.Sprintf("Someone asked Trustline to issue certificates for %s.\n"+
			"If that was you or your organisation, paste this code on the validation page:\n\n"+
			"Validation code: %s\n\nThe code expires at %s. If you did not ask for this, ignore this message.\n",
			domain, code, val.ExpiresAt.UTC().Format(time.RFC1123)),
	}
	if err := v.mail.Send(ctx, msg); err != nil {
		return store.Validation{}, fmt.Errorf("issuer: mailing validation code: %w", err)
	}
	return val, nil
}

// newCode returns CodeBits of randomness in base32 without padding, easy
// to paste.
func newCode() (string, error) {
	b := make([]byte, (CodeBits+7)/8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// Get returns a validation the account owns.
func (v *Validations) Get(ctx context.Context, acct store.Account, id string) (store.Validation, error) {
	val, err := v.store.Validation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && val.AccountID != acct.ID) {
		return store.Validation{}, &NotFoundError{Detail: "no such validation"}
	}
	if err != nil {
		return store.Validation{}, fmt.Errorf("issuer: reading validation: %w", err)
	}
	return val, nil
}

// Confirm checks a mailed code. A code works once, before it expires, and
// only within MaxAttempts tries.
func (v *Validations) Confirm(ctx context.Context, acct store.Account, id, code string) (store.Validation, error) {
	for {
		val, err := v.Get(ctx, acct, id)
		if err != nil {
			return store.Validation{}, err
		}
		if val.Method != "email" {
			return store.Validation{}, &InputError{Detail: "this validation is not confirmed by code"}
		}
		now := v.now()
		switch {
		case val.Status == store.ValidationValid:
			return store.Validation{}, &ConflictError{Detail: "this validation is already complete; codes work once"}
		case val.Status != store.ValidationPending:
			return store.Validation{}, &ConflictError{Detail: "this validation has failed; start a new one"}
		case !now.Before(val.ExpiresAt):
			val.Status = store.ValidationInvalid
			if _, err := v.store.UpdateValidation(ctx, val); errors.Is(err, store.ErrConflict) {
				continue
			}
			return store.Validation{}, &ConflictError{Detail: "the code has expired; start a new validation"}
		}
		sum := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(code))))
		if subtle.ConstantTimeCompare(sum[:], val.Secret) != 1 {
			val.Attempts++
			if val.Attempts >= MaxAttempts {
				val.Status = store.ValidationInvalid
			}
			if _, err := v.store.UpdateValidation(ctx, val); err != nil {
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				return store.Validation{}, fmt.Errorf("issuer: recording attempt: %w", err)
			}
			if val.Status == store.ValidationInvalid {
				return store.Validation{}, &InputError{Detail: "wrong code; no attempts left, start a new validation"}
			}
			return store.Validation{}, &InputError{Detail: fmt.Sprintf("wrong code; %d attempt(s) left", MaxAttempts-val.Attempts)}
		}
		val.Status = store.ValidationValid
		val.ValidatedAt = now
		val.ValidUntil = now.Add(ReusePeriod(now))
		val.Evidence, _ = json.Marshal(map[string]any{
			"method": "email", "br_section": "3.2.2.4.4", "contact": val.Contact,
			"random_value_sha256": fmt.Sprintf("%x", val.Secret), "sent_at": val.CreatedAt.UTC(),
			"confirmed_at": now.UTC(), "attempts": val.Attempts + 1,
		})
		updated, err := v.store.UpdateValidation(ctx, val)
		if errors.Is(err, store.ErrConflict) {
			continue // a concurrent confirm: re-read and report what happened
		}
		if err != nil {
			return store.Validation{}, fmt.Errorf("issuer: completing validation: %w", err)
		}
		return updated, nil
	}
}

// Uncovered returns the names that no valid validation of the account
// covers at now. A validation of d covers d and every name under it;
// wildcard names need a DNS-based validation (BR §3.2.2.6).
func (v *Validations) Uncovered(ctx context.Context, accountID string, names []string) ([]string, error) {
	vals, err := v.store.ValidValidations(ctx, accountID, v.now())
	if err != nil {
		return nil, fmt.Errorf("issuer: reading validations: %w", err)
	}
	var out []string
	for _, n := range names {
		if !covered(vals, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func covered(vals []store.Validation, name string) bool {
	wild := strings.HasPrefix(name, "*.")
	base := strings.TrimPrefix(name, "*.")
	for _, v := range vals {
		if wild && v.Method != "dns-txt" {
			continue
		}
		if base == v.Domain || strings.HasSuffix(base, "."+v.Domain) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
