package acme

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testfix"
)

// counter is the store's expiring counters, in memory.
type counter struct {
	mu     sync.Mutex
	hits   map[string]int64
	expiry map[string]time.Time
	sweeps int
	err    error
}

func (c *counter) DeleteExpiredRateCounters(_ context.Context, now time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweeps++
	var n int64
	for k, at := range c.expiry {
		if !now.Before(at) {
			delete(c.hits, k)
			delete(c.expiry, k)
			n++
		}
	}
	return n, nil
}

func (c *counter) CountHit(_ context.Context, key string, windowStart, expiresAt time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.hits == nil {
		c.hits = map[string]int64{}
	}
	if c.expiry == nil {
		c.expiry = map[string]time.Time{}
	}
	k := key + "@" + windowStart.String()
	c.hits[k]++
	c.expiry[k] = expiresAt
	return c.hits[k], nil
}

func newNonces(t *testing.T, key byte, c Counter, clk *testfix.Clock) *Nonces {
	t.Helper()
	k := make([]byte, 32)
	k[0] = key
	n, err := NewNonces(NonceConfig{Key: k}, c, clk.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonces(t *testing.T) {
	ctx := context.Background()
	clk := testfix.NewClock(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	c := &counter{}
	a, b := newNonces(t, 1, c, clk), newNonces(t, 1, c, clk) // two api instances
	n1, err := a.New()
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := a.New()
	if n1 == n2 {
		t.Fatal("two nonces are equal")
	}
	// Any instance with the key redeems a nonce once.
	if err := b.Redeem(ctx, n1); err != nil {
		t.Fatalf("first use on another instance: %v", err)
	}
	wantProblem(t, a.Redeem(ctx, n1), BadNonce)
	wantProblem(t, b.Redeem(ctx, n1), BadNonce)
	if err := a.Redeem(ctx, n2); err != nil {
		t.Fatal(err)
	}
	// A nonce sealed with another key, tampered with, or cut is refused.
	other := newNonces(t, 2, c, clk)
	n3, _ := other.New()
	wantProblem(t, a.Redeem(ctx, n3), BadNonce)
	n4, _ := a.New()
	flip := []byte(n4)
	flip[3] ^= 1
	for _, bad := range []string{string(flip), n4[:len(n4)-1], n4 + "A", "", strings.Repeat("A", len(n4)), n4[:len(n4)-1] + "="} {
		wantProblem(t, a.Redeem(ctx, bad), BadNonce)
	}
	if err := a.Redeem(ctx, n4); err != nil {
		t.Fatalf("the untampered nonce: %v", err)
	}
	// A nonce expires after MaxAge, used or not.
	n5, _ := a.New()
	clk.Advance(DefaultNonceMaxAge - time.Second)
	n6, _ := a.New()
	clk.Advance(time.Second)
	wantProblem(t, a.Redeem(ctx, n5), BadNonce)
	if err := a.Redeem(ctx, n6); err != nil {
		t.Fatalf("a nonce one second old: %v", err)
	}
	// Used nonces are swept once they would have expired anyway.
	for range 2 {
		x, _ := a.New()
		if err := a.Redeem(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	before := len(c.hits)
	clk.Advance(2 * DefaultNonceMaxAge)
	n7, _ := a.New()
	if err := a.Redeem(ctx, n7); err != nil {
		t.Fatal(err)
	}
	if c.sweeps == 0 || len(c.hits) != 1 || before < 3 {
		t.Fatalf("after a sweep %d counters are left of %d (sweeps %d), want only the newest", len(c.hits), before, c.sweeps)
	}
}

func TestNonceStoreDown(t *testing.T) {
	clk := testfix.NewClock(time.Now())
	down := errors.New("store unavailable")
	n := newNonces(t, 1, &counter{err: down}, clk)
	v, _ := n.New()
	err := n.Redeem(context.Background(), v)
	var p *Problem
	if !errors.Is(err, down) || errors.As(err, &p) {
		t.Fatalf("store down: %v, want the store's error and no problem (the client did nothing wrong)", err)
	}
}

func TestNewNoncesConfig(t *testing.T) {
	c := &counter{}
	for _, tc := range []struct {
		cfg NonceConfig
		c   Counter
	}{
		{NonceConfig{Key: make([]byte, 16)}, c},
		{NonceConfig{Key: make([]byte, 32), MaxAge: time.Second}, c},
		{NonceConfig{Key: make([]byte, 32), MaxAge: 48 * time.Hour}, c},
		{NonceConfig{Key: make([]byte, 32)}, nil},
	} {
		if _, err := NewNonces(tc.cfg, tc.c, nil, nil); err == nil {
			t.Errorf("NewNonces(%+v) accepted", tc.cfg)
		}
	}
}
