package issuer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/ratelimit"
)

// Address confirmation: sign-up answers the same whether or not an
// account with the address exists (several may share one), and the address
// gets a confirmation link before Trustline mails it anything else
// (Verified). The link carries the account, the address and an expiry,
// authenticated with a key of the CA's: nothing is stored until it is
// followed.

// ConfirmPath is where confirmation links point, under the API base URL.
const ConfirmPath = "/confirm-email"

// ConfirmStore is the subset of the store confirmations use.
type ConfirmStore interface {
	Account(ctx context.Context, id string) (store.Account, error)
	VerifyAccountEmail(ctx context.Context, id, email string, at time.Time) error
}

// ConfirmConfig configures confirmations.
type ConfirmConfig struct {
	// Key authenticates the links (at least 32 random bytes, shared by
	// every api instance).
	Key []byte
	// BaseURL is the API's base URL the links point to.
	BaseURL string
	// Lifetime is how long a link works; 0 means 7 days.
	Lifetime time.Duration
}

// ConfirmDeps are the collaborators.
type ConfirmDeps struct {
	Store  ConfirmStore
	Mail   mail.Sender
	Limits *ratelimit.Limiter // nil: links are not limited per address
	Log    *slog.Logger
	Now    func() time.Time
}

// Confirmations mails confirmation links and follows them.
type Confirmations struct {
	cfg ConfirmConfig
	d   ConfirmDeps
}

// NewConfirmations checks cfg and builds the service.
func NewConfirmations(cfg ConfirmConfig, d ConfirmDeps) (*Confirmations, error) {
	if len(cfg.Key) < 32 {
		return nil, errors.New("issuer: confirmations need a key of at least 32 bytes")
	}
	if d.Store == nil || d.Mail == nil {
		return nil, errors.New("issuer: confirmations need a store and a mail sender")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 7 * 24 * time.Hour
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &Confirmations{cfg: cfg, d: d}, nil
}

// Send mails acct's address its confirmation link, unless it is confirmed
// already. Over the per-address mail limit it sends nothing and says so.
func (c *Confirmations) Send(ctx context.Context, acct store.Account) error {
	if !acct.EmailVerifiedAt.IsZero() {
		return nil
	}
	if err := c.d.Limits.Mail(ctx, acct.Email); err != nil {
		return err
	}
	exp := c.d.Now().Add(c.cfg.Lifetime).Unix()
	link := c.cfg.BaseURL + ConfirmPath + "?token=" + c.token(acct.ID, acct.Email, exp)
	body := fmt.Sprintf(`Someone, probably you, opened a Trustline account with this address.

Confirm it by opening this link within %s:

%s

Until the address is confirmed, Trustline sends it nothing else. If you did
not open an account, ignore this message: nothing more will come.
`, humanDays(c.cfg.Lifetime), link)
	if err := c.d.Mail.Send(ctx, mail.Message{To: acct.Email, Subject: "Confirm your email address", Body: body}); err != nil {
		return fmt.Errorf("issuer: mailing the confirmation link: %w", err)
	}
	return nil
}

// Confirm follows a link: the account's address, if unchanged, is
// confirmed. A link that is malformed, forged or expired is a
// *fault.InputError.
func (c *Confirmations) Confirm(ctx context.Context, token string) (store.Account, error) {
	bad := &fault.InputError{Detail: "this confirmation link is not valid; sign in and ask for a new one, or open the newest link mailed to you"}
	id, exp, ok := c.parse(token)
	if !ok {
		return store.Account{}, bad
	}
	if c.d.Now().Unix() > exp {
		return store.Account{}, &fault.InputError{Detail: "this confirmation link has expired; sign in and ask for a new one"}
	}
	acct, err := c.d.Store.Account(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, bad
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("issuer: reading account: %w", err)
	}
	if !hmac.Equal([]byte(token), []byte(c.token(acct.ID, acct.Email, exp))) {
		return store.Account{}, bad
	}
	if err := c.d.Store.VerifyAccountEmail(ctx, acct.ID, acct.Email, c.d.Now()); err != nil {
		return store.Account{}, fmt.Errorf("issuer: confirming address: %w", err)
	}
	return c.d.Store.Account(ctx, id)
}

// token is "<account id>.<expiry unix>.<MAC>", the MAC over the three
// with the address, so a link stops working if the address changes.
func (c *Confirmations) token(id, email string, exp int64) string {
	m := hmac.New(sha256.New, c.cfg.Key)
	fmt.Fprintf(m, "trustline confirm-email v1\n%s\n%s\n%d", id, email, exp)
	return id + "." + strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Confirmations) parse(token string) (id string, exp int64, ok bool) {
	if len(token) > 256 {
		return "", 0, false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || len(parts[2]) != 43 {
		return "", 0, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || exp <= 0 {
		return "", 0, false
	}
	return parts[0], exp, true
}

func humanDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
