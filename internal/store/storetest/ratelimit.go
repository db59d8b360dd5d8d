package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// testRateCounters: counts per key and window, atomic under concurrency,
// expired counters deleted.
func testRateCounters(t *testing.T, s store.Store) {
	w1, w2 := us(t0), us(t0.Add(time.Hour))
	for i := int64(1); i <= 3; i++ {
		n, err := s.CountHit(ctx(t), "signup:192.0.2.1", w1, w2)
		must(t, err, "counting")
		if n != i {
			t.Fatalf("hit %d counted %d", i, n)
		}
	}
	if n, err := s.CountHit(ctx(t), "signup:192.0.2.1", w2, w2.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("a new window starts at 1: %d, %v", n, err)
	}
	if n, err := s.CountHit(ctx(t), "signup:192.0.2.2", w1, w2); err != nil || n != 1 {
		t.Errorf("another key starts at 1: %d, %v", n, err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.CountHit(ctx(t), "orders:acct", w1, w2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _ := s.CountHit(ctx(t), "orders:acct", w1, w2); n != 21 {
		t.Errorf("20 concurrent hits and one more counted %d, want 21", n)
	}
	n, err := s.DeleteExpiredRateCounters(ctx(t), w2)
	must(t, err, "deleting expired counters")
	if n != 3 {
		t.Errorf("deleted %d counters expiring at %s, want 3", n, w2)
	}
	if n, _ := s.CountHit(ctx(t), "signup:192.0.2.1", w1, w2); n != 1 {
		t.Errorf("a deleted counter starts again at 1: %d", n)
	}
}
