package acme

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Counter is the subset of the store's expiring counters (the ones rate
// limits use) that redeems nonces: a nonce is counted once under its own
// key, and a count above one is a replay.
type Counter interface {
	CountHit(ctx context.Context, key string, windowStart, expiresAt time.Time) (int64, error)
	DeleteExpiredRateCounters(ctx context.Context, now time.Time) (int64, error)
}

// sweepEvery is how often redeeming also deletes the expired counters, so
// that used nonces do not pile up where no rate limit sweeps.
const sweepEvery = 10 * time.Minute

// NonceConfig tunes the nonces.
type NonceConfig struct {
	// Key seals the nonces (HMAC-SHA256); every api instance must hold the
	// same 32 bytes, so that any of them accepts a nonce another issued.
	Key []byte
	// MaxAge is how long a nonce stays good: default 1 h. Clients fetch a
	// fresh one with every response and retry a badNonce once (RFC 8555
	// §6.5), so it need only outlast one request; an hour covers a client
	// that waits for a person between requests (certbot --manual).
	MaxAge time.Duration
}

// DefaultNonceMaxAge is NonceConfig.MaxAge's default.
const DefaultNonceMaxAge = time.Hour

// Nonces issues and redeems anti-replay nonces (RFC 8555 §6.5). A nonce is
// base64url(issued seconds ‖ 12 random bytes ‖ HMAC-SHA256 of both, cut
// to 16 bytes). Issuing writes nothing, so an unauthenticated newNonce
// flood costs the store nothing; redeeming is one counter increment,
// shared by every instance through the store, kept until the nonce
// would have expired anyway.
type Nonces struct {
	key    []byte
	maxAge time.Duration
	c      Counter
	now    func() time.Time
	rand   io.Reader
	swept  atomic.Int64 // UnixNano of the last sweep
}

const (
	nonceTimeLen = 8
	nonceRandLen = 12
	nonceMACLen  = 16
	nonceLen     = nonceTimeLen + nonceRandLen + nonceMACLen
)

// NewNonces builds the nonce service. nil now means time.Now, nil rand
// crypto/rand.
func NewNonces(cfg NonceConfig, c Counter, now func() time.Time, random io.Reader) (*Nonces, error) {
	if len(cfg.Key) != 32 {
		return nil, fmt.Errorf("acme: the nonce key must be 32 bytes, not %d", len(cfg.Key))
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultNonceMaxAge
	}
	if cfg.MaxAge < time.Minute || cfg.MaxAge > 24*time.Hour {
		return nil, fmt.Errorf("acme: nonce max age %s out of range [1m, 24h]", cfg.MaxAge)
	}
	if c == nil {
		return nil, errors.New("acme: nonces need the store's counters")
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Reader
	}
	return &Nonces{key: append([]byte(nil), cfg.Key...), maxAge: cfg.MaxAge, c: c, now: now, rand: random}, nil
}

// New returns a fresh nonce.
func (n *Nonces) New() (string, error) {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceTimeLen], uint64(n.now().Unix()))
	if _, err := io.ReadFull(n.rand, b[nonceTimeLen:nonceTimeLen+nonceRandLen]); err != nil {
		return "", fmt.Errorf("acme: making a nonce: %w", err)
	}
	copy(b[nonceTimeLen+nonceRandLen:], n.mac(b[:nonceTimeLen+nonceRandLen]))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (n *Nonces) mac(b []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(b)
	return m.Sum(nil)[:nonceMACLen]
}

// Redeem accepts a nonce this service (or another instance with the same
// key) issued, not expired and never redeemed before, and marks it used.
// It returns a badNonce problem otherwise, and the store's error (not a
// problem) when the store cannot count.
func (n *Nonces) Redeem(ctx context.Context, nonce string) error {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(nonceLen) {
		return Problemf(BadNonce, "the nonce is not one this server issued")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(b) != nonceLen || !hmac.Equal(b[nonceTimeLen+nonceRandLen:], n.mac(b[:nonceTimeLen+nonceRandLen])) {
		return Problemf(BadNonce, "the nonce is not one this server issued")
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:nonceTimeLen])), 0)
	now := n.now()
	expires := issued.Add(n.maxAge)
	// Only this server's key makes a nonce with a valid MAC, so one dated
	// ahead (another instance's clock runs fast) is still one it issued.
	if !now.Before(expires) {
		return Problemf(BadNonce, "the nonce has expired; use the one in this response's Replay-Nonce")
	}
	if last := n.swept.Load(); now.UnixNano()-last >= int64(sweepEvery) && n.swept.CompareAndSwap(last, now.UnixNano()) {
		_, _ = n.c.DeleteExpiredRateCounters(ctx, now)
	}
	count, err := n.c.CountHit(ctx, "acme-nonce:"+nonce, issued, expires)
	if err != nil {
		return fmt.Errorf("acme: redeeming a nonce: %w", err)
	}
	if count > 1 {
		return Problemf(BadNonce, "the nonce was used before; use the one in this response's Replay-Nonce")
	}
	return nil
}
