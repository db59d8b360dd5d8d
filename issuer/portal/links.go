package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// Sign-in links: a random token mailed to the account's own address,
// good once and briefly. They live in the store (store.SignInLink), under
// the token's SHA-256 only, so a link mailed by one API instance works on
// any other and a restart voids none.
const (
	// linkInterval is how soon after one link another may be mailed to
	// the same account: it keeps the form from being used to flood an
	// inbox. Requests inside it are answered like any other.
	linkInterval = 30 * time.Second
	// linksPerAccount bounds outstanding links per account; a new one
	// replaces the oldest.
	linksPerAccount = 3
)

// LinkStore is the subset of the store sign-in links are kept in
// (store.Store's sign-in-link methods; see them for the contract).
type LinkStore interface {
	CreateSignInLink(ctx context.Context, l store.SignInLink, lim store.SignInLinkLimits) (bool, error)
	SignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error)
	ConsumeSignInLink(ctx context.Context, tokenHash []byte) (store.SignInLink, error)
	DeleteExpiredSignInLinks(ctx context.Context, now time.Time) (int64, error)
}

// linkTable issues, checks and redeems sign-in links over a LinkStore.
type linkTable struct {
	st  LinkStore
	rnd io.Reader
	lim store.SignInLinkLimits
	ttl time.Duration
}

func newLinks(st LinkStore, cfg Config, rnd io.Reader) *linkTable {
	return &linkTable{st: st, rnd: rnd, ttl: cfg.LoginLinkLifetime,
		lim: store.SignInLinkLimits{Interval: linkInterval, PerAccount: linksPerAccount, Total: cfg.MaxSignInLinks}}
}

// issue makes a link for accountID and returns its token, or "" when the
// store refused: the account was sent one less than linkInterval ago, or
// MaxSignInLinks are outstanding (under a flood, answer as if
// rate-limited).
func (t *linkTable) issue(ctx context.Context, accountID string, now time.Time) (string, error) {
	tok, err := randomToken(t.rnd, 32)
	if err != nil {
		return "", err
	}
	l := store.SignInLink{TokenHash: []byte(tableKey(tok)), AccountID: accountID, CreatedAt: now, ExpiresAt: now.Add(t.ttl)}
	ok, err := t.st.CreateSignInLink(ctx, l, t.lim)
	if err != nil {
		return "", fmt.Errorf("portal: storing a sign-in link: %w", err)
	}
	if !ok {
		return "", nil
	}
	return tok, nil
}

// peek reports the account a live token signs in, without using it up.
// An unknown or expired token is not ok; an error is the store's.
func (t *linkTable) peek(ctx context.Context, tok string, now time.Time) (string, bool, error) {
	return t.account(ctx, tok, now, t.st.SignInLink, "reading")
}

// redeem uses a token up and returns its account. Of two redeeming the
// same token at once, on any instances, one gets it. An expired token is
// used up too, and not ok.
func (t *linkTable) redeem(ctx context.Context, tok string, now time.Time) (string, bool, error) {
	return t.account(ctx, tok, now, t.st.ConsumeSignInLink, "redeeming")
}

// account is peek and redeem, which differ only in how they fetch the
// link (get is the LinkStore method) and in the verb their errors use.
func (t *linkTable) account(ctx context.Context, tok string, now time.Time,
	get func(context.Context, []byte) (store.SignInLink, error), verb string) (string, bool, error) {
	if !plausible(tok) {
		return "", false, nil
	}
	l, err := get(ctx, []byte(tableKey(tok)))
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("portal: %s a sign-in link: %w", verb, err)
	}
	if t.expired(l, now) {
		return "", false, nil
	}
	return l.AccountID, true, nil
}

// expired reports whether a link is over: by the lifetime it was given,
// or by the one in force now if it was lowered since.
func (t *linkTable) expired(l store.SignInLink, now time.Time) bool {
	return l.Expired(now) || !now.Before(l.CreatedAt.Add(t.ttl))
}
