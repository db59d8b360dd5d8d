package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// sleepWorker answers after a fixed service time, in process.
type sleepWorker struct {
	d     time.Duration
	calls *atomic.Int64
	err   error
}

func (w *sleepWorker) Do(uint64) error { w.calls.Add(1); time.Sleep(w.d); return w.err }
func (w *sleepWorker) Close()          {}

func TestRunLoadClosed(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), LoadConfig{Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Concurrency: 4},
		func(int) (Worker, error) { return &sleepWorker{d: 5 * time.Millisecond, calls: &calls}, nil }, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// 4 workers × 300 ms / 5 ms ≈ 240 measured requests.
	if res.Requests < 120 || res.Requests > 260 {
		t.Errorf("%d requests measured", res.Requests)
	}
	if res.Requests >= calls.Load() {
		t.Errorf("warm-up requests were recorded: %d of %d calls", res.Requests, calls.Load())
	}
	if p := res.Latency.At(50); p < 5*time.Millisecond || p > 50*time.Millisecond {
		t.Errorf("p50 %v for a 5 ms service", p)
	}
	if res.Latency != res.Service && res.Service.Count() != res.Latency.Count() {
		t.Error("closed loop: latency and service time differ")
	}
	var sum int64
	for _, s := range res.Timeline {
		sum += s.Requests
	}
	if sum != res.Requests {
		t.Errorf("timeline sums to %d, %d requests", sum, res.Requests)
	}
}

func TestRunLoadCountsErrorsByKind(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), LoadConfig{Duration: 50 * time.Millisecond, Concurrency: 2},
		func(id int) (Worker, error) {
			if id == 0 {
				return &sleepWorker{d: time.Millisecond, calls: &calls, err: fail("http_503", errors.New("busy"))}, nil
			}
			return &sleepWorker{d: time.Millisecond, calls: &calls, err: errors.New("plain")}, nil
		}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if res.ByKind["http_503"] == 0 || res.ByKind["other"] == 0 || res.Errors != res.Requests {
		t.Errorf("errors %v of %d", res.ByKind, res.Requests)
	}
	if res.FirstErr["http_503"] != "http_503: busy" {
		t.Errorf("first error %q", res.FirstErr["http_503"])
	}
}

func TestRunLoadRequestCount(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), LoadConfig{Duration: time.Minute, Concurrency: 3, Requests: 100},
		func(int) (Worker, error) { return &sleepWorker{calls: &calls}, nil }, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.Elapsed > 10*time.Second {
		t.Errorf("%d requests in %v", res.Requests, res.Elapsed)
	}
}

func TestRunLoadDoneEndsEarly(t *testing.T) {
	var calls atomic.Int64
	done := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(done) })
	start := time.Now()
	res, err := RunLoad(context.Background(), LoadConfig{Duration: time.Minute, Concurrency: 2, Rate: 1000, Done: done},
		func(int) (Worker, error) { return &sleepWorker{calls: &calls}, nil }, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second || res.Elapsed > 5*time.Second {
		t.Errorf("ran %v (elapsed %v) after Done", time.Since(start), res.Elapsed)
	}
}

func TestLoadConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  LoadConfig
	}{
		{"no duration", LoadConfig{Concurrency: 1}},
		{"no workers", LoadConfig{Duration: time.Second}},
		{"negative rate", LoadConfig{Duration: time.Second, Concurrency: 1, Rate: -1}},
		{"count in open loop", LoadConfig{Duration: time.Second, Concurrency: 1, Rate: 10, Requests: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Validate() == nil {
				t.Error("accepted")
			}
		})
	}
}

// Acceptance: an open-loop run at a rate above the target's capacity
// reports the queueing delay instead of hiding it. The handler takes
// 10 ms; two connections serve at most 200 requests/s; the schedule asks
// for 400/s. Latency measured from the scheduled send time must grow
// with the backlog (to about a second after two seconds), while the
// service time stays near 10 ms. A closed-loop tool, or one timing from
// the actual send, would report ~10 ms and hide the stall.
func TestOpenLoopShowsQueueing(t *testing.T) {
	f := newFixture(t, 10)
	h := func(ctx *fasthttp.RequestCtx) {
		time.Sleep(10 * time.Millisecond)
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBodyString("0\x03\n\x01\x06") // unauthorized: not verified at verify-every 1e9 after the first
	}
	target := serve(t, h)
	ep, _ := parseEndpoint(target)
	c, err := buildCorpus(f.certs, f.issuers, plainMix(), ep)
	if err != nil {
		t.Fatal(err)
	}
	run := func(rate float64) *Run {
		cfg := OCSPConfig{Target: target, DataDir: "unused", Load: LoadConfig{Duration: 2 * time.Second, Concurrency: 2, Rate: rate},
			Mix: plainMix(), VerifyEvery: 1 << 30, Timeout: 5 * time.Second, MaxCerts: 10}
		r, err := runOCSP(context.Background(), cfg, ep, c, 10, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	over := run(400)
	svc99 := pct(over.ServicePercentiles, 99)
	t.Logf("400/s scheduled: %.0f/s done, latency p50 %.1f ms p99 %.1f ms, service p50 %.1f ms p99 %.1f ms, unsent %d",
		over.RequestsPerSec, over.LatencyP50Ms, over.LatencyP99Ms, pct(over.ServicePercentiles, 50), svc99, over.Unsent)
	if over.Mode != "open" || len(over.ServicePercentiles) == 0 {
		t.Fatalf("mode %q, no service time", over.Mode)
	}
	if svc99 > 60 {
		t.Errorf("service time p99 %.1f ms: should stay near the handler's 10 ms", svc99)
	}
	if over.LatencyP99Ms < 500 || over.LatencyP99Ms < 10*svc99 {
		t.Errorf("latency p99 %.1f ms hides the backlog (service p99 %.1f ms)", over.LatencyP99Ms, svc99)
	}
	if over.RequestsPerSec > 260 {
		t.Errorf("%.0f req/s from a target that can do 200", over.RequestsPerSec)
	}

	// Under capacity the two agree: latency stays within a small multiple
	// of the service time. (On a busy machine both grow, the service time
	// included; a backlog would add seconds, as above.)
	under := run(50)
	underSvc := pct(under.ServicePercentiles, 99)
	t.Logf("50/s scheduled: latency p99 %.1f ms, service p99 %.1f ms", under.LatencyP99Ms, underSvc)
	if under.LatencyP99Ms > 3*underSvc+50 {
		t.Errorf("latency p99 %.1f ms at a quarter of capacity, service p99 %.1f ms: a backlog where there should be none", under.LatencyP99Ms, underSvc)
	}
}

// A target that hangs from the first request does not report "0 requests,
// 0 errors": the warm-up requests that time out inside the measured part
// are counted.
func TestHangDuringWarmupIsAnError(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), LoadConfig{Duration: 200 * time.Millisecond, Warmup: 100 * time.Millisecond, Concurrency: 2},
		func(int) (Worker, error) {
			return &sleepWorker{d: 250 * time.Millisecond, calls: &calls, err: fail("timeout", errors.New("no answer"))}, nil
		}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if res.ByKind["timeout"] == 0 {
		t.Errorf("errors %v, %d requests", res.ByKind, res.Requests)
	}
}
