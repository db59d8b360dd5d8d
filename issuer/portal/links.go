package portal

import (
	"io"
	"sync"
	"time"
)

// Sign-in links: a random token mailed to the account's own address,
// good once and briefly. Only the token's hash is kept, in memory (a
// restart voids outstanding links, which costs a user one more request).
const (
	// linkInterval is how soon after one link another may be mailed to
	// the same account: it keeps the form from being used to flood an
	// inbox. Requests inside it are answered like any other.
	linkInterval = 30 * time.Second
	// linksPerAccount bounds outstanding links per account; a new one
	// replaces the oldest.
	linksPerAccount = 3
)

type loginLink struct {
	accountID string
	expires   time.Time
}

type linkTable struct {
	mu       sync.Mutex
	m        map[string]loginLink // token hash → link
	lastSent map[string]time.Time // account → when its newest link was made
	max      int
	ttl      time.Duration
}

func newLinkTable(max int, ttl time.Duration) *linkTable {
	return &linkTable{m: map[string]loginLink{}, lastSent: map[string]time.Time{}, max: max, ttl: ttl}
}

// issue makes a token for accountID, or returns "" when the account was
// sent one less than linkInterval ago.
func (t *linkTable) issue(accountID string, now time.Time, rnd io.Reader) (string, error) {
	tok, err := randomToken(rnd, 32)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.lastSent[accountID]; ok && now.Sub(last) < linkInterval {
		return "", nil
	}
	t.sweepLocked(now)
	var mine []string
	for k, l := range t.m {
		if l.accountID == accountID {
			mine = append(mine, k)
		}
	}
	for len(mine) >= linksPerAccount {
		oldest := 0
		for i, k := range mine {
			if t.m[k].expires.Before(t.m[mine[oldest]].expires) {
				oldest = i
			}
		}
		delete(t.m, mine[oldest])
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	if len(t.m) >= t.max {
		return "", nil // under a flood, answer as if rate-limited
	}
	t.m[tableKey(tok)] = loginLink{accountID: accountID, expires: now.Add(t.ttl)}
	t.lastSent[accountID] = now
	return tok, nil
}

func (t *linkTable) sweepLocked(now time.Time) {
	for k, l := range t.m {
		if !now.Before(l.expires) {
			delete(t.m, k)
		}
	}
	for a, at := range t.lastSent {
		if now.Sub(at) >= linkInterval {
			delete(t.lastSent, a)
		}
	}
}

// peek reports the account a live token signs in, without using it up.
func (t *linkTable) peek(tok string, now time.Time) (string, bool) {
	if tok == "" || len(tok) > 100 {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.m[tableKey(tok)]
	if !ok || !now.Before(l.expires) {
		return "", false
	}
	return l.accountID, true
}

// redeem uses a token up and returns its account.
func (t *linkTable) redeem(tok string, now time.Time) (string, bool) {
	if tok == "" || len(tok) > 100 {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tableKey(tok)
	l, ok := t.m[k]
	if !ok {
		return "", false
	}
	delete(t.m, k)
	if !now.Before(l.expires) {
		return "", false
	}
	return l.accountID, true
}
