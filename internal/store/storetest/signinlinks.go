package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// linkHash is the key of test sign-in link i.
func linkHash(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprintf("signin-token-%d", i)))
	return h[:]
}

// signInLink is link i of an account, made at `at`, good for 15 min.
func signInLink(i int, accountID string, at time.Time) store.SignInLink {
	return store.SignInLink{
		TokenHash: linkHash(i),
		AccountID: accountID,
		CreatedAt: us(at),
		ExpiresAt: us(at.Add(15 * time.Minute)),
	}
}

// portalLimits are the portal's: one link per 30 s, 3 per account.
var portalLimits = store.SignInLinkLimits{Interval: 30 * time.Second, PerAccount: 3, Total: 10000}

// createLink creates l and fails the test unless the store answers
// wantCreated.
func createLink(t *testing.T, s store.Store, l store.SignInLink, lim store.SignInLinkLimits, wantCreated bool, doing string) {
	t.Helper()
	ok, err := s.CreateSignInLink(ctx(t), l, lim)
	must(t, err, doing)
	if ok != wantCreated {
		t.Fatalf("%s: created %v, want %v", doing, ok, wantCreated)
	}
}

func readLink(t *testing.T, s store.Store, i int) store.SignInLink {
	t.Helper()
	l, err := s.SignInLink(ctx(t), linkHash(i))
	must(t, err, fmt.Sprintf("reading link %d", i))
	return l
}

// liveLinks lists which of links 0..n-1 are stored.
func liveLinks(t *testing.T, s store.Store, n int) []int {
	t.Helper()
	var out []int
	for i := range n {
		_, err := s.SignInLink(ctx(t), linkHash(i))
		if err == nil {
			out = append(out, i)
			continue
		}
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("reading link %d", i))
	}
	return out
}

func testSignInLinks(t *testing.T, s store.Store) {
	_, err := s.SignInLink(ctx(t), linkHash(1))
	wantErr(t, err, store.ErrNotFound, "reading a link never created")
	_, err = s.ConsumeSignInLink(ctx(t), linkHash(1))
	wantErr(t, err, store.ErrNotFound, "consuming a link never created")
	_, err = s.CreateSignInLink(ctx(t), signInLink(1, "acct-none", t0), portalLimits)
	wantErr(t, err, store.ErrNotFound, "creating a link for an unknown account")
	a := seedAccount(t, s, 1)

	want := signInLink(1, a.ID, t0)
	createLink(t, s, want, portalLimits, true, "creating")
	for i := range 2 {
		if d := diff(want, readLink(t, s, 1)); d != "" {
			t.Errorf("SignInLink, read %d (-want +got):\n%s", i+1, d)
		}
	}
	_, err = s.CreateSignInLink(ctx(t), signInLink(1, a.ID, t0.Add(time.Hour)), portalLimits)
	wantErr(t, err, store.ErrDuplicate, "creating it again")

	for _, bad := range []store.SignInLinkLimits{
		{Interval: -time.Second, PerAccount: 3, Total: 10},
		{Interval: 0, PerAccount: 0, Total: 10},
		{Interval: 0, PerAccount: 3, Total: 0},
	} {
		if ok, err := s.CreateSignInLink(ctx(t), signInLink(9, a.ID, t0.Add(2*time.Hour)), bad); err == nil || ok {
			t.Errorf("CreateSignInLink with limits %+v: %v, %v; want an error", bad, ok, err)
		}
	}

	got, err := s.ConsumeSignInLink(ctx(t), linkHash(1))
	must(t, err, "consuming")
	if d := diff(want, got); d != "" {
		t.Errorf("ConsumeSignInLink (-want +got):\n%s", d)
	}
	_, err = s.ConsumeSignInLink(ctx(t), linkHash(1))
	wantErr(t, err, store.ErrNotFound, "consuming it again")
	_, err = s.SignInLink(ctx(t), linkHash(1))
	wantErr(t, err, store.ErrNotFound, "reading a consumed link")

	// Expiry is the caller's to judge: an expired link is read and
	// consumed like any other.
	old := signInLink(2, a.ID, t0.Add(-time.Hour))
	createLink(t, s, old, portalLimits, true, "creating an expired link")
	if d := diff(old, readLink(t, s, 2)); d != "" {
		t.Errorf("SignInLink of an expired link (-want +got):\n%s", d)
	}
	got, err = s.ConsumeSignInLink(ctx(t), linkHash(2))
	must(t, err, "consuming an expired link")
	if d := diff(old, got); d != "" {
		t.Errorf("ConsumeSignInLink of an expired link (-want +got):\n%s", d)
	}
	if got := liveLinks(t, s, 10); len(got) != 0 {
		t.Errorf("live links %v, want none (refused creations must store nothing)", got)
	}
}

// testSignInLinkTimes: times come back in UTC at microsecond precision,
// from both reads.
func testSignInLinkTimes(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	zone := time.FixedZone("IST", 5*3600+1800)
	in := store.SignInLink{
		TokenHash: linkHash(1),
		AccountID: a.ID,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, zone),
		ExpiresAt: time.Date(2026, 1, 2, 3, 19, 5, 123_456_789, zone),
	}
	createLink(t, s, in, portalLimits, true, "creating")
	read := readLink(t, s, 1)
	consumed, err := s.ConsumeSignInLink(ctx(t), linkHash(1))
	must(t, err, "consuming")
	wantCreated := time.Date(2026, 1, 1, 21, 34, 5, 999_999_000, time.UTC)
	wantExpires := time.Date(2026, 1, 1, 21, 49, 5, 123_456_000, time.UTC)
	for name, l := range map[string]store.SignInLink{"SignInLink": read, "ConsumeSignInLink": consumed} {
		for _, tc := range []struct {
			field     string
			got, want time.Time
		}{
			{"CreatedAt", l.CreatedAt, wantCreated},
			{"ExpiresAt", l.ExpiresAt, wantExpires},
		} {
			if !tc.got.Equal(tc.want) || tc.got.Location() != time.UTC {
				t.Errorf("%s %s = %v (%v), want %v in UTC", name, tc.field, tc.got, tc.got.Location(), tc.want)
			}
		}
	}
}

// testSignInLinkInterval: an account gets a new link only Interval after
// its newest stored one, whatever other accounts do.
func testSignInLinkInterval(t *testing.T, s store.Store) {
	a, b := seedAccount(t, s, 1), seedAccount(t, s, 2)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	short := func(l store.SignInLink) store.SignInLink {
		l.ExpiresAt = l.CreatedAt.Add(10 * time.Second)
		return l
	}
	// Steps run in order against one store.
	for _, tc := range []struct {
		name    string
		link    store.SignInLink
		created bool
	}{
		{"first", signInLink(0, a.ID, at(0)), true},
		{"a microsecond early", signInLink(1, a.ID, at(30*time.Second-time.Microsecond)), false},
		{"another account", signInLink(2, b.ID, at(time.Second)), true},
		{"exactly the interval later", signInLink(3, a.ID, at(30*time.Second)), true},
		{"a slow clock", signInLink(4, a.ID, at(20*time.Second)), false},
		{"short-lived, first", short(signInLink(5, a.ID, at(time.Minute))), true},
		{"its expiry does not end the interval", signInLink(6, a.ID, at(time.Minute+20*time.Second)), false},
		{"after the interval", signInLink(7, a.ID, at(time.Minute+30*time.Second)), true},
	} {
		createLink(t, s, tc.link, portalLimits, tc.created, tc.name)
	}
	// Link 7 was a's fourth: it dropped link 0 (PerAccount 3).
	if d := diff([]int{2, 3, 5, 7}, liveLinks(t, s, 10)); d != "" {
		t.Errorf("stored links (-want +got):\n%s", d)
	}
	// A consumed link no longer holds the account back.
	_, err := s.ConsumeSignInLink(ctx(t), linkHash(7))
	must(t, err, "consuming the newest link")
	createLink(t, s, signInLink(8, a.ID, at(time.Minute+31*time.Second)), portalLimits, true, "after consuming the newest")
}

// testSignInLinksPerAccount: a new link drops the account's oldest beyond
// PerAccount, never the new one, and never another account's.
func testSignInLinksPerAccount(t *testing.T, s store.Store) {
	a, b := seedAccount(t, s, 1), seedAccount(t, s, 2)
	lim := store.SignInLinkLimits{PerAccount: 3, Total: 100}
	minute := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	createLink(t, s, signInLink(100, b.ID, t0), lim, true, "creating b's link")
	for i := range 5 {
		createLink(t, s, signInLink(i, a.ID, minute(i)), lim, true, fmt.Sprintf("creating a's link %d", i))
	}
	if d := diff([]int{2, 3, 4}, liveLinks(t, s, 10)); d != "" {
		t.Errorf("after 5 links with a limit of 3 (-want +got):\n%s", d)
	}
	lim.PerAccount = 1
	createLink(t, s, signInLink(5, a.ID, minute(5)), lim, true, "creating a's link 5 with a limit of 1")
	if d := diff([]int{5}, liveLinks(t, s, 10)); d != "" {
		t.Errorf("after a link with a limit of 1 (-want +got):\n%s", d)
	}
	if _, err := s.SignInLink(ctx(t), linkHash(100)); err != nil {
		t.Errorf("another account's link was dropped: %v", err)
	}
}

// testSignInLinksTotal: beyond Total unexpired links, nobody gets a new
// one until some expire; a refusal changes nothing.
func testSignInLinksTotal(t *testing.T, s store.Store) {
	lim := store.SignInLinkLimits{PerAccount: 3, Total: 3}
	var accts []store.Account
	for i := range 4 {
		accts = append(accts, seedAccount(t, s, i+1))
	}
	for i := range 3 {
		createLink(t, s, signInLink(i, accts[i].ID, t0), lim, true, fmt.Sprintf("creating link %d", i))
	}
	// The three expire at t0+15m.
	createLink(t, s, signInLink(3, accts[3].ID, t0.Add(time.Minute)), lim, false, "a fourth while three are live")
	createLink(t, s, signInLink(4, accts[0].ID, t0.Add(15*time.Minute-time.Microsecond)), lim, false,
		"a microsecond before they expire, for an account that has one")
	if d := diff([]int{0, 1, 2}, liveLinks(t, s, 10)); d != "" {
		t.Errorf("after refusals (-want +got):\n%s", d)
	}
	createLink(t, s, signInLink(5, accts[3].ID, t0.Add(15*time.Minute)), lim, true, "once they have expired")
	if d := diff([]int{0, 1, 2, 5}, liveLinks(t, s, 10)); d != "" {
		t.Errorf("after the three expired (-want +got):\n%s", d)
	}
}

func testDeleteExpiredSignInLinks(t *testing.T, s store.Store) {
	a, b := seedAccount(t, s, 1), seedAccount(t, s, 2)
	lim := store.SignInLinkLimits{PerAccount: 3, Total: 100}
	// Link i expires at t0+10m+5m*i.
	for i, acct := range []store.Account{a, b, a} {
		l := signInLink(i, acct.ID, t0.Add(time.Duration(i)*5*time.Minute-5*time.Minute))
		createLink(t, s, l, lim, true, fmt.Sprintf("creating link %d", i))
	}
	for _, tc := range []struct {
		now  time.Duration
		n    int64
		live []int
	}{
		{9 * time.Minute, 0, []int{0, 1, 2}},
		{10 * time.Minute, 1, []int{1, 2}}, // expired at exactly its end
		{15 * time.Minute, 1, []int{2}},
		{19 * time.Minute, 0, []int{2}},
	} {
		now := t0.Add(tc.now)
		n, err := s.DeleteExpiredSignInLinks(ctx(t), now)
		must(t, err, "deleting expired links")
		live := liveLinks(t, s, 4)
		if n != tc.n || diff(tc.live, live) != "" {
			t.Errorf("at t0+%v: deleted %d, live %v; want %d, %v", tc.now, n, live, tc.n, tc.live)
		}
		for _, i := range live {
			if readLink(t, s, i).Expired(now) {
				t.Errorf("at t0+%v: link %d is left but Expired", tc.now, i)
			}
		}
	}
}

var errRefused = errors.New("sign-in link refused")

// testConcurrentConsumeSignInLink: of consumers racing for one link,
// exactly one gets it.
func testConcurrentConsumeSignInLink(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	lim := store.SignInLinkLimits{PerAccount: 3, Total: 100}
	for round := range 5 {
		want := signInLink(round, a.ID, t0.Add(time.Duration(round)*time.Minute))
		createLink(t, s, want, lim, true, fmt.Sprintf("round %d: creating", round))
		got := make([]store.SignInLink, racers)
		errs := race(racers, func(i int) error {
			var err error
			got[i], err = s.ConsumeSignInLink(ctx(t), want.TokenHash)
			return err
		})
		w := oneWinner(t, errs, store.ErrNotFound, fmt.Sprintf("round %d", round))
		if d := diff(want, got[w]); d != "" {
			t.Fatalf("round %d: the winner got (-want +got):\n%s", round, d)
		}
	}
}

// testConcurrentSignInLinks: requests for one account racing each other
// keep its interval and its PerAccount bound.
func testConcurrentSignInLinks(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	create := func(base int, at time.Time, lim store.SignInLinkLimits) []error {
		return race(racers, func(i int) error {
			ok, err := s.CreateSignInLink(ctx(t), signInLink(base+i, a.ID, at), lim)
			if err == nil && !ok {
				err = errRefused
			}
			return err
		})
	}
	for round := range 3 {
		base := round * racers
		errs := create(base, t0.Add(time.Duration(round)*time.Minute), portalLimits)
		w := oneWinner(t, errs, errRefused, fmt.Sprintf("interval, round %d", round))
		if _, err := s.SignInLink(ctx(t), linkHash(base+w)); err != nil {
			t.Fatalf("interval, round %d: the winner's link: %v", round, err)
		}
	}
	noInterval := store.SignInLinkLimits{PerAccount: 3, Total: 1000}
	for round := range 3 {
		base := (3 + round) * racers
		for i, err := range create(base, t0.Add(time.Hour+time.Duration(round)*time.Minute), noInterval) {
			must(t, err, fmt.Sprintf("per account, round %d, racer %d", round, i))
		}
		if live := liveLinks(t, s, 6*racers); len(live) != noInterval.PerAccount {
			t.Fatalf("per account, round %d: %d links stored (%v), want %d", round, len(live), live, noInterval.PerAccount)
		}
	}
}
