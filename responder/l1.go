package responder

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/trustline/trustline/internal/ocspcache"
)

// l1Source is the chain's first tier: it answers from the L1 what it
// holds, asks next for the rest and keeps what next returns until its
// refresh point. It subscribes to the cache's evictions so that a
// replaced response (a revocation) leaves the L1 at once.
//
// When the eviction feed reports that it may have lost messages (its
// subscription dropped, e.g. Redis restarted), every entry held becomes
// unconfirmed rather than being dropped: an unconfirmed entry is looked
// up again below (so a revocation written meanwhile replaces it), and
// served as it is only when nothing below can answer. Dropping them all
// instead turned each reconnect into a burst of tryLater answers for the
// hottest certificates, the cache being empty and live signing bounded.
type l1Source struct {
	next  source
	c     *l1
	m     *metrics
	unsub func()
}

// newL1Source puts c (non-nil) in front of next, listening to ev until
// close.
func newL1Source(c *l1, ev Evictions, m *metrics, next source) *l1Source {
	s := &l1Source{next: next, c: c, m: m}
	s.unsub = ev.Subscribe(s.c.evict)
	return s
}

// close stops listening for evictions.
func (s *l1Source) close() { s.unsub() }

func (s *l1Source) Response(ctx context.Context, l lookup) (*rendered, error) {
	now := l.now.Unix()
	held, current := s.c.get(l.keyBytes(), now)
	if current {
		s.m.l1Hits.Inc()
		return held, nil
	}
	s.m.l1Misses.Inc()
	l.withKeyString()
	rd, err := s.next.Response(ctx, l)
	switch {
	case err == nil:
		if now < rd.refreshAt {
			s.c.put(rd, now)
		}
		return rd, nil
	case held == nil:
		return nil, err
	case errors.Is(err, ocspcache.ErrUnknown):
		s.c.drop(held.key)
		return nil, err
	}
	// An unconfirmed copy (held since before the eviction feed broke) and
	// no tier below can answer now (the cache lost or rebuilding, live
	// signing over its budget): the copy is what serving from the L1
	// during an outage would have given, unexpired; ask again next time.
	s.m.l1Unconfirmed.Inc()
	return held, nil
}

// l1 is the bounded in-process cache in front of the response cache. It
// holds rendered responses (body and header values prepared once) so that
// a hit costs a map lookup under a read lock and nothing else: no
// allocation, no bookkeeping on the read path. Entries are keyed by the
// ocspcache key and are not returned at or after their refresh point.
//
// When a shard is full, a response is admitted only if its key missed
// recently before (doorkeeper), and an insert first drops dead entries it
// meets and then an arbitrary one (Go's randomised map iteration): random
// replacement keeps hits lock-free of writes, and the admission filter
// keeps the long tail from evicting the popular responses.
type l1 struct {
	seed     maphash.Seed
	shards   []l1shard
	perShard int
	size     atomic.Int64
	door     *doorkeeper // nil: admit everything
	// gen is the generation entries are confirmed in; distrust moves it
	// on, leaving every entry held unconfirmed.
	gen atomic.Uint32
}

type l1shard struct {
	mu sync.RWMutex
	m  map[string]l1entry
	_  [40]byte // keep shards' locks on different cache lines
}

// l1entry is a response held and the generation it was confirmed in.
type l1entry struct {
	rd  *rendered
	gen uint32
}

// l1Shards is a power of two larger than any core count this runs on, so
// that readers rarely share a lock's cache line.
const l1Shards = 64

func newL1(capacity int) *l1 {
	if capacity <= 0 {
		return nil
	}
	n := l1Shards
	if capacity < n {
		n = 1
	}
	c := &l1{seed: maphash.MakeSeed(), shards: make([]l1shard, n), perShard: (capacity + n - 1) / n, door: newDoorkeeper(capacity)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]l1entry)
	}
	return c
}

func (c *l1) shard(key []byte) *l1shard {
	return &c.shards[maphash.Bytes(c.seed, key)&uint64(len(c.shards)-1)]
}

// hashShard returns key's hash and its shard.
func (c *l1) hashShard(key string) (uint64, *l1shard) {
	h := maphash.String(c.seed, key)
	return h, &c.shards[h&uint64(len(c.shards)-1)]
}

// get returns the live entry under key (nil if none) and whether it is
// confirmed. now is Unix seconds.
func (c *l1) get(key []byte, now int64) (*rendered, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[string(key)] // no allocation: the compiler looks up in place
	s.mu.RUnlock()
	if e.rd == nil || now >= e.rd.refreshAt {
		return nil, false
	}
	return e.rd, e.gen == c.gen.Load()
}

// put inserts r, confirmed (replacing any entry under its key). Into a
// full shard only a key the doorkeeper has seen miss before is admitted.
func (c *l1) put(r *rendered, now int64) {
	h, s := c.hashShard(r.key)
	e := l1entry{rd: r, gen: c.gen.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[r.key]; ok {
		s.m[r.key] = e
		return
	}
	if len(s.m) >= c.perShard {
		if c.door != nil && !c.door.admit(h) {
			return
		}
		c.makeRoom(s, now)
	}
	s.m[r.key] = e
	c.size.Add(1)
}

// makeRoom drops one entry or more from the full shard s (locked): the
// dead ones among the first few it meets, else an arbitrary one.
func (c *l1) makeRoom(s *l1shard, now int64) {
	scanned := 0
	evicted := false
	for k, old := range s.m {
		if now >= old.rd.refreshAt {
			delete(s.m, k)
			c.size.Add(-1)
			evicted = true
		}
		if scanned++; scanned >= 8 {
			break
		}
	}
	if evicted {
		return
	}
	for k := range s.m {
		delete(s.m, k)
		c.size.Add(-1)
		return
	}
}

// evict drops what e names; an Eviction without a prefix (messages may
// have been lost) leaves every entry held unconfirmed.
func (c *l1) evict(e ocspcache.Eviction) {
	if e.Prefix == "" {
		c.distrust()
		return
	}
	c.evictPrefix(e.Prefix)
}

// distrust makes every entry held unconfirmed, in O(1).
func (c *l1) distrust() { c.gen.Add(1) }

// drop removes the entry under key.
func (c *l1) drop(key string) {
	_, s := c.hashShard(key)
	s.mu.Lock()
	if _, ok := s.m[key]; ok {
		delete(s.m, key)
		c.size.Add(-1)
	}
	s.mu.Unlock()
}

// evictPrefix drops the entries of one certificate: prefix followed by
// each hash algorithm's number (ocspcache.Key).
func (c *l1) evictPrefix(prefix string) {
	for h := 1; h <= 4; h++ {
		c.drop(prefix + strconv.Itoa(h))
	}
}

// len is the number of entries; 0 for a nil (disabled) L1.
func (c *l1) len() int {
	if c == nil {
		return 0
	}
	return int(c.size.Load())
}
