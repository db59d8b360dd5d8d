package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig shapes one load run.
type LoadConfig struct {
	// Duration is the measured part of the run. Required.
	Duration time.Duration
	// Warmup runs the same load before the measured part, unrecorded, so
	// that connections, caches and the Go runtime settle. May be 0.
	Warmup time.Duration
	// Concurrency is the number of workers, each with its own connection:
	// in closed loop the load itself, in open loop the most requests that
	// can be in flight at once. Required.
	Concurrency int
	// Rate, when positive, makes the run open loop: requests are scheduled
	// at this fixed rate (per second) whatever the answers do, and a
	// request sent late because every worker was busy has its latency
	// measured from its scheduled send time, so that a stall shows in full
	// (no coordinated omission). 0 means closed loop: each worker sends
	// its next request when the previous one is answered.
	Rate float64
	// Requests, when positive, ends a closed-loop run after this many
	// measured requests (Duration then only caps it); the rate is then
	// Requests over the time they took.
	Requests uint64
	// Done, when closed, ends the run early and normally (the CRL storm
	// ends when every edge has seen the new CRLs). The rate is then over
	// the time the run took.
	Done <-chan struct{}
	// Grace bounds, in open loop, how long after the end late requests
	// are still sent; those left are counted as unsent. 0 means
	// max(2 s, Duration/4).
	Grace time.Duration
}

// Validate reports what is wrong with cfg.
func (cfg LoadConfig) Validate() error {
	switch {
	case cfg.Duration <= 0:
		return errors.New("bench: duration must be positive")
	case cfg.Warmup < 0 || cfg.Grace < 0:
		return errors.New("bench: warmup and grace must not be negative")
	case cfg.Concurrency <= 0 || cfg.Concurrency > 10000:
		return fmt.Errorf("bench: concurrency %d: want 1–10000", cfg.Concurrency)
	case cfg.Rate < 0:
		return errors.New("bench: rate must not be negative")
	case cfg.Requests > 0 && cfg.Rate > 0:
		return errors.New("bench: a request count only ends closed-loop runs")
	case cfg.Rate > 0 && float64(cfg.Warmup+cfg.Duration)*cfg.Rate/float64(time.Second) > 1<<40:
		return errors.New("bench: rate × duration is absurd")
	}
	return nil
}

// Mode is "closed" or "open" (loop).
func (cfg LoadConfig) Mode() string {
	if cfg.Rate > 0 {
		return "open"
	}
	return "closed"
}

// Worker sends requests over one connection. The engine calls it from
// one goroutine only.
type Worker interface {
	// Do sends request number seq and waits for its answer (bounded by
	// the worker's own timeout). nil means a correct answer; a failed or
	// wrong one returns an error, ideally a *Failure saying its kind.
	Do(seq uint64) error
	Close()
}

// NewWorker makes worker number id (0 ≤ id < Concurrency).
type NewWorker func(id int) (Worker, error)

// Failure is a counted error: Kind names the class it is counted under
// in errors_by_kind ("transport", "timeout", "http_503", "verify", …).
type Failure struct {
	Kind string
	Err  error
}

func (f *Failure) Error() string {
	if f.Err == nil {
		return f.Kind
	}
	return f.Kind + ": " + f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(kind string, err error) error { return &Failure{Kind: kind, Err: err} }

func kindOf(err error) string {
	if f, ok := errors.AsType[*Failure](err); ok {
		return f.Kind
	}
	return "other"
}

// Second is one second of the measured run, by completion time.
type Second struct {
	Second   int     `json:"second"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	MaxMs    float64 `json:"max_ms"`
	// P99Ms is the 99th percentile of the latencies of the answers that
	// arrived in this second (from the scheduled send in open loop).
	P99Ms float64 `json:"p99_ms"`

	hist *Histogram // while the run lasts
}

// LoadResult is what a run measured.
type LoadResult struct {
	Config LoadConfig
	// Requests counts answered (or failed) requests of the measured part.
	Requests int64
	Errors   int64
	ByKind   map[string]int64
	// FirstErr is one error of each kind, for the summary.
	FirstErr map[string]string
	// Elapsed is from the start of the measured part to the last answer
	// (at least Duration): the denominator of the rate.
	Elapsed time.Duration
	// Latency is measured, in open loop, from the scheduled send time of
	// requests that had to wait for a free worker (what a user waiting in
	// the queue sees) and from the actual send time of the others (whose
	// only delay is the timer's); in closed loop from the actual send
	// time. Service is always from the actual send time.
	Latency, Service *Histogram
	// Unsent counts open-loop requests still waiting when the grace
	// period ended. They are not in Requests (they were never answered)
	// but each is recorded in Latency at the wait it had so far, a lower
	// bound, and counted in Errors as kind "unsent".
	Unsent int64
	// MaxLag is the largest delay between a request's scheduled and
	// actual send time (open loop): the generator or the target falling
	// behind.
	MaxLag   time.Duration
	Timeline []Second
}

// Rate is the measured throughput in requests per second.
func (r *LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// workerStats is one worker's share, merged after the run.
type workerStats struct {
	requests, errors, unsent int64
	byKind                   map[string]int64
	firstErr                 map[string]string
	latency, service         *Histogram
	lastDone                 time.Time
	maxLag                   time.Duration
	timeline                 []Second
}

func (s *workerStats) record(measureStart, intended, sent, done time.Time, err error) {
	lat := done.Sub(intended)
	s.requests++
	s.latency.Record(lat)
	if s.service != s.latency {
		s.service.Record(done.Sub(sent))
	}
	sec := max(int(done.Sub(measureStart)/time.Second), 0)
	for len(s.timeline) <= sec {
		s.timeline = append(s.timeline, Second{Second: len(s.timeline)})
	}
	b := &s.timeline[sec]
	if b.hist == nil {
		b.hist = newSecondHistogram()
	}
	b.hist.Record(lat)
	b.Requests++
	if m := ms(lat); m > b.MaxMs {
		b.MaxMs = m
	}
	if err != nil {
		s.errors++
		b.Errors++
		k := kindOf(err)
		s.byKind[k]++
		if _, ok := s.firstErr[k]; !ok {
			s.firstErr[k] = err.Error()
		}
	}
	if done.After(s.lastDone) {
		s.lastDone = done
	}
}

// RunLoad drives workers made by newWorker according to cfg. now is the clock
// the schedule and the latencies are taken from (time.Now outside tests;
// it must be monotonic, as time.Now's readings are).
func RunLoad(ctx context.Context, cfg LoadConfig, newWorker NewWorker, now func() time.Time) (*LoadResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Grace == 0 {
		cfg.Grace = max(2*time.Second, cfg.Duration/4)
	}
	workers := make([]Worker, 0, cfg.Concurrency)
	defer func() {
		for _, w := range workers {
			w.Close()
		}
	}()
	for i := range cfg.Concurrency {
		w, err := newWorker(i)
		if err != nil {
			return nil, fmt.Errorf("bench: starting worker %d: %w", i, err)
		}
		workers = append(workers, w)
	}

	// A flag rather than ctx.Err() in the loop: it is read once per
	// request by every worker.
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var endedEarly atomic.Bool
	go func() {
		select {
		case <-ctx.Done():
		case <-cfg.Done:
			endedEarly.Store(true)
		}
		stop.Store(true)
	}()

	start := now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	var (
		next     atomic.Uint64 // request sequence, shared so the corpus is walked in order
		measured atomic.Uint64 // measured requests started, for cfg.Requests
		wg       sync.WaitGroup
		stats    = make([]*workerStats, len(workers))
	)
	for i, w := range workers {
		st := &workerStats{latency: NewHistogram(), byKind: map[string]int64{}, firstErr: map[string]string{}}
		st.service = st.latency
		if cfg.Rate > 0 {
			st.service = NewHistogram()
		}
		stats[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Rate > 0 {
				openLoop(cfg, w, st, &next, &stop, start, measureStart, end, now)
			} else {
				closedLoop(cfg, w, st, &next, &measured, &stop, measureStart, end, now)
			}
		}()
	}
	wg.Wait()

	res := &LoadResult{Config: cfg, Latency: NewHistogram(), Service: NewHistogram(), ByKind: map[string]int64{},
		FirstErr: map[string]string{}}
	var lastDone time.Time
	for _, st := range stats {
		res.Requests += st.requests
		res.Errors += st.errors
		res.Unsent += st.unsent
		res.Latency.Merge(st.latency)
		res.Service.Merge(st.service)
		res.MaxLag = max(res.MaxLag, st.maxLag)
		for k, v := range st.byKind {
			res.ByKind[k] += v
		}
		for k, v := range st.firstErr {
			if _, ok := res.FirstErr[k]; !ok {
				res.FirstErr[k] = v
			}
		}
		if st.lastDone.After(lastDone) {
			lastDone = st.lastDone
		}
		for _, b := range st.timeline {
			for len(res.Timeline) <= b.Second {
				res.Timeline = append(res.Timeline, Second{Second: len(res.Timeline)})
			}
			t := &res.Timeline[b.Second]
			t.Requests += b.Requests
			t.Errors += b.Errors
			t.MaxMs = max(t.MaxMs, b.MaxMs)
			if b.hist != nil {
				if t.hist == nil {
					t.hist = newSecondHistogram()
				}
				t.hist.Merge(b.hist)
			}
		}
	}
	for i := range res.Timeline {
		if t := &res.Timeline[i]; t.hist != nil {
			t.P99Ms = ms(t.hist.At(99))
			t.hist = nil
		}
	}
	if res.Unsent > 0 {
		res.Errors += res.Unsent
		res.ByKind["unsent"] += res.Unsent
		res.FirstErr["unsent"] = "scheduled but not sent before the grace period ended: the target fell behind"
	}
	res.Elapsed = max(cfg.Duration, lastDone.Sub(measureStart))
	if cfg.Requests > 0 || endedEarly.Load() {
		res.Elapsed = max(lastDone.Sub(measureStart), time.Millisecond)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("bench: run interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

func closedLoop(cfg LoadConfig, w Worker, st *workerStats, next, measured *atomic.Uint64, stop *atomic.Bool,
	measureStart, end time.Time, now func() time.Time) {
	for !stop.Load() {
		sent := now()
		if !sent.Before(end) {
			return
		}
		seq := next.Add(1) - 1
		if cfg.Requests > 0 && !sent.Before(measureStart) && measured.Add(1) > cfg.Requests {
			return
		}
		err := w.Do(seq)
		done := now()
		// A warm-up request that fails in the measured part counts: a
		// target that hangs from the start must not report zero errors.
		if !sent.Before(measureStart) || (err != nil && !done.Before(measureStart)) {
			st.record(measureStart, sent, sent, done, err)
		}
	}
}

// openLoop sends request k at start + k/Rate. A worker that finds its
// next request already due sends it at once: the time it waited is the
// queueing delay a real client would have seen, and it is counted
// because latency runs from the scheduled time (no coordinated
// omission).
func openLoop(cfg LoadConfig, w Worker, st *workerStats, next *atomic.Uint64, stop *atomic.Bool,
	start, measureStart, end time.Time, now func() time.Time) {
	total := uint64(float64(cfg.Warmup+cfg.Duration) * cfg.Rate / float64(time.Second))
	interval := float64(time.Second) / cfg.Rate
	cutoff := end.Add(cfg.Grace)
	for !stop.Load() {
		seq := next.Add(1) - 1
		if seq >= total {
			return
		}
		intended := start.Add(time.Duration(float64(seq) * interval))
		t := now()
		// from is where this request's latency counts from: the scheduled
		// time when the worker comes to it late (it was busy: the queueing
		// a real client would have seen), the actual send when it was early
		// and slept (then any lateness is the timer's, not the target's).
		from := intended
		if d := intended.Sub(t); d > 0 {
			time.Sleep(d)
			t = now()
			from = t
		}
		if t.After(cutoff) {
			// Out of time: count it, at the wait it had so far, and move on
			// without sending.
			if !intended.Before(measureStart) {
				st.unsent++
				st.latency.Record(t.Sub(intended))
			}
			continue
		}
		st.maxLag = max(st.maxLag, t.Sub(intended))
		err := w.Do(seq)
		done := now()
		if !intended.Before(measureStart) || (err != nil && !done.Before(measureStart)) {
			st.record(measureStart, from, t, done, err)
		}
	}
}
