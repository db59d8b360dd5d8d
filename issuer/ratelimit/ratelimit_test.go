package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/issuer/fault"
)

// memCounter is the store's counter in memory.
type memCounter struct {
	mu     sync.Mutex
	n      map[string]int64
	sweeps int
}

func (m *memCounter) DeleteExpiredRateCounters(context.Context, time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweeps++
	return 0, nil
}

func (m *memCounter) CountHit(_ context.Context, key string, start, _ time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key + "@" + start.String()
	m.n[k]++
	return m.n[k], nil
}

func TestLimits(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 59, 30, 0, time.UTC)
	mc := &memCounter{n: map[string]int64{}}
	l, err := New(mc, Config{SignUpsPerSource: Rule{Max: 2, Per: time.Hour}, OrdersPerAccount: Rule{Max: -1}},
		func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 2 {
		if err := l.SignUp(ctx, "192.0.2.7:5555"); err != nil {
			t.Fatalf("sign-up %d: %v", i+1, err)
		}
	}
	err = l.SignUp(ctx, "192.0.2.7:6666")
	var rl *fault.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second || !strings.Contains(rl.Detail, "at most 2 per 1 hour(s)") {
		t.Fatalf("third sign-up: %v", err)
	}
	if err := l.SignUp(ctx, "192.0.2.8:1"); err != nil {
		t.Errorf("another address: %v", err)
	}
	// IPv6 addresses of one /64 share a counter.
	for _, a := range []string{"[2001:db8::1]:1", "[2001:db8::2]:1"} {
		if err := l.SignUp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SignUp(ctx, "[2001:db8::ffff]:1"); !errors.As(err, &rl) {
		t.Errorf("a third address of the same /64: %v", err)
	}
	now = now.Add(11 * time.Minute) // the next window, and time to sweep again
	if err := l.SignUp(ctx, "192.0.2.7:1"); err != nil {
		t.Errorf("next window: %v", err)
	}
	for range 1000 {
		if err := l.Order(ctx, "acct"); err != nil {
			t.Fatalf("a rule turned off refused: %v", err)
		}
	}
	// Defaults apply to the fields left zero.
	if l.Config().MailsPerAddress != (Rule{Max: 5, Per: 24 * time.Hour}) {
		t.Errorf("mails default: %+v", l.Config().MailsPerAddress)
	}
	for i := range 5 {
		if err := l.Mail(ctx, "Postmaster@example.com"); err != nil {
			t.Fatalf("mail %d: %v", i, err)
		}
	}
	if err := l.Mail(ctx, "postmaster@example.com"); !errors.As(err, &rl) {
		t.Errorf("a sixth mail to the same address (other case): %v", err)
	}
	if err := l.Pending(299); err != nil {
		t.Errorf("299 pending: %v", err)
	}
	if err := l.Pending(300); !errors.As(err, &rl) {
		t.Errorf("300 pending: %v", err)
	}
	if mc.sweeps != 2 {
		t.Errorf("%d sweeps in two windows ten minutes apart? want 2 (the first hit, then after 10 minutes)", mc.sweeps)
	}
	var none *Limiter
	if err := none.Order(ctx, "x"); err != nil {
		t.Errorf("a nil limiter refused: %v", err)
	}
}

func TestFailedAuthPerKey(t *testing.T) {
	l, _ := New(&memCounter{n: map[string]int64{}}, Config{}, nil)
	var err error
	for i := 0; i < 11 && err == nil; i++ {
		err = l.FailedAuth(context.Background(), "198.51.100.1:1", "00112233aabbccdd")
	}
	if !strings.Contains(err.Error(), "with this key") {
		t.Fatalf("eleventh failure against one key: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{SignUpsPerSource: Rule{Max: 1, Per: time.Millisecond}},
		{OrdersPerAccount: Rule{Max: -2}},
		{PendingValidationsPerAccount: -5},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 1500 * time.Millisecond: "2", time.Hour: "3600"} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %s, want %s", d, got, want)
		}
	}
}
