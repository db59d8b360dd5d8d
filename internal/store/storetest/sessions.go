package storetest

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// tokenHash is the key of test session i.
func tokenHash(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprintf("session-token-%d", i)))
	return h[:]
}

// portalSession is session i of an account, signed in at `at`: 8 h
// lifetime, 30 min idle timeout.
func portalSession(i int, accountID string, at time.Time) store.PortalSession {
	return store.PortalSession{
		TokenHash:     tokenHash(i),
		AccountID:     accountID,
		CreatedAt:     us(at),
		LastUsed:      us(at),
		ExpiresAt:     us(at.Add(8 * time.Hour)),
		IdleExpiresAt: us(at.Add(30 * time.Minute)),
	}
}

func readSession(t *testing.T, s store.Store, i int) store.PortalSession {
	t.Helper()
	ps, err := s.PortalSession(ctx(t), tokenHash(i))
	must(t, err, fmt.Sprintf("reading session %d", i))
	return ps
}

// liveSessions lists which of sessions 0..n-1 exist.
func liveSessions(t *testing.T, s store.Store, n int) []int {
	t.Helper()
	var out []int
	for i := range n {
		_, err := s.PortalSession(ctx(t), tokenHash(i))
		if err == nil {
			out = append(out, i)
			continue
		}
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("reading session %d", i))
	}
	return out
}

func testPortalSessions(t *testing.T, s store.Store) {
	_, err := s.PortalSession(ctx(t), tokenHash(1))
	wantErr(t, err, store.ErrNotFound, "reading a session never created")
	wantErr(t, s.CreatePortalSession(ctx(t), portalSession(1, "acct-none", t0), 20), store.ErrNotFound,
		"creating a session for an unknown account")
	a := seedAccount(t, s, 1)

	want := portalSession(1, a.ID, t0)
	must(t, s.CreatePortalSession(ctx(t), want, 20), "creating")
	if d := diff(want, readSession(t, s, 1)); d != "" {
		t.Errorf("PortalSession (-want +got):\n%s", d)
	}
	wantErr(t, s.CreatePortalSession(ctx(t), want, 20), store.ErrDuplicate, "creating it again")
	if err := s.CreatePortalSession(ctx(t), portalSession(9, a.ID, t0), 0); err == nil {
		t.Error("CreatePortalSession with maxPerAccount 0 succeeded")
	}

	for _, notice := range []string{"Approved (1 of 2).", ""} {
		must(t, s.SetPortalSessionNotice(ctx(t), tokenHash(1), notice), "setting the notice")
		if got := readSession(t, s, 1).Notice; got != notice {
			t.Errorf("Notice = %q, want %q", got, notice)
		}
	}
	wantErr(t, s.SetPortalSessionNotice(ctx(t), tokenHash(2), "x"), store.ErrNotFound, "setting the notice of no session")

	// The idle expiry is capped at the absolute one.
	long := portalSession(2, a.ID, t0)
	long.IdleExpiresAt = long.ExpiresAt.Add(time.Hour)
	must(t, s.CreatePortalSession(ctx(t), long, 20), "creating with an idle expiry past the end")
	if got := readSession(t, s, 2); !got.IdleExpiresAt.Equal(long.ExpiresAt) {
		t.Errorf("IdleExpiresAt = %v, want it capped at ExpiresAt %v", got.IdleExpiresAt, long.ExpiresAt)
	}

	must(t, s.DeletePortalSession(ctx(t), tokenHash(1)), "deleting")
	_, err = s.PortalSession(ctx(t), tokenHash(1))
	wantErr(t, err, store.ErrNotFound, "reading a deleted session")
	must(t, s.DeletePortalSession(ctx(t), tokenHash(1)), "deleting it again")
	wantErr(t, s.TouchPortalSession(ctx(t), tokenHash(1), t0, t0.Add(time.Hour)), store.ErrNotFound, "touching a deleted session")
	if got := liveSessions(t, s, 3); len(got) != 1 || got[0] != 2 {
		t.Errorf("live sessions %v, want [2]", got)
	}
}

func testPortalSessionTouch(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	must(t, s.CreatePortalSession(ctx(t), portalSession(1, a.ID, t0), 20), "creating")
	must(t, s.SetPortalSessionNotice(ctx(t), tokenHash(1), "kept"), "setting the notice")
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Steps run in order against one session (created at t0, ends at
	// t0+8h).
	for _, tc := range []struct {
		name           string
		used, idle     time.Duration // passed
		wantUsed, want time.Duration // stored LastUsed and IdleExpiresAt
	}{
		{"used", 10 * time.Minute, 40 * time.Minute, 10 * time.Minute, 40 * time.Minute},
		{"older touch changes nothing", 5 * time.Minute, 35 * time.Minute, 10 * time.Minute, 40 * time.Minute},
		{"used again", time.Hour, 90 * time.Minute, time.Hour, 90 * time.Minute},
		{"capped at the end", 7*time.Hour + 50*time.Minute, 8*time.Hour + 20*time.Minute, 7*time.Hour + 50*time.Minute, 8 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, s.TouchPortalSession(ctx(t), tokenHash(1), at(tc.used), at(tc.idle)), "touching")
			got := readSession(t, s, 1)
			if !got.LastUsed.Equal(us(at(tc.wantUsed))) || !got.IdleExpiresAt.Equal(us(at(tc.want))) {
				t.Errorf("LastUsed, IdleExpiresAt = %v, %v; want %v, %v", got.LastUsed, got.IdleExpiresAt, us(at(tc.wantUsed)), us(at(tc.want)))
			}
			if got.Notice != "kept" || !got.CreatedAt.Equal(us(t0)) || !got.ExpiresAt.Equal(us(at(8*time.Hour))) {
				t.Errorf("touch changed other fields: %+v", got)
			}
		})
	}
}

// testPortalSessionsPerAccount: a sign-in ends the account's least
// recently used sessions beyond the limit, never the new one, and never
// another account's.
func testPortalSessionsPerAccount(t *testing.T, s store.Store) {
	a, b := seedAccount(t, s, 1), seedAccount(t, s, 2)
	must(t, s.CreatePortalSession(ctx(t), portalSession(100, b.ID, t0), 3), "creating b's session")
	minute := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for i := range 5 {
		must(t, s.CreatePortalSession(ctx(t), portalSession(i, a.ID, minute(i)), 3), fmt.Sprintf("creating a's session %d", i))
	}
	if d := diff([]int{2, 3, 4}, liveSessions(t, s, 10)); d != "" {
		t.Errorf("after 5 sign-ins with a limit of 3 (-want +got):\n%s", d)
	}
	// Recent use counts, not sign-in order.
	must(t, s.TouchPortalSession(ctx(t), tokenHash(2), minute(10), minute(40)), "touching session 2")
	must(t, s.CreatePortalSession(ctx(t), portalSession(5, a.ID, minute(5)), 3), "creating session 5")
	if d := diff([]int{2, 4, 5}, liveSessions(t, s, 10)); d != "" {
		t.Errorf("after using session 2 and signing in again (-want +got):\n%s", d)
	}
	// The new session stays even if another instance's clock makes it
	// look the least recently used.
	must(t, s.CreatePortalSession(ctx(t), portalSession(6, a.ID, t0), 2), "creating session 6 with a slow clock")
	if d := diff([]int{2, 6}, liveSessions(t, s, 10)); d != "" {
		t.Errorf("after a sign-in with a slow clock and a limit of 2 (-want +got):\n%s", d)
	}
	if _, err := s.PortalSession(ctx(t), tokenHash(100)); err != nil {
		t.Errorf("another account's session was ended: %v", err)
	}
}

func testDeleteExpiredPortalSessions(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	idle := portalSession(1, a.ID, t0) // idle at t0+30m
	busy := portalSession(2, a.ID, t0)
	busy.IdleExpiresAt = us(t0.Add(time.Hour))
	old := portalSession(3, a.ID, t0.Add(-8*time.Hour+20*time.Minute)) // ends at t0+20m
	old.IdleExpiresAt = us(t0.Add(time.Hour))                          // capped at its end
	for _, ps := range []store.PortalSession{idle, busy, old} {
		must(t, s.CreatePortalSession(ctx(t), ps, 20), "creating")
	}
	for _, tc := range []struct {
		now  time.Duration
		n    int64
		live []int
	}{
		{19 * time.Minute, 0, []int{1, 2, 3}},
		{20 * time.Minute, 1, []int{1, 2}}, // expired at exactly its end
		{30 * time.Minute, 1, []int{2}},
		{59 * time.Minute, 0, []int{2}},
	} {
		n, err := s.DeleteExpiredPortalSessions(ctx(t), t0.Add(tc.now))
		must(t, err, "deleting expired sessions")
		live := liveSessions(t, s, 4)
		if n != tc.n || diff(tc.live, live) != "" {
			t.Errorf("at t0+%v: deleted %d, live %v; want %d, %v", tc.now, n, live, tc.n, tc.live)
		}
		for _, i := range live {
			if readSession(t, s, i).Expired(t0.Add(tc.now)) {
				t.Errorf("at t0+%v: session %d is left but Expired", tc.now, i)
			}
		}
	}
}
