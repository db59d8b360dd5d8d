package ocspcache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// MemoryConfig configures a Memory cache.
type MemoryConfig struct {
	// Now is the clock entries expire by; nil means time.Now.
	Now func() time.Time
	// MaxBytes bounds the memory the entries take (Bytes: their stored
	// form, keys and bookkeeping, within a few percent of the heap they
	// hold). A write that would pass it first drops expired entries, then
	// arbitrary live ones; from the first live entry dropped, Dropped
	// reports true. 0 means no bound.
	MaxBytes int64
}

// Validate checks cfg.
func (cfg MemoryConfig) Validate() error {
	if cfg.MaxBytes < 0 || cfg.MaxBytes > 0 && cfg.MaxBytes < memShards<<16 {
		return fmt.Errorf("ocspcache: memory: MaxBytes %d must be 0 (no bound) or at least %d", cfg.MaxBytes, memShards<<16)
	}
	return nil
}

const memShards = 64

// Memory is the in-process cache of `trustline dev`: sharded maps under
// read-write locks. Like Redis it keeps each response without its certs
// (codec.go), which it holds once, so a million certificates with two
// hash algorithms take about 0.8 GB instead of 2; MaxBytes bounds it.
//
// A bounded cache that has dropped a live entry can no longer prove a
// certificate unknown by its absence, whatever its State says (the
// pre-signer's rebuild did complete): Dropped tells readers so, and the
// responder then asks its live signer, which reads the store. Which entry
// to drop is arbitrary (Go's randomised map iteration): the responder's L1
// in front keeps the hot ones, so the cache's own choice matters little,
// and random replacement needs no bookkeeping on reads.
type Memory struct {
	now      func() time.Time
	seed     maphash.Seed
	shards   [memShards]memShard
	perShard int64         // MaxBytes / memShards; 0: no bound
	puts     atomic.Uint64 // drives the incremental sweep of expired entries
	sweep    atomic.Uint32 // next shard to sweep
	dropped  atomic.Bool

	certsMu sync.RWMutex
	certs   map[certsID][]byte

	stateMu sync.Mutex
	state   State

	subs subscribers
}

type memShard struct {
	mu    sync.RWMutex
	m     map[string]memEntry
	bytes int64
}

// memEntry is a stored response: the decoded header and the body of a
// split response (or a whole one that does not split).
type memEntry struct {
	status              status.Status
	split               bool
	certs               certsID // zero: none
	this, next, refresh int64   // Unix seconds
	body                string
}

// memOverhead estimates what an entry costs besides its key and body: its
// map slot (key and value headers, at the map's load factor and growth),
// and the allocations' rounding. TestMemoryBounded checks it against the
// heap.
const memOverhead = 256

func (e *memEntry) size(key string) int64 { return int64(len(key) + len(e.body) + memOverhead) }

// NewMemory returns an empty Memory cache.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Memory{now: cfg.Now, seed: maphash.MakeSeed(), perShard: cfg.MaxBytes / memShards, certs: map[certsID][]byte{}}
	for i := range m.shards {
		m.shards[i].m = map[string]memEntry{}
	}
	return m, nil
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memShards]
}

// Get implements Cache. Each Entry's DER is a fresh copy.
func (m *Memory) Get(_ context.Context, keys []string, out []Entry) error {
	if len(out) != len(keys) {
		return errors.New("ocspcache: Get: len(out) != len(keys)")
	}
	now := m.now().Unix()
	for i, k := range keys {
		s := m.shard(k)
		s.mu.RLock()
		e, ok := s.m[k]
		s.mu.RUnlock()
		if ok && now < e.next {
			out[i] = m.entry(&e)
		} else {
			out[i] = Entry{}
		}
	}
	return nil
}

func (m *Memory) entry(e *memEntry) Entry {
	sv := storedValue{Entry: Entry{Status: e.status, ThisUpdate: time.Unix(e.this, 0).UTC(),
		NextUpdate: time.Unix(e.next, 0).UTC(), RefreshAt: time.Unix(e.refresh, 0).UTC()},
		body: e.body, split: e.split, hasCerts: e.certs != certsID{}, certs: e.certs}
	var certs []byte
	if sv.hasCerts {
		m.certsMu.RLock()
		certs = m.certs[e.certs]
		m.certsMu.RUnlock()
	}
	return sv.entry(certs)
}

// sweepEvery is how many writes trigger the sweep of one shard: at that
// rate every shard is swept once per 64×4096 writes, which bounds the
// memory held by dead entries without a goroutine.
const sweepEvery = 4096

// Put implements Cache.
func (m *Memory) Put(_ context.Context, items []Item) error {
	now := m.now()
	for i := range items {
		it := &items[i]
		if it.DER == nil || !now.Before(it.NextUpdate) {
			continue
		}
		e := m.stored(&it.Entry)
		s := m.shard(it.Key)
		s.mu.Lock()
		cur, ok := s.m[it.Key]
		if !ok || now.Unix() >= cur.next || mayReplace(cur.status, e.status) {
			if ok {
				s.bytes -= cur.size(it.Key)
			}
			s.m[it.Key] = e
			s.bytes += e.size(it.Key)
			if m.perShard > 0 && s.bytes > m.perShard {
				m.shrink(s, it.Key, now.Unix())
			}
		}
		s.mu.Unlock()
	}
	if n := m.puts.Add(uint64(len(items))); n/sweepEvery != (n-uint64(len(items)))/sweepEvery {
		m.sweepShard(now)
	}
	for _, p := range evictionsOf(items) {
		m.subs.notify(Eviction{Prefix: p})
	}
	return nil
}

// stored returns the stored form of e, remembering its certs.
func (m *Memory) stored(e *Entry) memEntry {
	st := memEntry{status: e.Status, this: e.ThisUpdate.Unix(), next: e.NextUpdate.Unix(), refresh: e.RefreshAt.Unix()}
	body, certs, split := ocspcodec.SplitCerts(e.DER)
	if !split {
		st.body = string(e.DER)
		return st
	}
	st.split, st.body = true, string(body)
	if certs != nil {
		st.certs = idOf(certs)
		m.certsMu.RLock()
		_, known := m.certs[st.certs]
		m.certsMu.RUnlock()
		if !known {
			m.certsMu.Lock()
			m.certs[st.certs] = slices.Clone(certs)
			m.certsMu.Unlock()
		}
	}
	return st
}

// shrink drops entries of s (locked) other than keep until s is within its
// bound to an eighth below it, so that the next writes do not each pay
// for a scan: expired entries first, then live ones.
func (m *Memory) shrink(s *memShard, keep string, now int64) {
	target := m.perShard - m.perShard/8
	for k, e := range s.m {
		if now >= e.next && k != keep {
			s.bytes -= e.size(k)
			delete(s.m, k)
		}
	}
	for k, e := range s.m {
		if s.bytes <= target {
			return
		}
		if k != keep {
			s.bytes -= e.size(k)
			delete(s.m, k)
			m.dropped.Store(true)
		}
	}
}

// sweepShard deletes the dead entries of the next shard in turn.
func (m *Memory) sweepShard(now time.Time) {
	s := &m.shards[m.sweep.Add(1)%memShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if now.Unix() >= e.next {
			s.bytes -= e.size(k)
			delete(s.m, k)
		}
	}
}

// Len returns how many entries are held, dead ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Bytes returns the memory the entries take, as MaxBytes counts it.
func (m *Memory) Bytes() int64 {
	var n int64
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += s.bytes
		s.mu.RUnlock()
	}
	return n
}

// Dropped reports whether the cache has dropped a live entry to keep
// within MaxBytes, so that a miss does not prove a certificate unknown.
func (m *Memory) Dropped() bool { return m.dropped.Load() }

// State implements Cache.
func (m *Memory) State(context.Context) (State, error) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	return m.state, nil
}

// SwapState implements Cache.
func (m *Memory) SwapState(_ context.Context, old, next State) error {
	if err := validState(next); err != nil {
		return err
	}
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	if m.state != old {
		return ErrStateChanged
	}
	m.state = next
	return nil
}

// Subscribe implements Cache. Evictions are delivered synchronously from
// Put.
func (m *Memory) Subscribe(fn func(Eviction)) (cancel func()) { return m.subs.add(fn) }

// subscribers is a set of eviction callbacks.
type subscribers struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(Eviction)
}

func (s *subscribers) add(fn func(Eviction)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = map[int]func(Eviction){}
	}
	id := s.next
	s.next++
	s.fns[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.fns, id)
	}
}

func (s *subscribers) notify(e Eviction) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, fn := range s.fns {
		fn(e)
	}
}
