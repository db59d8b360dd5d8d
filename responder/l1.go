package responder

import (
	"context"
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
	if rd := s.c.get(l.keyBytes(), now); rd != nil {
		s.m.l1Hits.Inc()
		return rd, nil
	}
	s.m.l1Misses.Inc()
	l.withKeyString()
	rd, err := s.next.Response(ctx, l)
	if err == nil && now < rd.refreshAt {
		s.c.put(rd, now)
	}
	return rd, err
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
}

type l1shard struct {
	mu sync.RWMutex
	m  map[string]*rendered
	_  [40]byte // keep shards' locks on different cache lines
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
		c.shards[i].m = make(map[string]*rendered)
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

// get returns the live entry under key, nil if none. now is Unix seconds.
func (c *l1) get(key []byte, now int64) *rendered {
	s := c.shard(key)
	s.mu.RLock()
	r := s.m[string(key)] // no allocation: the compiler looks up in place
	s.mu.RUnlock()
	if r == nil || now >= r.refreshAt {
		return nil
	}
	return r
}

// put inserts r (replacing any entry under its key). Into a full shard
// only a key the doorkeeper has seen miss before is admitted.
func (c *l1) put(r *rendered, now int64) {
	h, s := c.hashShard(r.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[r.key]; ok {
		s.m[r.key] = r
		return
	}
	if len(s.m) >= c.perShard {
		if c.door != nil && !c.door.admit(h) {
			return
		}
		c.makeRoom(s, now)
	}
	s.m[r.key] = r
	c.size.Add(1)
}

// makeRoom drops one entry or more from the full shard s (locked): the
// dead ones among the first few it meets, else an arbitrary one.
func (c *l1) makeRoom(s *l1shard, now int64) {
	scanned := 0
	evicted := false
	for k, old := range s.m {
		if now >= old.refreshAt {
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

// evict drops what e names.
func (c *l1) evict(e ocspcache.Eviction) {
	if e.Prefix == "" {
		c.clear()
		return
	}
	c.evictPrefix(e.Prefix)
}

// evictPrefix drops the entries of one certificate: prefix followed by
// each hash algorithm's number (ocspcache.Key).
func (c *l1) evictPrefix(prefix string) {
	for h := 1; h <= 4; h++ {
		k := prefix + strconv.Itoa(h)
		s := c.shard([]byte(k))
		s.mu.Lock()
		if _, ok := s.m[k]; ok {
			delete(s.m, k)
			c.size.Add(-1)
		}
		s.mu.Unlock()
	}
}

// clear drops everything.
func (c *l1) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.size.Add(-int64(len(s.m)))
		clear(s.m)
		s.mu.Unlock()
	}
}

// len is the number of entries; 0 for a nil (disabled) L1.
func (c *l1) len() int {
	if c == nil {
		return 0
	}
	return int(c.size.Load())
}
