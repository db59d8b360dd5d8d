// Package ratelimit bounds how often one account, source address, domain
// or mailbox may ask the CA for work that costs it or a third party:
// sign-ups, failed sign-in attempts, validations, validation mails,
// orders. Counters live in the store (fixed windows), so every API
// instance of a plant shares them. Going over a limit is a
// *fault.RateLimitedError, which the API and the portal answer 429 with
// Retry-After.
//
// Imported by issuer (orders), issuer/validation, issuer/api and
// issuer/portal; it imports only the store's interface subset it declares
// and issuer/fault.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/issuer/fault"
)

// Counter is the store's rate counter (store.Store has it).
type Counter interface {
	CountHit(ctx context.Context, key string, windowStart, expiresAt time.Time) (int64, error)
	DeleteExpiredRateCounters(ctx context.Context, now time.Time) (int64, error)
}

// sweepEvery is how often a limiter deletes expired counters, on a hit.
const sweepEvery = 10 * time.Minute

// Rule allows Max hits per window of Per; Max 0 turns the rule off.
type Rule struct {
	Max int           `yaml:"max"`
	Per time.Duration `yaml:"per"`
}

func (r Rule) off() bool { return r.Max <= 0 || r.Per <= 0 }

// Config holds every limit. The zero value of a field is its default
// (Defaults); a Rule with Max -1 turns it off.
type Config struct {
	// SignUpsPerSource: accounts made from one source address.
	SignUpsPerSource Rule `yaml:"signups_per_source"`
	// FailedAuthPerSource and FailedAuthPerKey: wrong API keys or portal
	// sign-in attempts from one address, and against one key id.
	FailedAuthPerSource Rule `yaml:"failed_auth_per_source"`
	FailedAuthPerKey    Rule `yaml:"failed_auth_per_key"`
	// ValidationsPerAccount and ValidationsPerDomain: validations started.
	ValidationsPerAccount Rule `yaml:"validations_per_account"`
	ValidationsPerDomain  Rule `yaml:"validations_per_domain"`
	// MailsPerAddress: validation mails to one address (someone else's
	// mailbox, perhaps: the CA must not be a way to flood it).
	MailsPerAddress Rule `yaml:"mails_per_address"`
	// PendingValidationsPerAccount bounds the validations waiting at once.
	PendingValidationsPerAccount int `yaml:"pending_validations_per_account"`
	// OrdersPerAccount: orders placed.
	OrdersPerAccount Rule `yaml:"orders_per_account"`
	// PendingACMEOrdersPerAccount bounds the ACME orders an ACME account
	// has open (pending or ready) at once: each makes an authorization per
	// name before any validation or order is counted.
	PendingACMEOrdersPerAccount int `yaml:"pending_acme_orders_per_account"`
}

// Defaults are generous for people and scripts, tight for floods.
func Defaults() Config {
	return Config{
		SignUpsPerSource:             Rule{Max: 20, Per: time.Hour},
		FailedAuthPerSource:          Rule{Max: 60, Per: 10 * time.Minute},
		FailedAuthPerKey:             Rule{Max: 10, Per: 10 * time.Minute},
		ValidationsPerAccount:        Rule{Max: 120, Per: time.Hour},
		ValidationsPerDomain:         Rule{Max: 30, Per: time.Hour},
		MailsPerAddress:              Rule{Max: 5, Per: 24 * time.Hour},
		PendingValidationsPerAccount: 300,
		OrdersPerAccount:             Rule{Max: 300, Per: time.Hour},
		PendingACMEOrdersPerAccount:  100,
	}
}

// withDefaults fills zero fields with Defaults and turns Max -1 into off.
func (c Config) withDefaults() Config {
	d := Defaults()
	for _, p := range []struct{ r, def *Rule }{
		{&c.SignUpsPerSource, &d.SignUpsPerSource}, {&c.FailedAuthPerSource, &d.FailedAuthPerSource},
		{&c.FailedAuthPerKey, &d.FailedAuthPerKey}, {&c.ValidationsPerAccount, &d.ValidationsPerAccount},
		{&c.ValidationsPerDomain, &d.ValidationsPerDomain}, {&c.MailsPerAddress, &d.MailsPerAddress},
		{&c.OrdersPerAccount, &d.OrdersPerAccount},
	} {
		switch {
		case p.r.Max == 0 && p.r.Per == 0:
			*p.r = *p.def
		case p.r.Max < 0:
			*p.r = Rule{}
		}
	}
	if c.PendingValidationsPerAccount == 0 {
		c.PendingValidationsPerAccount = d.PendingValidationsPerAccount
	}
	if c.PendingACMEOrdersPerAccount == 0 {
		c.PendingACMEOrdersPerAccount = d.PendingACMEOrdersPerAccount
	}
	return c
}

// Validate checks the limits an operator wrote.
func (c Config) Validate() error {
	for name, r := range map[string]Rule{
		"signups_per_source": c.SignUpsPerSource, "failed_auth_per_source": c.FailedAuthPerSource,
		"failed_auth_per_key": c.FailedAuthPerKey, "validations_per_account": c.ValidationsPerAccount,
		"validations_per_domain": c.ValidationsPerDomain, "mails_per_address": c.MailsPerAddress,
		"orders_per_account": c.OrdersPerAccount,
	} {
		if r.Max > 0 && (r.Per < time.Second || r.Per > 31*24*time.Hour) {
			return fmt.Errorf("ratelimit: %s: per %s out of range [1s, 31 days]", name, r.Per)
		}
		if r.Max < -1 {
			return fmt.Errorf("ratelimit: %s: max %d (-1 turns it off)", name, r.Max)
		}
	}
	if c.PendingValidationsPerAccount < -1 {
		return fmt.Errorf("ratelimit: pending_validations_per_account %d (-1 turns it off)", c.PendingValidationsPerAccount)
	}
	if c.PendingACMEOrdersPerAccount < -1 {
		return fmt.Errorf("ratelimit: pending_acme_orders_per_account %d (-1 turns it off)", c.PendingACMEOrdersPerAccount)
	}
	return nil
}

// Limiter applies the limits.
type Limiter struct {
	c     Counter
	cfg   Config
	now   func() time.Time
	swept atomic.Int64 // UnixNano of the last sweep
}

// New builds a limiter over the store's counters. nil now means time.Now.
func New(c Counter, cfg Config, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("ratelimit: a counter (the store) is required")
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{c: c, cfg: cfg.withDefaults(), now: now}, nil
}

// Config returns the limits in force.
func (l *Limiter) Config() Config { return l.cfg }

// hit counts one hit of kind by key under r and refuses it past r.Max.
// A nil Limiter allows everything.
func (l *Limiter) hit(ctx context.Context, r Rule, kind, key, what string) error {
	if l == nil || r.off() {
		return nil
	}
	now := l.now()
	l.sweep(ctx, now)
	start := now.Truncate(r.Per)
	end := start.Add(r.Per)
	n, err := l.c.CountHit(ctx, kind+":"+key, start, end)
	if err != nil {
		return fmt.Errorf("ratelimit: counting %s: %w", kind, err)
	}
	if n <= int64(r.Max) {
		return nil
	}
	wait := end.Sub(now)
	return &fault.RateLimitedError{RetryAfter: wait, Detail: fmt.Sprintf("too many %s: at most %d per %s; try again in %s",
		what, r.Max, human(r.Per), human(wait.Round(time.Second)))}
}

// sweep deletes expired counters at most once per sweepEvery (per
// instance). A failure is harmless: expired counters are only rows.
func (l *Limiter) sweep(ctx context.Context, now time.Time) {
	last := l.swept.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !l.swept.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, _ = l.c.DeleteExpiredRateCounters(ctx, now)
}

// SignUp counts an account made from source (an IP address).
func (l *Limiter) SignUp(ctx context.Context, source string) error {
	return l.hit(ctx, l.cfgOr().SignUpsPerSource, "signup", Source(source), "sign-ups from your address")
}

// FailedAuth counts a wrong key or sign-in attempt from source, against
// keyID when one was named ("" if not).
func (l *Limiter) FailedAuth(ctx context.Context, source, keyID string) error {
	if err := l.hit(ctx, l.cfgOr().FailedAuthPerSource, "authfail-src", Source(source), "failed sign-in attempts from your address"); err != nil {
		return err
	}
	if keyID == "" {
		return nil
	}
	return l.hit(ctx, l.cfgOr().FailedAuthPerKey, "authfail-key", keyID, "failed attempts with this key")
}

// Validation counts a validation started by an account for a domain.
func (l *Limiter) Validation(ctx context.Context, accountID, domain string) error {
	if err := l.hit(ctx, l.cfgOr().ValidationsPerAccount, "val-acct", accountID, "validations started by this account"); err != nil {
		return err
	}
	return l.hit(ctx, l.cfgOr().ValidationsPerDomain, "val-domain", strings.ToLower(domain), "validations of "+domain)
}

// Mail counts a validation mail to address.
func (l *Limiter) Mail(ctx context.Context, address string) error {
	return l.hit(ctx, l.cfgOr().MailsPerAddress, "mail", strings.ToLower(address), "validation mails to "+address)
}

// Order counts an order placed by an account.
func (l *Limiter) Order(ctx context.Context, accountID string) error {
	return l.hit(ctx, l.cfgOr().OrdersPerAccount, "order", accountID, "orders from this account")
}

// Pending refuses a new validation when the account has max or more
// pending ones already.
func (l *Limiter) Pending(pending int) error {
	if l == nil || l.cfg.PendingValidationsPerAccount <= 0 || pending < l.cfg.PendingValidationsPerAccount {
		return nil
	}
	return &fault.RateLimitedError{RetryAfter: time.Hour, Detail: fmt.Sprintf(
		"the account has %d validations pending, the most it may have; complete or let some expire first", pending)}
}

// PendingACMEOrders refuses a new ACME order when the ACME account has
// pending (or more) open already.
func (l *Limiter) PendingACMEOrders(pending int) error {
	if l == nil || l.cfg.PendingACMEOrdersPerAccount <= 0 || pending < l.cfg.PendingACMEOrdersPerAccount {
		return nil
	}
	return &fault.RateLimitedError{RetryAfter: time.Hour, Detail: fmt.Sprintf(
		"the account has %d orders open, the most it may have; finalize them or let them expire first", pending)}
}

func (l *Limiter) cfgOr() Config {
	if l == nil {
		return Config{}
	}
	return l.cfg
}

// Source is the counter key of a client address ("host:port" or a bare
// IP): the IPv4 address, or the IPv6 /64 (one subscriber's whole network,
// which an attacker gets as easily as one address).
func Source(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// RetryAfterSeconds is the Retry-After value of a wait, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(int64(math.Max(1, math.Ceil(d.Seconds()))))
}

func human(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d day(s)", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d hour(s)", d/time.Hour)
	}
	return d.String()
}

// Off is a configuration with every limit turned off: for load
// benchmarks that drive one account as hard as they can.
func Off() Config {
	off := Rule{Max: -1}
	return Config{SignUpsPerSource: off, FailedAuthPerSource: off, FailedAuthPerKey: off, ValidationsPerAccount: off,
		ValidationsPerDomain: off, MailsPerAddress: off, PendingValidationsPerAccount: -1, OrdersPerAccount: off,
		PendingACMEOrdersPerAccount: -1}
}
