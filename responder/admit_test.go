package responder

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestL1AdmissionWhenFull: a shard with room admits a first miss; a full
// one admits a key only on its second miss, and then evicts for it.
func TestL1AdmissionWhenFull(t *testing.T) {
	c := newL1(8) // one shard of 8
	for i := range 8 {
		c.put(&rendered{key: "k" + strconv.Itoa(i), refreshAt: 100}, 0)
	}
	if c.len() != 8 {
		t.Fatalf("%d entries after 8 first misses into an empty L1, want 8", c.len())
	}
	x := &rendered{key: "x", refreshAt: 100}
	c.put(x, 0)
	if rd, _ := c.get([]byte("x"), 0); rd != nil {
		t.Fatal("a full L1 admitted a key on its first miss")
	}
	c.put(x, 0)
	if rd, _ := c.get([]byte("x"), 0); rd != x || c.len() != 8 {
		t.Fatalf("second miss: entry %v, %d entries; want it admitted in place of another", rd, c.len())
	}
}

// TestDoorkeeperForgets: the filter clears after as many marks as the L1
// has entries, so admission reflects recent misses only.
func TestDoorkeeperForgets(t *testing.T) {
	d := newDoorkeeper(100)
	if d.admit(42) || !d.admit(42) {
		t.Fatal("want: not admitted on the first sighting, admitted on the second")
	}
	for i := range uint64(100) {
		d.admit(1e6 + i*7919)
	}
	if d.admit(42) {
		t.Error("42 still remembered after a full window of other marks")
	}
}

// hitRatio replays a trace of n requests over keys [0, universe) drawn by
// next into an L1 of capacity entries (admission on or off) and returns
// the share of hits, counted after a first pass that warms it.
func hitRatio(capacity int, admit bool, n int, next func() uint64) float64 {
	c := newL1(capacity)
	if !admit {
		c.door = nil
	}
	keys := map[uint64]*rendered{}
	hits := 0
	for i := range 2 * n {
		k := next()
		r := keys[k]
		if r == nil {
			r = &rendered{key: strconv.FormatUint(k, 36), refreshAt: 1 << 40}
			keys[k] = r
		}
		if rd, _ := c.get([]byte(r.key), 0); rd != nil {
			if i >= n {
				hits++
			}
			continue
		}
		c.put(r, 0)
	}
	return float64(hits) / float64(n)
}

// TestAdmissionRaisesZipfHitRatio replays a Zipf (s = 1.01) trace over
// twenty times the L1's size: admission must not lose hits to the
// long tail, and on this trace it gains several points. (A simulation:
// hit counts, not time.)
func TestAdmissionRaisesZipfHitRatio(t *testing.T) {
	const capacity, universe, n = 5000, 100_000, 400_000
	trace := func() func() uint64 {
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, universe-1)
		return z.Uint64
	}
	with, without := hitRatio(capacity, true, n, trace()), hitRatio(capacity, false, n, trace())
	t.Logf("Zipf 1.01 over %d keys, L1 %d: hit ratio %.3f with admission, %.3f without", universe, capacity, with, without)
	if with < without+0.02 {
		t.Errorf("hit ratio %.3f with admission, %.3f without: want a gain of at least 0.02", with, without)
	}
}

// BenchmarkL1HitRatio reports the hit ratio of Zipf and uniform traces
// over ten times the L1's size, with and without admission.
func BenchmarkL1HitRatio(b *testing.B) {
	const capacity, universe, n = 100_000, 1_000_000, 2_000_000
	for _, tr := range []struct {
		name string
		gen  func() func() uint64
	}{
		{"zipf1.01", func() func() uint64 {
			return rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, universe-1).Uint64
		}},
		{"uniform", func() func() uint64 {
			r := rand.New(rand.NewPCG(3, 4))
			return func() uint64 { return r.Uint64N(universe) }
		}},
	} {
		for _, admit := range []bool{false, true} {
			b.Run(tr.name+"/admit="+strconv.FormatBool(admit), func(b *testing.B) {
				var hr float64
				for b.Loop() {
					hr = hitRatio(capacity, admit, n, tr.gen())
				}
				b.ReportMetric(hr, "hit-ratio")
			})
		}
	}
}
