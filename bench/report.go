package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Run is the result of one scenario run: what the human summary, the
// JSON and the Markdown report are made from. Latencies are in
// milliseconds. The JSON field names are a contract (CONTRACT.md
// "trustline bench": requests_per_sec, latency_p50_ms, latency_p99_ms,
// errors); add fields, never rename them.
type Run struct {
	Name     string    `json:"name"`     // e.g. "ocsp-closed"
	Scenario string    `json:"scenario"` // ocsp, crl, crl-storm, issue, presign
	Target   string    `json:"target,omitempty"`
	Started  time.Time `json:"started_at"`
	// Mode is "closed" (a fixed number of connections, each waiting for
	// its answer) or "open" (a fixed arrival rate) loop.
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	RateTarget  float64 `json:"rate_target,omitempty"` // open loop: scheduled requests/s
	// DurationSec is the measured time requests_per_sec is over: from the
	// end of the warm-up to the last answer.
	DurationSec float64 `json:"duration_sec"`
	Config      any     `json:"config"`
	Machine     Machine `json:"machine"`

	Requests       int64            `json:"requests"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	Errors         int64            `json:"errors"`
	ErrorsByKind   map[string]int64 `json:"errors_by_kind"`
	// FirstErrors holds one message per error kind.
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	// Verified counts answers checked in full (signature, status, serial,
	// freshness); failures among them are in Errors.
	Verified int64 `json:"verified"`

	LatencyMeanMs float64 `json:"latency_mean_ms"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP90Ms  float64 `json:"latency_p90_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyP999Ms float64 `json:"latency_p999_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	// LatencyPercentiles and LatencySpectrum: in open loop, measured from
	// each request's scheduled send time, so queueing shows.
	LatencyPercentiles []Percentile `json:"latency_percentiles_ms"`
	LatencySpectrum    []Percentile `json:"latency_spectrum_ms"`
	// ServicePercentiles (open loop only): from the actual send time.
	// Their gap to LatencyPercentiles is the time requests waited because
	// the target (or the generator) fell behind.
	ServicePercentiles []Percentile `json:"service_time_percentiles_ms,omitempty"`
	ServiceSpectrum    []Percentile `json:"service_time_spectrum_ms,omitempty"`
	Unsent             int64        `json:"unsent,omitempty"`
	MaxScheduleLagMs   float64      `json:"max_schedule_lag_ms,omitempty"`

	Timeline []Second `json:"timeline"`
	// StormConvergence (crl --storm): the share of (edge, CRL) pairs
	// holding CRLs that list every revoked certificate, by seconds after
	// the last revocation; one point per pair as it converged.
	StormConvergence []StormPoint `json:"storm_convergence,omitempty"`
	// Events (bench chaos) are what was done to the target's dependencies
	// during the run, at seconds of the measured part.
	Events []Event `json:"events,omitempty"`
	// Figures are scenario-specific numbers, named in docs/bench.md.
	Figures map[string]float64 `json:"figures,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
}

// StormPoint is one point of a storm's convergence curve.
type StormPoint struct {
	Sec   float64 `json:"sec"`
	Share float64 `json:"share"`
}

// runOf names a Run and says what it measured.
type runOf struct {
	name     string // the run's name in reports
	scenario string
	target   string
	cfg      any // the scenario's configuration, as reported
}

// measure runs load (RunLoad), describing the machine around it, and fills
// a Run from the result, which it returns too. A nil Run comes with
// RunLoad's error.
func measure(ctx context.Context, load LoadConfig, newWorker NewWorker, now func() time.Time, of runOf) (*Run, *LoadResult, error) {
	machine := DescribeMachine()
	started := now()
	res, err := RunLoad(ctx, load, newWorker, now)
	if res == nil {
		return nil, nil, err
	}
	machine.finish()
	return newRun(of.name, of.scenario, of.target, started, res, of.cfg, machine), res, err
}

// newRun fills a Run from a load result.
func newRun(name, scenario, target string, started time.Time, res *LoadResult, cfg any, m Machine) *Run {
	r := &Run{
		Name: name, Scenario: scenario, Target: target, Started: started.UTC(),
		Mode: res.Config.Mode(), Concurrency: res.Config.Concurrency, RateTarget: res.Config.Rate,
		DurationSec: round(res.Elapsed.Seconds(), 3), Config: cfg, Machine: m,
		Requests: res.Requests, RequestsPerSec: round(res.Rate(), 1), Errors: res.Errors,
		ErrorsByKind: res.ByKind, FirstErrors: res.FirstErr,
		LatencyMeanMs: ms(res.Latency.Mean()), LatencyP50Ms: ms(res.Latency.At(50)),
		LatencyP90Ms: ms(res.Latency.At(90)), LatencyP99Ms: ms(res.Latency.At(99)),
		LatencyP999Ms: ms(res.Latency.At(99.9)), LatencyMaxMs: ms(res.Latency.Max()),
		LatencyPercentiles: res.Latency.Percentiles(), LatencySpectrum: res.Latency.Spectrum(),
		Unsent: res.Unsent, Timeline: res.Timeline,
	}
	if res.Config.Rate > 0 {
		r.ServicePercentiles = res.Service.Percentiles()
		r.ServiceSpectrum = res.Service.Spectrum()
		r.MaxScheduleLagMs = ms(res.MaxLag)
	}
	if r.ErrorsByKind == nil {
		r.ErrorsByKind = map[string]int64{}
	}
	if r.Requests == 0 {
		r.Notes = append(r.Notes, "no request was answered in the measured time: the target hung or refused everything")
	}
	return r
}

// WriteSummary prints the human summary of r.
func (r *Run) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n", r.Name, r.describe())
	fmt.Fprintf(w, "  requests   %d in %.1fs: %.1f/s   errors %d   verified %d\n",
		r.Requests, r.DurationSec, r.RequestsPerSec, r.Errors, r.Verified)
	what := "latency"
	if r.Mode == "open" {
		what = "latency (from scheduled send)"
	}
	fmt.Fprintf(w, "  %s ms  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", what,
		fmtMs(r.LatencyP50Ms), fmtMs(r.LatencyP90Ms), fmtMs(r.LatencyP99Ms), fmtMs(r.LatencyP999Ms), fmtMs(r.LatencyMaxMs))
	if r.Mode == "open" && len(r.ServicePercentiles) > 0 {
		fmt.Fprintf(w, "  service time ms                 p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			fmtMs(pct(r.ServicePercentiles, 50)), fmtMs(pct(r.ServicePercentiles, 90)), fmtMs(pct(r.ServicePercentiles, 99)),
			fmtMs(pct(r.ServicePercentiles, 99.9)), fmtMs(pct(r.ServicePercentiles, 100)))
		fmt.Fprintf(w, "  schedule   %.0f/s scheduled; largest send delay %s ms; %d never sent\n",
			r.RateTarget, fmtMs(r.MaxScheduleLagMs), r.Unsent)
		if r.RequestsPerSec < 0.95*r.RateTarget || r.LatencyP99Ms > 2*pct(r.ServicePercentiles, 99)+1 {
			fmt.Fprintf(w, "  NOTE: the target did not keep up with the schedule; requests queued (latency > service time)\n")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
		fmt.Fprintf(w, "  %-28s %s\n", k, fmtFigure(r.Figures[k]))
	}
	if len(r.ErrorsByKind) > 0 {
		fmt.Fprintf(w, "  errors by kind:\n")
		for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
			fmt.Fprintf(w, "    %-18s %d  (e.g. %s)\n", k, r.ErrorsByKind[k], clip(r.FirstErrors[k], 140))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func (r *Run) describe() string {
	if r.Scenario == "presign" {
		return fmt.Sprintf("%d signing goroutines, %s", r.Concurrency, r.Target)
	}
	if r.Mode == "open" {
		return fmt.Sprintf("open loop at %.0f req/s (up to %d in flight) against %s", r.RateTarget, r.Concurrency, r.Target)
	}
	return fmt.Sprintf("closed loop, %d connections, against %s", r.Concurrency, r.Target)
}

// pct returns the value at percentile p of ps (0 if absent).
func pct(ps []Percentile, p float64) float64 {
	for _, x := range ps {
		if x.Percentile == p {
			return x.Ms
		}
	}
	return 0
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func fmtFigure(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Suite is a set of runs reported together (`make bench`, `make
// bench-peers`).
type Suite struct {
	Title    string    `json:"title"`
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"`
	Machine  Machine   `json:"machine"`
	// Setup says what was measured: certificates, store, binary, pinning.
	Setup map[string]string `json:"setup"`
	Runs  []*Run            `json:"runs"`
	// Peers is the peer comparison, for bench-peers.
	Peers []PeerResult `json:"peers,omitempty"`
	// Phases are timed steps that are not load runs (bench scale:
	// populate, rebuild, resources).
	Phases []Phase  `json:"phases,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Phase is one timed step and what it measured.
type Phase struct {
	Name    string             `json:"name"`
	Figures map[string]float64 `json:"figures"`
}

// phase returns the phase named name, or nil.
func (s *Suite) phase(name string) *Phase {
	for i := range s.Phases {
		if s.Phases[i].Name == name {
			return &s.Phases[i]
		}
	}
	return nil
}

// writeJSON writes v, indented, to path (atomically).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return nil
}

// Event is one action of a chaos schedule as it was carried out.
type Event struct {
	Sec    float64 `json:"sec"` // since the measured part started
	Action string  `json:"action"`
	Target string  `json:"target"`
	Err    string  `json:"error,omitempty"`
}
