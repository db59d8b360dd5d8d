package responder

import "sync/atomic"

// doorkeeper is the L1's admission filter: once a shard is full, a
// response is admitted only when its key missed before, recently. Keys
// asked for once (most of a long tail) then never evict a resident, so
// the popular responses stay: on a Zipf (s = 1) trace over ten times the
// L1's size it raises the hit ratio (BenchmarkL1HitRatio), and under
// uniform traffic over a large set it halves the inserts and evictions a
// miss costs. The hit path does not touch it.
//
// It is the doorkeeper of TinyLFU (Einziger, Friedman, Manes, 2017)
// alone: a Bloom filter of recent misses (two bits per key, from the
// key's hash), cleared after as many marks as it has room for, so that
// "recently" means the last few L1-sizes of misses. A full TinyLFU also
// counts hits, which would put a shared write on every hit.
type doorkeeper struct {
	bits  []atomic.Uint64
	mask  uint64 // bit index mask: len(bits)*64 - 1
	marks atomic.Int64
	limit int64 // marks before a clear
}

// newDoorkeeper sizes the filter for an L1 of capacity entries: 8 bits
// per entry (a few percent false positives over a window of capacity
// marks), rounded up to a power of two.
func newDoorkeeper(capacity int) *doorkeeper {
	n := uint64(64)
	for n < uint64(capacity)*8 {
		n <<= 1
	}
	return &doorkeeper{bits: make([]atomic.Uint64, n/64), mask: n - 1, limit: int64(capacity)}
}

// admit reports whether h was seen since the last clear, and marks it.
func (d *doorkeeper) admit(h uint64) bool {
	i, j := h&d.mask, (h>>32|h<<32)&d.mask
	seen := d.test(i) && d.test(j)
	if seen {
		return true
	}
	d.set(i)
	d.set(j)
	if d.marks.Add(1) >= d.limit {
		d.clear()
	}
	return false
}

func (d *doorkeeper) test(i uint64) bool { return d.bits[i/64].Load()&(1<<(i%64)) != 0 }
func (d *doorkeeper) set(i uint64)       { d.bits[i/64].Or(1 << (i % 64)) }

// clear forgets every mark. Marks set concurrently may be lost: that only
// delays one admission.
func (d *doorkeeper) clear() {
	d.marks.Store(0)
	for i := range d.bits {
		d.bits[i].Store(0)
	}
}
