package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
)

// racers is how many goroutines contend in each concurrency test: more than
// the connections a small pool keeps, so some wait in the pool and some in
// the database.
const racers = 8

// race runs fn(0..n-1) in n goroutines released together and returns their
// errors by index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other one is
// `loser`; it returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser error, doing string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: racers %d and %d both succeeded", doing, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Fatalf("%s: racer %d: error %v, want errors.Is(%v)", doing, i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody succeeded", doing)
	}
	return winner
}

func testConcurrentPublishCRL(t *testing.T, s store.Store) {
	must(t, s.PublishCRL(ctx(t), crl(issuerA, 3, 1), 0, store.AuditEntry{}), "publishing the first CRL")
	for round := int64(1); round <= 5; round++ {
		offers := make([]store.CRL, racers)
		for i := range offers {
			offers[i] = crl(issuerA, 3, round+1)
			offers[i].DER = []byte(fmt.Sprintf("racer-%d-round-%d", i, round))
		}
		errs := race(racers, func(i int) error { return s.PublishCRL(ctx(t), offers[i], round, store.AuditEntry{}) })
		w := oneWinner(t, errs, store.ErrConflict, fmt.Sprintf("round %d", round))
		got, err := s.CRL(ctx(t), issuerA, 3)
		must(t, err, "reading CRL")
		if d := diff(offers[w], got); d != "" {
			t.Fatalf("round %d: stored CRL is not the winner's (-want +got):\n%s", round, d)
		}
	}
}

func testConcurrentAcquireLease(t *testing.T, s store.Store) {
	now, until := t0, t0.Add(time.Minute)
	acquire := func(name string) []error {
		return race(racers, func(i int) error {
			ok, err := s.AcquireLease(ctx(t), name, fmt.Sprintf("holder-%d", i), now, until)
			if err == nil && !ok {
				err = errLost
			}
			return err
		})
	}
	for round := range 3 {
		oneWinner(t, acquire(fmt.Sprintf("fresh-%d", round)), errLost, fmt.Sprintf("fresh lease, round %d", round))
	}
	// An expired lease is taken over by exactly one of the racers.
	ok, err := s.AcquireLease(ctx(t), "expired", "old", t0.Add(-time.Hour), t0)
	must(t, err, "seeding an expired lease")
	if !ok {
		t.Fatal("could not seed the expired lease")
	}
	oneWinner(t, acquire("expired"), errLost, "expired lease")
}

var errLost = errors.New("lease not acquired")

func testConcurrentAppendAudit(t *testing.T, s store.Store) {
	const perRacer = 10
	// Half the racers append directly, half issue certificates (whose audit
	// entry is appended inside InsertCertificate's transaction).
	errs := race(racers, func(i int) error {
		for j := range perRacer {
			if i%2 == 0 {
				if _, err := s.AppendAudit(ctx(t), store.AuditEntry{
					At: t0.Add(time.Duration(j) * time.Millisecond), Kind: "test.append",
					Actor: fmt.Sprintf("racer-%d", i), Subject: fmt.Sprint(j),
				}); err != nil {
					return err
				}
				continue
			}
			c := cert(1000*i+j, issuerA, 0)
			if err := s.ReserveSerial(ctx(t), c.Serial, c.IssuerID, t0); err != nil {
				return err
			}
			if err := s.InsertCertificate(ctx(t), c, auditFor("certificate.issued", c.Serial, t0)); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		must(t, err, fmt.Sprintf("racer %d", i))
	}
	if n := len(allAudit(t, s)); n != racers*perRacer {
		t.Errorf("audit has %d entries, want %d", n, racers*perRacer)
	}
}

func testConcurrentReserveSerial(t *testing.T, s store.Store) {
	for round := range 5 {
		errs := race(racers, func(int) error { return s.ReserveSerial(ctx(t), sn(round), issuerA, t0) })
		oneWinner(t, errs, store.ErrDuplicate, fmt.Sprintf("round %d", round))
	}
}

func testConcurrentRevoke(t *testing.T, s store.Store) {
	c := cert(1, issuerA, 0)
	issue(t, s, c)
	errs := race(racers, func(i int) error {
		_, err := s.Revoke(ctx(t), store.Revocation{Serial: c.Serial, Reason: reason.KeyCompromise, At: t0.Add(time.Duration(i) * time.Second)},
			auditFor("certificate.revoked", c.Serial, t0))
		return err
	})
	oneWinner(t, errs, store.ErrAlreadyRevoked, "revoking")
	revokedEvents := 0
	for _, e := range allEvents(t, s) {
		if e.Kind == store.EventRevoked {
			revokedEvents++
		}
	}
	if revokedEvents != 1 {
		t.Errorf("%d revoked events, want exactly 1", revokedEvents)
	}
	if n := len(allAudit(t, s)); n != 2 {
		t.Errorf("audit has %d entries, want 2 (issued, revoked)", n)
	}
}

func testConcurrentInsertMeta(t *testing.T, s store.Store) {
	for round := range 5 {
		key := fmt.Sprintf("pki.hierarchy.%d", round)
		errs := race(racers, func(i int) error { return s.InsertMeta(ctx(t), key, []byte(fmt.Sprintf("racer-%d", i))) })
		w := oneWinner(t, errs, store.ErrDuplicate, fmt.Sprintf("round %d", round))
		got, err := s.Meta(ctx(t), key)
		must(t, err, "reading")
		if want := fmt.Sprintf("racer-%d", w); string(got) != want {
			t.Fatalf("round %d: stored %q, want the winner's %q", round, got, want)
		}
	}
}

// testConcurrentPortalSignIns: sign-ins of one account racing each other
// still leave at most the limit of its sessions, the newest among them.
func testConcurrentPortalSignIns(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	const limit = 3
	for round := range 3 {
		base := round * racers
		errs := race(racers, func(i int) error {
			return s.CreatePortalSession(ctx(t), portalSession(base+i, a.ID, t0.Add(time.Duration(base+i)*time.Second)), limit)
		})
		for i, err := range errs {
			must(t, err, fmt.Sprintf("round %d, racer %d", round, i))
		}
		if live := liveSessions(t, s, 3*racers); len(live) != limit {
			t.Fatalf("round %d: %d sessions live (%v), want %d", round, len(live), live, limit)
		}
	}
}
