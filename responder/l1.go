package responder

import (
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
)

// l1 is the bounded in-process cache in front of the response cache. It
// holds rendered responses (body and header values prepared once) so that
// a hit costs a map lookup under a read lock and nothing else: no
// allocation, no bookkeeping on the read path. Entries are keyed by the
// ocspcache key and are not returned at or after their refresh point.
//
// When a shard is full, an insert first drops dead entries it meets and
// then an arbitrary one (Go's randomised map iteration): random
// replacement keeps hits lock-free of writes and is close to LRU for the
// skewed popularity OCSP traffic has.
type l1 struct {
	seed     maphash.Seed
	shards   []l1shard
	perShard int
	size     atomic.Int64
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
	c := &l1{seed: maphash.MakeSeed(), shards: make([]l1shard, n), perShard: (capacity + n - 1) / n}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*rendered)
	}
	return c
}

func (c *l1) shard(key []byte) *l1shard {
	return &c.shards[maphash.Bytes(c.seed, key)&uint64(len(c.shards)-1)]
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

// put inserts r (replacing any entry under its key).
func (c *l1) put(r *rendered, now int64) {
	s := c.shard([]byte(r.key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[r.key]; !ok && len(s.m) >= c.perShard {
		evicted := false
		scanned := 0
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
		if !evicted {
			for k := range s.m {
				delete(s.m, k)
				c.size.Add(-1)
				break
			}
		}
	}
	if _, ok := s.m[r.key]; !ok {
		c.size.Add(1)
	}
	s.m[r.key] = r
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

func (c *l1) len() int { return int(c.size.Load()) }
