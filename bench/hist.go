package bench

import (
	"math"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 60 s with three
// significant digits: fine enough for a 20 µs loopback answer, wide enough
// for a stall that ends in a timeout.
const (
	histLowest  = 1
	histHighest = 60_000_000
	histDigits  = 3
)

// Histogram records latencies. It is not safe for concurrent use: each
// worker keeps its own and the run merges them, so recording never takes
// a lock.
type Histogram struct{ h *hdr.Histogram }

// NewHistogram returns an empty histogram covering 1 µs–60 s.
func NewHistogram() *Histogram { return &Histogram{h: hdr.New(histLowest, histHighest, histDigits)} }

// newSecondHistogram returns a coarser histogram (two significant digits,
// a few KB) for one second of a run's timeline.
func newSecondHistogram() *Histogram { return &Histogram{h: hdr.New(histLowest, histHighest, 2)} }

// Record adds one latency; values outside the range are clamped to it so
// that a pathological stall is still counted, as 60 s.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	us = min(max(us, histLowest), histHighest)
	_ = h.h.RecordValue(us) // in range by construction
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// At returns the latency at percentile p (0–100).
func (h *Histogram) At(p float64) time.Duration {
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Max is the largest recorded latency.
func (h *Histogram) Max() time.Duration { return time.Duration(h.h.Max()) * time.Microsecond }

// Mean is the average recorded latency.
func (h *Histogram) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// Percentile is one point of a latency distribution.
type Percentile struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// standardPercentiles are the rows of summaries and of the JSON's
// latency_percentiles_ms.
var standardPercentiles = [...]float64{0, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100}

// Percentiles returns the standard percentiles.
func (h *Histogram) Percentiles() []Percentile {
	out := make([]Percentile, 0, len(standardPercentiles))
	for _, p := range standardPercentiles {
		out = append(out, Percentile{Percentile: p, Ms: ms(h.At(p))})
	}
	return out
}

// Spectrum returns the full percentile spectrum as HdrHistogram plots it:
// points spaced evenly in log(1/(1-p)), ten per factor of ten, from the
// median up to the last recorded value. Tail percentiles are where
// load-test stalls hide, so they get as many points as the bulk.
func (h *Histogram) Spectrum() []Percentile {
	if h.Count() == 0 {
		return nil
	}
	// Beyond 1/count the percentiles no longer resolve distinct values.
	limit := math.Log10(float64(h.Count()))
	var out []Percentile
	for i := 0; ; i++ {
		x := float64(i) / 10 // log10(1/(1-p))
		if x > limit {
			break
		}
		p := 100 * (1 - math.Pow(10, -x))
		out = append(out, Percentile{Percentile: round(p, 6), Ms: ms(h.At(p))})
	}
	return append(out, Percentile{Percentile: 100, Ms: ms(h.Max())})
}

// ms converts to milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}
