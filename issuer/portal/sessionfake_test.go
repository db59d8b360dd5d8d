package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
)

// fakeSessions is a SessionStore and a LinkStore in memory, following the
// contract of store.Store's portal-session and sign-in-link methods (which
// the conformance suite checks against the real adapters), except that it
// knows no accounts: every account exists. It counts touches.
type fakeSessions struct {
	mu      sync.Mutex
	m       map[string]store.PortalSession
	links   map[string]store.SignInLink
	touches int
}

func newFakeSessions() *fakeSessions {
	return &fakeSessions{m: map[string]store.PortalSession{}, links: map[string]store.SignInLink{}}
}

func (f *fakeSessions) CreatePortalSession(_ context.Context, s store.PortalSession, maxPerAccount int) error {
	if maxPerAccount < 1 {
		return fmt.Errorf("fake: maxPerAccount %d", maxPerAccount)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[string(s.TokenHash)]; ok {
		return fmt.Errorf("fake: %w", store.ErrDuplicate)
	}
	if s.ExpiresAt.Before(s.IdleExpiresAt) {
		s.IdleExpiresAt = s.ExpiresAt
	}
	var others []store.PortalSession
	for _, o := range f.m {
		if o.AccountID == s.AccountID {
			others = append(others, o)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		a, b := others[i], others[j]
		if !a.LastUsed.Equal(b.LastUsed) {
			return a.LastUsed.After(b.LastUsed)
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return bytes.Compare(a.TokenHash, b.TokenHash) < 0
	})
	for _, o := range others[min(len(others), maxPerAccount-1):] {
		delete(f.m, string(o.TokenHash))
	}
	f.m[string(s.TokenHash)] = s
	return nil
}

// find and sweep are the map work that sessions and links share; the
// caller holds f.mu.
func find[V any](m map[string]V, h []byte) (V, error) {
	v, ok := m[string(h)]
	if !ok {
		return v, fmt.Errorf("fake: %w", store.ErrNotFound)
	}
	return v, nil
}

func sweep[V interface{ Expired(time.Time) bool }](m map[string]V, now time.Time) int64 {
	var n int64
	for k, v := range m {
		if v.Expired(now) {
			delete(m, k)
			n++
		}
	}
	return n
}

func (f *fakeSessions) PortalSession(_ context.Context, h []byte) (store.PortalSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return find(f.m, h)
}

func (f *fakeSessions) TouchPortalSession(_ context.Context, h []byte, at, idle time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := find(f.m, h)
	if err != nil {
		return err
	}
	f.touches++
	if at.After(s.LastUsed) {
		s.LastUsed = at
	}
	if idle.After(s.IdleExpiresAt) {
		s.IdleExpiresAt = idle
	}
	if s.ExpiresAt.Before(s.IdleExpiresAt) {
		s.IdleExpiresAt = s.ExpiresAt
	}
	f.m[string(h)] = s
	return nil
}

func (f *fakeSessions) SetPortalSessionNotice(_ context.Context, h []byte, notice string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := find(f.m, h)
	if err != nil {
		return err
	}
	s.Notice = notice
	f.m[string(h)] = s
	return nil
}

func (f *fakeSessions) DeletePortalSession(_ context.Context, h []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, string(h))
	return nil
}

func (f *fakeSessions) DeleteExpiredPortalSessions(_ context.Context, now time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sweep(f.m, now), nil
}

func (f *fakeSessions) CreateSignInLink(_ context.Context, l store.SignInLink, lim store.SignInLinkLimits) (bool, error) {
	if err := lim.Validate(); err != nil {
		return false, fmt.Errorf("fake: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var mine []store.SignInLink
	live := 0
	for _, o := range f.links {
		if o.AccountID == l.AccountID {
			if l.CreatedAt.Sub(o.CreatedAt) < lim.Interval {
				return false, nil
			}
			mine = append(mine, o)
		}
		if o.ExpiresAt.After(l.CreatedAt) {
			live++
		}
	}
	if live >= lim.Total {
		return false, nil
	}
	if _, ok := f.links[string(l.TokenHash)]; ok {
		return false, fmt.Errorf("fake: %w", store.ErrDuplicate)
	}
	sort.Slice(mine, func(i, j int) bool {
		a, b := mine[i], mine[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return bytes.Compare(a.TokenHash, b.TokenHash) < 0
	})
	for _, o := range mine[min(len(mine), lim.PerAccount-1):] {
		delete(f.links, string(o.TokenHash))
	}
	f.links[string(l.TokenHash)] = l
	return true, nil
}

func (f *fakeSessions) SignInLink(_ context.Context, h []byte) (store.SignInLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return find(f.links, h)
}

func (f *fakeSessions) ConsumeSignInLink(_ context.Context, h []byte) (store.SignInLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := find(f.links, h)
	if err == nil {
		delete(f.links, string(h))
	}
	return l, err
}

func (f *fakeSessions) DeleteExpiredSignInLinks(_ context.Context, now time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sweep(f.links, now), nil
}

// The tests in portal_test.go and fuzz_test.go were written for the
// in-memory session table that sessionTable replaced; the functions below
// give them the calls they make. Drop them when those tests move to
// start, lookup and end.

// newSessionTable is a table over a fresh fakeSessions allowing perAccount
// sessions per account.
func newSessionTable(perAccount int, lifetime, idle time.Duration) *sessionTable {
	return newSessions(newFakeSessions(),
		Config{SessionLifetime: lifetime, SessionIdle: idle, SessionsPerAccount: perAccount},
		rand.Reader, slog.New(slog.DiscardHandler))
}

func (t *sessionTable) create(accountID string, now time.Time, rnd io.Reader) (string, error) {
	t.rnd = rnd
	tok, _, err := t.start(context.Background(), accountID, now)
	return tok, err
}

func (t *sessionTable) touch(tok string, now time.Time) (session, sessionState) {
	s, state, err := t.lookup(context.Background(), tok, now)
	if err != nil {
		panic(err)
	}
	return s, state
}

// len counts the sessions in the table's store, live or not yet swept.
func (t *sessionTable) len() int {
	switch st := t.st.(type) {
	case *fakeSessions:
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.m)
	case *sqlite.Store:
		db, err := sql.Open("sqlite", st.Path()+"?_pragma=query_only(1)")
		if err != nil {
			panic(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM portal_sessions`).Scan(&n); err != nil {
			panic(err)
		}
		return n
	}
	panic(fmt.Sprintf("sessionTable.len: cannot count sessions in a %T", t.st))
}
