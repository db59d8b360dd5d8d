package ocspcache

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures a Memory cache.
type MemoryConfig struct {
	// Now is the clock entries expire by; nil means time.Now.
	Now func() time.Time
}

// Validate checks cfg; there is nothing to get wrong yet.
func (cfg MemoryConfig) Validate() error { return nil }

const memShards = 64

// Memory is the in-process cache of `trustline dev`: sharded maps under
// read-write locks. It holds every unexpired response in memory (a million
// certificates with two hash algorithms take about 1 GB), so it suits one
// process on a modest store; production uses Redis.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
	puts   atomic.Uint64 // drives the incremental sweep of expired entries
	sweep  atomic.Uint32 // next shard to sweep

	stateMu sync.Mutex
	state   State

	subs subscribers
}

type memShard struct {
	mu sync.RWMutex
	m  map[string]Entry
}

// NewMemory returns an empty Memory cache.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Memory{now: cfg.Now, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = map[string]Entry{}
	}
	return m, nil
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memShards]
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, keys []string, out []Entry) error {
	if len(out) != len(keys) {
		return errors.New("ocspcache: Get: len(out) != len(keys)")
	}
	now := m.now()
	for i, k := range keys {
		s := m.shard(k)
		s.mu.RLock()
		e, ok := s.m[k]
		s.mu.RUnlock()
		if ok && now.Before(e.NextUpdate) {
			out[i] = e
		} else {
			out[i] = Entry{}
		}
	}
	return nil
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
		s := m.shard(it.Key)
		s.mu.Lock()
		if cur, ok := s.m[it.Key]; !ok || !now.Before(cur.NextUpdate) || mayReplace(cur.Status, it.Status) {
			s.m[it.Key] = it.Entry
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

// sweepShard deletes the dead entries of the next shard in turn.
func (m *Memory) sweepShard(now time.Time) {
	s := &m.shards[m.sweep.Add(1)%memShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if !now.Before(e.NextUpdate) {
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

// State implements Cache.
func (m *Memory) State(context.Context) (State, error) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	return m.state, nil
}

// SwapState implements Cache.
func (m *Memory) SwapState(_ context.Context, old, next State) error {
	if next.Epoch == "" {
		return errors.New("ocspcache: SwapState: next State has no Epoch")
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
