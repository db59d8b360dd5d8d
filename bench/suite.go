package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/cli"
)

// SuiteConfig configures the standard suite (`make bench`).
type SuiteConfig struct {
	Bin         string        // trustline binary
	Out         string        // results directory
	Name        string        // file stem: <Out>/<Name>.json, .md, and plots
	Certs       int           // certificates populated
	Duration    time.Duration // measured duration of each load run
	Warmup      time.Duration
	Concurrency int      // OCSP closed-loop connections
	Storm       int      // revocations of the CRL storm
	Skip        []string // run names to leave out
	Keep        bool     // keep the scratch directory (data dir, logs)
}

// Validate reports what is wrong with cfg.
func (cfg SuiteConfig) Validate() error {
	switch {
	case cfg.Out == "" || cfg.Name == "":
		return errors.New("bench: --out and --name are required")
	case cfg.Certs < 100:
		return errors.New("bench: --certs must be at least 100")
	case cfg.Duration < time.Second:
		return errors.New("bench: --duration must be at least 1s")
	case cfg.Concurrency < 1:
		return errors.New("bench: --concurrency must be positive")
	case cfg.Storm < 0 || cfg.Storm > cfg.Certs/2:
		return errors.New("bench: --storm must be in [0, certs/2]")
	}
	return nil
}

// suiteRuns are the standard suite's runs, in order. The storm comes
// last: it revokes certificates, which the OCSP runs' expectations were
// read before.
var suiteRuns = [...]string{"ocsp-closed", "ocsp-mix", "ocsp-open", "crl", "issue", "presign", "crl-storm"}

// RunSuiteConfig runs the standard suite against a fresh `trustline dev` and
// writes <Out>/<Name>.json and .md (with plots). Runs that fail to run
// are noted in the report and make the error; wrong answers are results,
// counted as errors in their run.
func RunSuiteConfig(ctx context.Context, cfg SuiteConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	bin, err := resolveBin(cfg.Bin)
	if err != nil {
		return err
	}
	h, err := newHarness(bin, "trustline-bench-", stderr)
	if err != nil {
		return err
	}
	defer h.close(cfg.Keep, " (data dir and logs)")
	work := h.work
	// The whole suite must stay well under ten minutes.
	ctx, cancel := context.WithTimeout(ctx, 9*time.Minute+30*time.Second)
	defer cancel()

	data := filepath.Join(work, "data")
	s := &Suite{Title: "Trustline standard bench suite", Started: time.Now().UTC(), Machine: DescribeMachine(),
		Setup: map[string]string{
			"binary":         bin + " (" + binVersion(ctx, bin, "version") + ")",
			"commit":         gitCommit(ctx),
			"certificates":   fmt.Sprintf("%d (5%% revoked), `trustline bench populate`, ECDSA P-256 intermediate", cfg.Certs),
			"server":         "`trustline dev` on the embedded default (SQLite, in-process response cache, file keys), ephemeral loopback ports",
			"load generator": "in the suite's process, on the same machine, unpinned (see `make bench-peers` for pinned comparisons)",
			"durations":      fmt.Sprintf("%v measured after %v warm-up per load run", cfg.Duration, cfg.Warmup),
		}}
	if err := h.populate(ctx, data, cfg.Certs, 0.05); err != nil {
		return err
	}
	urls, dev, err := h.startDev(ctx, data, "")
	if err != nil {
		return err
	}

	var failed []error
	record := func(name string, r *Run, err error) {
		if r != nil {
			r.WriteSummary(stdout)
			s.Runs = append(s.Runs, r)
		}
		if err != nil {
			h.say("%s: %v", name, err)
			s.Notes = append(s.Notes, fmt.Sprintf("%s did not complete: %v", name, err))
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
		}
	}
	load := func(c int) LoadConfig { return LoadConfig{Duration: cfg.Duration, Warmup: cfg.Warmup, Concurrency: c} }
	ocsp := func(name string, l LoadConfig, m Mix) (*Run, error) {
		return OCSP(ctx, OCSPConfig{Name: name, Target: urls.ocsp, DataDir: data, Load: l, Mix: m, VerifyEvery: 100,
			Timeout: 5 * time.Second, MaxCerts: 1_000_000}, time.Now)
	}
	plain := Mix{Method: "get", GetEncoding: "raw", Seed: 1}
	mixed := Mix{Method: "mix", GetEncoding: "raw", Zipf: 1, Unknown: 0.02, SHA256: 0.5, Nonce: 0.05, Seed: 2}
	closedRate := 0.0
	for _, name := range suiteRuns {
		if slices.Contains(cfg.Skip, name) {
			continue
		}
		if ctx.Err() != nil {
			record(name, nil, ctx.Err())
			continue
		}
		h.say("running %s", name)
		var r *Run
		var err error
		switch name {
		case "ocsp-closed":
			r, err = ocsp(name, load(cfg.Concurrency), plain)
			if r != nil {
				closedRate = r.RequestsPerSec
			}
		case "ocsp-mix":
			r, err = ocsp(name, load(cfg.Concurrency), mixed)
		case "ocsp-open":
			// Half the closed-loop capacity: the latency a responder
			// gives when it is not saturated, free of coordinated omission.
			l := load(64)
			l.Rate = max(100, float64(int(closedRate/2/100))*100)
			r, err = ocsp(name, l, mixed)
		case "crl":
			r, err = CRL(ctx, CRLConfig{Name: name, Target: urls.crl, DataDir: data, Edges: 50, Load: load(8),
				Conditional: "etag", Timeout: 10 * time.Second, Seed: 1}, time.Now)
		case "issue":
			r, err = Issue(ctx, IssueConfig{Name: name, API: urls.api, DataDir: data, Load: load(4), KeyType: "ecdsa",
				CSRs: 64, VerifyEvery: 20, Timeout: 30 * time.Second}, time.Now, rand.Reader)
		case "presign":
			r, err = Presign(ctx, PresignConfig{Name: name, DataDir: data, Responses: 200_000, Workers: runtime.GOMAXPROCS(0),
				VerifyEvery: 100, MaxCerts: 100_000}, PresignDeps{}, time.Now, rand.Reader)
		case "crl-storm":
			if cfg.Storm == 0 {
				continue
			}
			l := LoadConfig{Duration: 2 * time.Minute, Warmup: 2 * time.Second, Concurrency: 8}
			r, err = CRL(ctx, CRLConfig{Name: name, Target: urls.crl, DataDir: data, Edges: 50, Load: l,
				Conditional: "etag", Timeout: 10 * time.Second, Storm: cfg.Storm, StormPoll: time.Second, Seed: 1}, time.Now)
		}
		record(name, r, err)
	}
	h.stop(dev)
	s.Machine.finish()
	s.Finished = time.Now().UTC()

	jsonPath := filepath.Join(cfg.Out, cfg.Name+".json")
	mdPath := filepath.Join(cfg.Out, cfg.Name+".md")
	if err := writeJSON(jsonPath, s); err != nil {
		return err
	}
	if err := WriteMarkdown(mdPath, s); err != nil {
		return err
	}
	h.say("wrote %s and %s", jsonPath, mdPath)
	return errors.Join(failed...)
}

// RunSuite is `trustline bench suite`, what `make bench` runs.
func RunSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg SuiteConfig
	fs.StringVar(&cfg.Bin, "bin", "", "trustline binary to populate and run (default: this one)")
	fs.StringVar(&cfg.Out, "out", "bench/results", "results directory")
	fs.StringVar(&cfg.Name, "name", "latest", "file stem of the results: NAME.json, NAME.md, NAME-*.png")
	fs.IntVar(&cfg.Certs, "certs", 20000, "certificates to populate")
	fs.DurationVar(&cfg.Duration, "duration", 15*time.Second, "measured duration of each load run")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before each load run")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "OCSP closed-loop connections")
	fs.IntVar(&cfg.Storm, "storm", 500, "revocations in the CRL storm (0: no storm)")
	skip := fs.String("skip", "", "comma-separated runs to leave out: "+strings.Join(suiteRuns[:], ", "))
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (data dir and server logs)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	for _, n := range strings.Split(*skip, ",") {
		if n = strings.TrimSpace(n); n != "" {
			if !slices.Contains(suiteRuns[:], n) {
				return cli.Usage("suite: unknown run " + strconv.Quote(n) + " in --skip")
			}
			cfg.Skip = append(cfg.Skip, n)
		}
	}
	return RunSuiteConfig(ctx, cfg, stdout, stderr)
}
