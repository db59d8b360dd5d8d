package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/pgserver"
)

// ChaosConfig configures `trustline bench chaos`: `trustline dev` with its
// response cache in a private redis-server, answering the open-loop OCSP
// mix while that Redis is killed, stopped, restarted or flushed on a
// schedule. The measure is what relying parties see meanwhile: latency
// from the scheduled send second by second, answers by kind, wrong and
// expired answers.
type ChaosConfig struct {
	Bin     string // trustline binary
	Out     string // results directory
	Name    string // file stem of the results
	Certs   int    // certificates populated
	Revoked float64
	Redis   string // redis-server binary
	// Rate and Concurrency make the open loop: Rate requests/s scheduled,
	// at most Concurrency in flight.
	Rate        float64
	Concurrency int
	Duration    time.Duration // measured part, from the schedule's start
	Mix         Mix
	// PresignWorkers is dev's presign.workers; 0 its default.
	PresignWorkers int
	// Schedule is carried out from the start of the measured part.
	Schedule []ChaosAction
	// IssueRate and RevokeRate (per second) add DV orders by a subscriber
	// and revocations by an admin through the API during the measured
	// part; 0 means none. They are what a postgres target is judged on.
	IssueRate  float64
	RevokeRate float64
	// Plant runs the production roles as separate processes (see
	// startPlant) instead of `trustline dev`; the store is then always a
	// private PostgreSQL server.
	Plant bool
	Keep  bool
}

// ChaosAction is one step of a chaos schedule.
type ChaosAction struct {
	At     time.Duration
	Action string // kill, stop, cont, start, flushall
	Target string // redis, postgres
}

func (a ChaosAction) String() string { return fmt.Sprintf("%v:%s:%s", a.At, a.Action, a.Target) }

// chaosActions are the actions each target supports.
var chaosActions = map[string][]string{
	"redis":    {"kill", "stop", "cont", "start", "flushall"},
	"postgres": {"kill", "stop", "cont", "start"},
}

// ParseChaosSchedule reads "AT:ACTION:TARGET,…", e.g.
// "5s:kill:redis,8s:start:redis,8.5s:flushall:redis": kill sends SIGKILL,
// stop SIGSTOP, cont SIGCONT, start starts it again on the same port
// (Redis empty, PostgreSQL with its data), flushall empties Redis. For
// postgres, kill and stop reach the postmaster and every backend.
// Actions come out in time order.
func ParseChaosSchedule(s string) ([]ChaosAction, error) {
	var out []ChaosAction
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("bench: schedule item %q: want AT:ACTION:TARGET", clip(item, 60))
		}
		at, err := time.ParseDuration(parts[0])
		if err != nil || at < 0 {
			return nil, fmt.Errorf("bench: schedule item %q: %q is not a non-negative duration", clip(item, 60), clip(parts[0], 20))
		}
		actions, ok := chaosActions[parts[2]]
		if !ok {
			return nil, fmt.Errorf("bench: schedule item %q: target %q: want one of %v", clip(item, 60), clip(parts[2], 20), slices.Sorted(maps.Keys(chaosActions)))
		}
		if !slices.Contains(actions, parts[1]) {
			return nil, fmt.Errorf("bench: schedule item %q: %s supports %v", clip(item, 60), parts[2], actions)
		}
		out = append(out, ChaosAction{At: at, Action: parts[1], Target: parts[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("bench: the schedule is empty")
	}
	slices.SortStableFunc(out, func(a, b ChaosAction) int { return cmp.Compare(a.At, b.At) })
	return out, nil
}

// Validate reports what is wrong with cfg.
func (cfg ChaosConfig) Validate() error {
	switch {
	case cfg.Out == "" || cfg.Name == "":
		return errors.New("bench: --out and --name are required")
	case cfg.Certs < 1000:
		return errors.New("bench: --certs must be at least 1000")
	case cfg.Rate <= 0 || cfg.Concurrency < 1:
		return errors.New("bench: --rate and --concurrency must be positive")
	case cfg.Duration < time.Second:
		return errors.New("bench: --duration must be at least 1s")
	case len(cfg.Schedule) == 0:
		return errors.New("bench: --schedule is required")
	case cfg.IssueRate < 0 || cfg.RevokeRate < 0:
		return errors.New("bench: --issue-rate and --revoke-rate must not be negative")
	}
	for _, a := range cfg.Schedule {
		if a.At >= cfg.Duration {
			return fmt.Errorf("bench: schedule item %v is not within --duration %v", a, cfg.Duration)
		}
	}
	return cfg.Mix.Validate()
}

// RunChaosConfig populates cfg.Certs certificates, starts redis-server
// and `trustline dev --redis`, waits for the warm rebuild, asks once for
// every request of the corpus (so that the responder's L1 holds them),
// then runs the open-loop mix for cfg.Duration while carrying out the
// schedule. It writes <Out>/<Name>.json and .md with the plots.
func RunChaosConfig(ctx context.Context, cfg ChaosConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	h, redisBin, err := newRedisHarness(cfg.Bin, cfg.Redis, "chaos", stderr)
	if err != nil {
		return err
	}
	defer h.close(cfg.Keep, " (data dir and logs)")
	bin := h.bin
	storeDesc := "SQLite"
	var pg *pgserver.Server
	s := &Suite{Title: fmt.Sprintf("Trustline with its dependencies failing: %d certificates, %.0f OCSP requests/s", cfg.Certs, cfg.Rate),
		Started: time.Now().UTC(), Machine: DescribeMachine()}
	sc := &scale{cfg: ScaleConfig{Certs: cfg.Certs, Revoked: cfg.Revoked, HashAlgs: "sha1,sha256", PresignWorkers: cfg.PresignWorkers}, h: h,
		data: filepath.Join(h.work, "data"), s: s, stdout: stdout}
	if cfg.Plant || usesPostgres(cfg.Schedule) {
		var stop func()
		if pg, stop, err = sc.startPostgres(); err != nil {
			return err
		}
		defer stop()
		storeDesc = "PostgreSQL (private server, " + pg.Version() + ", no fsync)"
	}
	sched := make([]string, len(cfg.Schedule))
	for i, a := range cfg.Schedule {
		sched[i] = a.String()
	}
	s.Setup = map[string]string{
		"binary":       bin + " (" + binVersion(ctx, bin, "version") + ")",
		"commit":       gitCommit(ctx),
		"certificates": fmt.Sprintf("%d (%.1f%% revoked), `trustline bench populate`, %s", cfg.Certs, 100*cfg.Revoked, storeDesc),
		"server":       fmt.Sprintf("`trustline dev --redis` (presign.hash_algs [sha1, sha256], presign.workers %s; file keys), ephemeral loopback ports", workersOf(cfg.PresignWorkers)),
		"redis":        binVersion(ctx, redisBin, "--version") + ", private, on a free port, no persistence",
		"load":         fmt.Sprintf("open loop, %.0f requests/s scheduled, at most %d in flight, %v measured; every request's answer checked for its responseStatus, one in 10 verified in full", cfg.Rate, cfg.Concurrency, cfg.Duration),
		"schedule":     strings.Join(sched, ", "),
	}
	if cfg.Plant {
		s.Setup["server"] = fmt.Sprintf("a plant: `trustline init`, then one api, one presigner (presign.workers %s), two responders, one crlgen and one origin as separate processes (file keys, text logs, crl.revocation_delay 5s), ephemeral loopback ports; the load goes to the first responder", workersOf(cfg.PresignWorkers))
	}
	if cfg.IssueRate > 0 || cfg.RevokeRate > 0 {
		s.Setup["writes"] = fmt.Sprintf("open loop through the API: %.1f DV orders/s (one subscriber, at most 16 in flight, every acknowledged certificate fetched and checked afterwards), %.1f revocations/s by an admin", cfg.IssueRate, cfg.RevokeRate)
	}
	return h.finish(s, cfg.Out, cfg.Name, runChaos(ctx, cfg, sc, redisBin, pg))
}

func runChaos(ctx context.Context, cfg ChaosConfig, sc *scale, redisBin string, pg *pgserver.Server) error {
	redisProc, err := sc.startTarget(ctx, cfg, redisBin, pg)
	if err != nil {
		return err
	}
	issuers, err := loadIssuers(sc.data)
	if err != nil {
		return err
	}
	ep, err := parseEndpoint(sc.urls.ocsp)
	if err != nil {
		return err
	}
	certs, err := readCerts(ctx, sc.data, sc.cfg.Postgres, cfg.Certs, time.Now())
	if err != nil {
		return err
	}
	// The certificates the admin revokes during the run are kept out of
	// the OCSP corpus, whose answers are checked against the store as it
	// was before the run.
	certs, revokable := splitRevokable(certs, int(cfg.RevokeRate*cfg.Duration.Seconds())+1)
	c, err := buildCorpus(certs, issuers, cfg.Mix, ep)
	if err != nil {
		return err
	}
	// Every request of the corpus once, in closed loop: the L1 then holds
	// every response the measured run will ask for.
	ocfg := OCSPConfig{Name: "warm-up", Target: sc.urls.ocsp, DataDir: sc.data, Mix: cfg.Mix, VerifyEvery: 10,
		Timeout: 5 * time.Second, MaxCerts: cfg.Certs,
		Load: LoadConfig{Duration: 10 * time.Minute, Concurrency: cfg.Concurrency, Requests: uint64(len(c.slots))}}
	sc.h.say("warm-up: %d requests", len(c.slots))
	warm, err := runOCSP(ctx, ocfg, ep, c, len(certs), time.Now)
	if err != nil {
		return err
	}
	sc.s.Runs = append(sc.s.Runs, warm)
	var wl *writeLoad
	if cfg.IssueRate > 0 || cfg.RevokeRate > 0 {
		if wl, err = prepareWrites(ctx, cfg, sc); err != nil {
			return err
		}
	}

	ocfg.Name = "chaos"
	ocfg.Load = LoadConfig{Duration: cfg.Duration, Concurrency: cfg.Concurrency, Rate: cfg.Rate, Grace: 30 * time.Second}
	sc.h.say("chaos: %.0f requests/s for %v; schedule %s", cfg.Rate, cfg.Duration, sc.s.Setup["schedule"])
	ch := &chaos{sc: sc, redisBin: redisBin, redis: redisProc, pg: pg}
	events := make(chan []Event, 1)
	start := time.Now()
	sctx, cancel := context.WithCancel(ctx)
	go func() { events <- ch.carryOut(sctx, cfg.Schedule, start) }()
	var (
		writes  sync.WaitGroup
		issue   *Run
		issueEr error
	)
	if wl != nil {
		if cfg.IssueRate > 0 {
			writes.Go(func() { issue, issueEr = wl.issue(ctx) })
		}
		writes.Go(func() { wl.revoke(ctx, cfg.Duration, revokable, cfg.RevokeRate) })
	}
	run, err := runOCSP(ctx, ocfg, ep, c, len(certs), time.Now)
	cancel()
	evs := <-events
	writes.Wait()
	if run == nil {
		return err
	}
	run.Events = evs
	chaosFigures(run)
	if wl != nil {
		err = errors.Join(err, ch.mend(ctx), issueEr, wl.finish(ctx, run, issue))
	}
	run.WriteSummary(sc.stdout)
	sc.s.Runs = append(sc.s.Runs, run)
	if issue != nil {
		sc.s.Runs = append(sc.s.Runs, issue)
	}
	sc.h.stop(sc.dev)
	var failed []error
	for _, e := range evs {
		if e.Err != "" {
			failed = append(failed, fmt.Errorf("%s %s: %s", e.Action, e.Target, e.Err))
		}
	}
	return errors.Join(append(failed, err)...)
}

// startTarget populates and starts what the load goes to: dev, or a
// plant with cfg.Plant, with its Redis.
func (sc *scale) startTarget(ctx context.Context, cfg ChaosConfig, redisBin string, pg *pgserver.Server) (*proc, error) {
	if cfg.Plant {
		redisProc, err := sc.startRedis(ctx, redisBin)
		if err != nil {
			return nil, err
		}
		return redisProc, sc.startPlant(ctx, pg)
	}
	if err := sc.populate(ctx); err != nil {
		return nil, err
	}
	redisProc, err := sc.startRedis(ctx, redisBin)
	if err != nil {
		return nil, err
	}
	return redisProc, sc.rebuild(ctx, nil)
}

// chaosFigures adds the figures the degraded-operation goals are stated
// in: answers by kind as shares, wrong and expired answers. try_later
// counts issued certificates only (every one was in the L1 after the
// warm-up); never-issued serials answered tryLater are counted apart.
func chaosFigures(r *Run) {
	if r.Figures == nil {
		r.Figures = map[string]float64{}
	}
	n := float64(max(r.Requests, 1))
	wrong := r.ErrorsByKind["status"] + r.ErrorsByKind["hash"] + r.ErrorsByKind["good_for_unknown"] + r.ErrorsByKind["verify"]
	r.Figures["wrong_answers"] = float64(wrong)
	r.Figures["expired_answers"] = float64(r.ErrorsByKind["stale"])
	r.Figures["try_later"] = float64(r.ErrorsByKind["ocsp_try_later"])
	r.Figures["try_later_share_pct"] = round(100*float64(r.ErrorsByKind["ocsp_try_later"])/n, 4)
	r.Figures["try_later_unknown_serials"] = float64(r.ErrorsByKind["ocsp_try_later_unknown_serial"])
	r.Figures["p99_from_scheduled_send_ms"] = r.LatencyP99Ms
}

// chaos carries out a schedule on the dependencies of one dev.
type chaos struct {
	sc       *scale
	redisBin string
	redis    *proc            // the running redis-server, nil once killed
	pg       *pgserver.Server // the private store, when the schedule names it
}

// carryOut performs each action at its time from start and returns what
// was done, in order. It stops early when ctx ends.
func (ch *chaos) carryOut(ctx context.Context, sched []ChaosAction, start time.Time) []Event {
	var out []Event
	for _, a := range sched {
		t := time.NewTimer(time.Until(start.Add(a.At)))
		select {
		case <-ctx.Done():
			t.Stop()
			return out
		case <-t.C:
		}
		e := Event{Sec: round(time.Since(start).Seconds(), 3), Action: a.Action, Target: a.Target}
		if err := ch.do(ctx, a); err != nil {
			e.Err = err.Error()
		}
		ch.sc.h.say("chaos: %.2f s: %s %s %s", e.Sec, a.Action, a.Target, e.Err)
		out = append(out, e)
	}
	return out
}

func (ch *chaos) do(ctx context.Context, a ChaosAction) error {
	if a.Target == "postgres" {
		return ch.doPostgres(a)
	}
	p := ch.redis
	switch a.Action {
	case "kill", "stop", "cont":
		if p == nil {
			return errors.New("not running")
		}
		sig := map[string]syscall.Signal{"kill": syscall.SIGKILL, "stop": syscall.SIGSTOP, "cont": syscall.SIGCONT}[a.Action]
		if err := p.cmd.Process.Signal(sig); err != nil {
			return err
		}
		if a.Action == "kill" {
			<-p.done
			ch.redis = nil
		}
		return nil
	case "start":
		if p != nil {
			return errors.New("already running")
		}
		p, err := ch.sc.startRedisAt(ctx, ch.redisBin)
		if p != nil {
			ch.redis = p
		}
		return err
	case "flushall":
		c := redis.NewClient(&redis.Options{Addr: ch.sc.redis, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
		defer c.Close()
		return c.FlushAll(ctx).Err()
	}
	return fmt.Errorf("unknown action %q", a.Action)
}

func (ch *chaos) doPostgres(a ChaosAction) error {
	pg := ch.pg
	if pg == nil {
		return errors.New("no private postgres")
	}
	if a.Action != "start" && !pg.Running() {
		return errors.New("not running")
	}
	switch a.Action {
	case "kill":
		pg.Kill()
	case "stop":
		pg.Pause()
	case "cont":
		pg.Resume()
	case "start":
		return pg.Start()
	default:
		return fmt.Errorf("unknown action %q", a.Action)
	}
	return nil
}

// mend brings the store back if the schedule left it down, so that what
// was written can be checked.
func (ch *chaos) mend(ctx context.Context) error {
	if ch.pg == nil {
		return nil
	}
	if !ch.pg.Running() {
		return ch.pg.Start()
	}
	ch.pg.Resume()
	return nil
}

// RunChaos is `trustline bench chaos`.
func RunChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ChaosConfig
	var schedule string
	fs.StringVar(&cfg.Bin, "bin", "", "trustline binary to populate and run (default: this one)")
	fs.StringVar(&cfg.Out, "out", "bench/results", "results directory")
	fs.StringVar(&cfg.Name, "name", "chaos-redis", "file stem of the results: NAME.json, NAME.md, NAME-*.png")
	fs.IntVar(&cfg.Certs, "certs", 20_000, "certificates to populate")
	fs.Float64Var(&cfg.Revoked, "revoked-fraction", 0.05, "share populated revoked")
	fs.StringVar(&cfg.Redis, "redis-server", "redis-server", "redis-server binary, started on a free port")
	fs.Float64Var(&cfg.Rate, "rate", 3000, "OCSP requests per second, scheduled (open loop)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "OCSP requests in flight at most")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured duration, from the schedule's start")
	fs.StringVar(&schedule, "schedule", "5s:kill:redis,8s:start:redis,8.5s:flushall:redis",
		"AT:ACTION:TARGET,… with ACTION kill, stop, cont, start or flushall (redis only) and TARGET redis or postgres (a private server then holds the store)")
	fs.BoolVar(&cfg.Plant, "plant", false, "run the production roles as separate processes (one api, presigner, crlgen and origin, two responders) on a private PostgreSQL instead of trustline dev")
	fs.Float64Var(&cfg.IssueRate, "issue-rate", 0, "DV orders per second through the API during the measured part (0: none)")
	fs.Float64Var(&cfg.RevokeRate, "revoke-rate", 0, "revocations per second by an admin during the measured part (0: none)")
	registerMixFlags(fs, &cfg.Mix, Mix{Method: "mix", GetEncoding: "raw", SHA256: 0.5, Unknown: 0.02, Nonce: 0.05, Seed: 1})
	fs.IntVar(&cfg.PresignWorkers, "presign-workers", 0, "dev's presign.workers, the rebuild's signing goroutines (0: one per core)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (data dir and server logs)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Schedule, err = ParseChaosSchedule(schedule); err != nil {
		return err
	}
	return RunChaosConfig(ctx, cfg, stdout, stderr)
}

func workersOf(n int) string {
	if n <= 0 {
		return "default (one per core)"
	}
	return fmt.Sprint(n)
}
