package portal

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"
)

// session is one signed-in browser. The cookie holds only a random id; the
// table is keyed by the id's SHA-256, so the keys in memory are not the
// cookies themselves.
type session struct {
	accountID string
	csrf      string // per-session form token
	created   time.Time
	seen      time.Time
	notice    string // shown once on the next page
}

// sessionState says why a cookie did or did not resolve to a session.
type sessionState int

const (
	sessionNone    sessionState = iota // no cookie, or an unknown id
	sessionExpired                     // known id, past its lifetime or idle limit
	sessionOK
)

// sessionTable is the in-memory session store. It is bounded: when full,
// expired sessions are swept and then the least recently used is evicted.
// Only signed-in users create sessions (anonymous forms are stateless), so
// filling it takes valid credentials.
type sessionTable struct {
	mu       sync.Mutex
	m        map[string]*session
	max      int
	lifetime time.Duration
	idle     time.Duration
}

func newSessionTable(max int, lifetime, idle time.Duration) *sessionTable {
	return &sessionTable{m: map[string]*session{}, max: max, lifetime: lifetime, idle: idle}
}

func tableKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return string(sum[:])
}

// randomToken returns n random octets in unpadded base64url.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("portal: reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session for accountID and returns its cookie value.
func (t *sessionTable) create(accountID string, now time.Time, rnd io.Reader) (string, error) {
	id, err := randomToken(rnd, 32)
	if err != nil {
		return "", err
	}
	csrf, err := randomToken(rnd, 32)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		t.sweepLocked(now)
	}
	if len(t.m) >= t.max {
		t.evictLocked()
	}
	t.m[tableKey(id)] = &session{accountID: accountID, csrf: csrf, created: now, seen: now}
	return id, nil
}

func (t *sessionTable) expired(s *session, now time.Time) bool {
	return !now.Before(s.created.Add(t.lifetime)) || !now.Before(s.seen.Add(t.idle))
}

func (t *sessionTable) sweepLocked(now time.Time) {
	for k, s := range t.m {
		if t.expired(s, now) {
			delete(t.m, k)
		}
	}
}

func (t *sessionTable) evictLocked() {
	var oldest string
	var at time.Time
	for k, s := range t.m {
		if oldest == "" || s.seen.Before(at) {
			oldest, at = k, s.seen
		}
	}
	delete(t.m, oldest)
}

// touch resolves a cookie value, marks the session used and returns a copy
// of it. An expired session is deleted.
func (t *sessionTable) touch(id string, now time.Time) (session, sessionState) {
	if id == "" || len(id) > 100 {
		return session{}, sessionNone
	}
	k := tableKey(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[k]
	if !ok {
		return session{}, sessionNone
	}
	if t.expired(s, now) {
		delete(t.m, k)
		return session{}, sessionExpired
	}
	s.seen = now
	return *s, sessionOK
}

// takeNotice returns and clears the session's one-shot notice.
func (t *sessionTable) takeNotice(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[tableKey(id)]
	if !ok {
		return ""
	}
	n := s.notice
	s.notice = ""
	return n
}

// setNotice leaves a message for the next page the session sees.
func (t *sessionTable) setNotice(id, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[tableKey(id)]; ok {
		s.notice = msg
	}
}

func (t *sessionTable) delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, tableKey(id))
}

func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
