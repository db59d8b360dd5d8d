package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustline/trustline/internal/cli"
)

// ScaleConfig configures `trustline bench scale` (`make bench-scale`):
// Trustline fed many certificates, with its response cache in a private
// Redis.
type ScaleConfig struct {
	Bin      string  // trustline binary
	Out      string  // results directory
	Name     string  // file stem of the results
	Certs    int     // certificates populated
	Revoked  float64 // share populated revoked
	HashAlgs string  // presign.hash_algs, comma-separated
	// PresignWorkers, when positive, is presign.workers (signing
	// goroutines of the rebuild); 0 keeps dev's default (one per core).
	PresignWorkers int
	// Postgres, when set, holds the store (a fresh database: populate adds
	// to whatever is there); else SQLite in the data dir.
	Postgres string
	// Redis is the redis-server binary started on a free port.
	Redis       string
	Duration    time.Duration // measured duration of each OCSP run
	Warmup      time.Duration
	Concurrency int // OCSP connections
	Hot         int // certificates of the hot-set run
	Storm       int // revocations of the CRL storm (0: none)
	// Varnish, when set, is the varnishd binary: the storm is then measured
	// at a Varnish edge in front of dev's CRL origin, which dev purges on
	// each publication, as a CDN would be; else at the origin itself.
	Varnish string
	// Profile, when positive, takes a CPU profile of dev for this long
	// from the start of the rebuild: <Out>/<Name>-rebuild.pprof.
	Profile time.Duration
	Keep    bool
}

// Validate reports what is wrong with cfg.
func (cfg ScaleConfig) Validate() error {
	switch {
	case cfg.Out == "" || cfg.Name == "":
		return errors.New("bench: --out and --name are required")
	case cfg.Certs < 1000:
		return errors.New("bench: --certs must be at least 1000")
	case cfg.Revoked < 0 || cfg.Revoked > 0.5:
		return errors.New("bench: --revoked-fraction must be in [0, 0.5]")
	case cfg.Duration < time.Second || cfg.Concurrency < 1:
		return errors.New("bench: --duration must be at least 1s and --concurrency positive")
	case cfg.Hot < 10 || cfg.Hot > cfg.Certs:
		return errors.New("bench: --hot must be in [10, certs]")
	case cfg.Storm < 0 || cfg.Storm > cfg.Certs/2:
		return errors.New("bench: --storm must be in [0, certs/2]")
	case cfg.HashAlgs == "":
		return errors.New("bench: --hash-algs must name at least one algorithm")
	}
	return nil
}

// scaleUniformCerts bounds the certificates the uniform and Zipf runs
// draw from: the load generator holds each in memory, and its request
// corpus (at most 262,144 requests) samples them anyway.
const scaleUniformCerts = 1_000_000

// RunScaleConfig populates cfg.Certs certificates, starts `trustline dev
// --redis` on a private redis-server, and measures the phases: populate,
// the warm rebuild of the response cache, the first CRL round, the raw
// signing rate, OCSP over the whole set (uniform and Zipf) and over a hot
// set, and a revocation storm; with the resources (peak RSS of each
// process, Redis memory, store size). It writes <Out>/<Name>.json and .md.
func RunScaleConfig(ctx context.Context, cfg ScaleConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	h, redisBin, err := newRedisHarness(cfg.Bin, cfg.Redis, "scale", stderr)
	if err != nil {
		return err
	}
	defer h.close(cfg.Keep, " (data dir and logs)")
	bin := h.bin
	sc := &scale{cfg: cfg, h: h, data: filepath.Join(h.work, "data"), stdout: stdout,
		s: &Suite{Title: fmt.Sprintf("Trustline at scale: %d certificates", cfg.Certs), Started: time.Now().UTC(), Machine: DescribeMachine()}}
	store := "SQLite in the data dir"
	if cfg.Postgres != "" {
		store = "PostgreSQL"
	}
	sc.s.Setup = map[string]string{
		"binary":         bin + " (" + binVersion(ctx, bin, "version") + ")",
		"commit":         gitCommit(ctx),
		"certificates":   fmt.Sprintf("%d (%.1f%% revoked), `trustline bench populate`, ECDSA P-256 intermediate", cfg.Certs, 100*cfg.Revoked),
		"server":         fmt.Sprintf("`trustline dev --redis` (store: %s; presign.hash_algs [%s]; file keys), ephemeral loopback ports", store, cfg.HashAlgs),
		"redis":          binVersion(ctx, redisBin, "--version") + ", private, on a free port, no persistence, maxmemory-policy noeviction",
		"load generator": "in this process, on the same machine, unpinned",
		"durations":      fmt.Sprintf("%v measured after %v warm-up per OCSP run", cfg.Duration, cfg.Warmup),
	}
	return h.finish(sc.s, cfg.Out, cfg.Name, sc.run(ctx, redisBin))
}

// newRedisHarness resolves the trustline and redis-server binaries and
// makes the scratch directory of a scenario run against dev --redis.
func newRedisHarness(bin, redis, scenario string, stderr io.Writer) (*harness, string, error) {
	bin, err := resolveBin(bin)
	if err != nil {
		return nil, "", err
	}
	redisBin, err := exec.LookPath(redis)
	if err != nil {
		return nil, "", fmt.Errorf("bench: %s needs redis-server (--redis-server): %w", scenario, err)
	}
	h, err := newHarness(bin, "trustline-"+scenario+"-", stderr)
	return h, redisBin, err
}

// finish closes s, the result of a run that ended with err, and writes it
// as <out>/<name>.json and .md; it returns err and any writing error.
func (h *harness) finish(s *Suite, out, name string, err error) error {
	s.Machine.finish()
	s.Finished = time.Now().UTC()
	jsonPath := filepath.Join(out, name+".json")
	mdPath := filepath.Join(out, name+".md")
	if werr := writeJSON(jsonPath, s); werr != nil {
		return errors.Join(err, werr)
	}
	if werr := WriteMarkdown(mdPath, s); werr != nil {
		return errors.Join(err, werr)
	}
	h.say("wrote %s and %s", jsonPath, mdPath)
	return err
}

// scale is one RunScaleConfig.
type scale struct {
	cfg    ScaleConfig
	h      *harness
	data   string
	s      *Suite
	stdout io.Writer
	redis  string     // host:port of the private Redis
	edge   string     // base URL of the Varnish edge, if any
	mu     sync.Mutex // s.Setup, s.Notes and failed, written by profiles too
	dev    *proc
	log    *devLog
	urls   devURLs
	failed []error
}

// phase records one phase's duration and figures.
func (sc *scale) phase(name string, took time.Duration, figures map[string]float64) {
	if figures == nil {
		figures = map[string]float64{}
	}
	figures["seconds"] = round(took.Seconds(), 2)
	sc.s.Phases = append(sc.s.Phases, Phase{Name: name, Figures: figures})
	sc.h.say("%s: %v", name, figures)
}

// note records a phase or run that did not complete.
func (sc *scale) note(what string, err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.h.say("%s: %v", what, err)
	sc.s.Notes = append(sc.s.Notes, fmt.Sprintf("%s did not complete: %v", what, err))
	sc.failed = append(sc.failed, fmt.Errorf("%s: %w", what, err))
}

func (sc *scale) run(ctx context.Context, redisBin string) error {
	if err := sc.populate(ctx); err != nil {
		return err
	}
	if _, err := sc.startRedis(ctx, redisBin); err != nil {
		return err
	}
	before, _ := redisMemory(ctx, sc.redis)
	if err := sc.rebuild(ctx, before); err != nil {
		return err
	}
	sc.crlRound(ctx)
	sc.signingRate(ctx)
	sc.ocspRuns(ctx)
	sc.storm(ctx)
	sc.resources(ctx)
	sc.h.stop(sc.dev)
	return errors.Join(sc.failed...)
}

func (sc *scale) populate(ctx context.Context) error {
	sc.h.say("populating %d certificates", sc.cfg.Certs)
	args := []string{"bench", "populate", "--data", sc.data, "--certs", strconv.Itoa(sc.cfg.Certs),
		"--revoked-fraction", strconv.FormatFloat(sc.cfg.Revoked, 'f', -1, 64)}
	if sc.cfg.Postgres != "" {
		args = append(args, "--postgres", sc.cfg.Postgres)
	}
	cmd := exec.CommandContext(ctx, sc.h.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: bench populate: %w\n%s", err, tail(out.String(), 2000))
	}
	took := time.Since(t0)
	f := map[string]float64{"certificates": float64(sc.cfg.Certs), "certificates_per_sec": round(float64(sc.cfg.Certs)/took.Seconds(), 0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		f["peak_rss_mib"] = round(float64(ru.Maxrss)/1024, 1) // Linux: KiB
	}
	sc.phase("populate", took, f)
	return nil
}

// startRedis starts an empty redis-server on a free port (sc.redis).
func (sc *scale) startRedis(ctx context.Context, bin string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sc.redis = "127.0.0.1:" + strconv.Itoa(port)
	return sc.startRedisAt(ctx, bin)
}

// startRedisAt starts an empty redis-server on sc.redis: first, or again
// after it was killed.
func (sc *scale) startRedisAt(ctx context.Context, bin string) (*proc, error) {
	_, port, _ := strings.Cut(sc.redis, ":")
	p, err := sc.h.start("redis-server", "", bin, "--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", sc.h.work)
	if err != nil {
		return nil, err
	}
	return p, waitTCP(ctx, p, sc.redis, 20*time.Second)
}

// edgeVCL caches dev's CRL origin (TTL from its Cache-Control) and
// obeys PURGE of a URL and BAN of a Surrogate-Key from localhost, as
// docs/cdn.md's VCL does.
const edgeVCL = `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "%d"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
	if (req.method == "PURGE") {
		if (client.ip !~ purgers) { return (synth(405)); }
		return (purge);
	}
	if (req.method == "BAN") {
		if (client.ip !~ purgers || req.http.Surrogate-Key !~ "^[a-z0-9-]+$") { return (synth(405)); }
		ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.Surrogate-Key + "(\s|$)");
		return (synth(200, "Banned"));
	}
}
`

// startVarnish starts varnishd on a free port in front of a free port for
// dev's CRL origin, and returns the latter (host:port).
func (sc *scale) startVarnish(ctx context.Context) (string, error) {
	originPort, err := freePort()
	if err != nil {
		return "", err
	}
	edgePort, err := freePort()
	if err != nil {
		return "", err
	}
	vcl := filepath.Join(sc.h.work, "edge.vcl")
	if err := os.WriteFile(vcl, fmt.Appendf(nil, edgeVCL, originPort), 0o600); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	edge := "127.0.0.1:" + strconv.Itoa(edgePort)
	p, err := sc.h.start("varnishd", "", sc.cfg.Varnish, "-F", "-n", filepath.Join(sc.h.work, "varnish"), "-a", edge,
		"-f", vcl, "-s", "malloc,256m", "-j", "none", "-T", "none")
	if err != nil {
		return "", err
	}
	if err := waitTCP(ctx, p, edge, 30*time.Second); err != nil {
		return "", err
	}
	sc.edge = "http://" + edge
	sc.s.Setup["edge"] = binVersion(ctx, sc.cfg.Varnish, "-V") + " in front of dev's CRL origin, purged by dev on each publication"
	return "127.0.0.1:" + strconv.Itoa(originPort), nil
}

// edgeObjectsPurged reads how many cached objects the edge's purges
// removed (varnishstat MAIN.n_obj_purged): a purge whose Host or path
// missed the cached CRL removes nothing.
func (sc *scale) edgeObjectsPurged(ctx context.Context) (float64, error) {
	stat := filepath.Join(filepath.Dir(sc.cfg.Varnish), "varnishstat")
	if _, err := os.Stat(stat); err != nil {
		stat = "varnishstat"
	}
	out, err := exec.CommandContext(ctx, stat, "-n", filepath.Join(sc.h.work, "varnish"), "-1", "-f", "MAIN.n_obj_purged").Output()
	if err != nil {
		return 0, fmt.Errorf("bench: varnishstat: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "MAIN.n_obj_purged" {
		return 0, fmt.Errorf("bench: varnishstat printed %q", clip(string(out), 200))
	}
	return strconv.ParseFloat(f[1], 64)
}

// rebuild starts dev on the populated store and waits for its warm
// rebuild of the response cache.
func (sc *scale) rebuild(ctx context.Context, redisBefore map[string]float64) error {
	cfgPath := filepath.Join(sc.h.work, "dev.yaml")
	algs := strings.Split(sc.cfg.HashAlgs, ",")
	y := "presign:\n  hash_algs: [" + strings.Join(algs, ", ") + "]\n"
	if sc.cfg.PresignWorkers > 0 {
		y += "  workers: " + strconv.Itoa(sc.cfg.PresignWorkers) + "\n"
	}
	crlAddr := "127.0.0.1:0"
	if sc.cfg.Varnish != "" {
		var err error
		if crlAddr, err = sc.startVarnish(ctx); err != nil {
			return err
		}
		y += "purge:\n  caches: [" + sc.edge + "]\n"
	}
	// The write load is one subscriber ordering and validating as fast as
	// --issue-rate asks: its per-account limits are lifted.
	y += benchRateLimits
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	args := []string{"dev", "--config", cfgPath, "--data", sc.data, "--redis", "redis://" + sc.redis + "/0",
		"--api", "127.0.0.1:0", "--ocsp", "127.0.0.1:0", "--crl", crlAddr}
	if sc.cfg.Profile > 0 {
		args = append(args, "--debug-addr", "127.0.0.1:0")
	}
	if sc.cfg.Postgres != "" {
		args = append(args, "--postgres", sc.cfg.Postgres)
	}
	p, err := sc.h.start("trustline dev", "", append([]string{sc.h.bin}, args...)...)
	if err != nil {
		return err
	}
	sc.dev = p
	sc.log = followDevLog(p)
	kv, err := sc.log.wait(ctx, 5*time.Minute, func(l *devLog) map[string]string { return l.ready })
	if err != nil {
		return err
	}
	sc.urls = devURLs{api: kv["api"], ocsp: kv["ocsp"], crl: kv["crl"]}
	sc.h.say("trustline dev ready (pid %d); waiting for the rebuild", p.cmd.Process.Pid)
	var profiled sync.WaitGroup
	if sc.cfg.Profile > 0 {
		profiled.Go(func() { sc.profile(ctx, "rebuild", sc.cfg.Profile) })
	}
	defer profiled.Wait()
	rb, err := sc.log.wait(ctx, 2*time.Hour, func(l *devLog) map[string]string { return l.rebuilt })
	if err != nil {
		return err
	}
	secs, _ := strconv.ParseFloat(rb["seconds"], 64)
	certs, _ := strconv.ParseFloat(rb["certificates"], 64)
	resps, _ := strconv.ParseFloat(rb["responses"], 64)
	f := map[string]float64{"certificates": certs, "responses": resps}
	if secs > 0 {
		f["certificates_per_sec"] = round(certs/secs, 0)
		f["responses_per_sec"] = round(resps/secs, 0)
	}
	if after, err := redisMemory(ctx, sc.redis); err == nil && resps > 0 {
		used := after["used_memory"] - redisBefore["used_memory"]
		f["redis_used_memory_mib"] = round(after["used_memory"]/(1<<20), 1)
		f["redis_used_memory_rss_mib"] = round(after["used_memory_rss"]/(1<<20), 1)
		f["redis_bytes_per_response"] = round(used/resps, 1)
		f["redis_bytes_per_certificate"] = round(used/certs, 1)
	} else if err != nil {
		sc.note("reading Redis memory", err)
	}
	sc.phase("rebuild", time.Duration(secs*float64(time.Second)), f)
	return nil
}

// profile saves a CPU profile of dev taken for d from now, for phase:
// <Out>/<Name>-<phase>.pprof.
func (sc *scale) profile(ctx context.Context, phase string, d time.Duration) {
	sc.log.mu.Lock()
	base := sc.log.debug
	sc.log.mu.Unlock()
	what := phase + " profile"
	if base == "" {
		sc.note(what, errors.New("dev printed no profiler address"))
		return
	}
	url := fmt.Sprintf("%sprofile?seconds=%d", base, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		sc.note(what, err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		sc.note(what, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err != nil {
		sc.note(what, err)
		return
	}
	path := filepath.Join(sc.cfg.Out, sc.cfg.Name+"-"+phase+".pprof")
	if err := writeFileAtomic(path, b); err != nil {
		sc.note(what, err)
		return
	}
	sc.mu.Lock()
	sc.s.Setup[what] = fmt.Sprintf("`go tool pprof -top %s %s` (%v of CPU from the %s's start)", sc.h.bin, path, d, phase)
	sc.mu.Unlock()
}

// crlRound waits until every shard has been published once since dev
// started, and reports how long that took and the largest shard.
func (sc *scale) crlRound(ctx context.Context) {
	t0 := sc.log.started
	_, err := sc.log.wait(ctx, 10*time.Minute, func(l *devLog) map[string]string {
		if l.crlShards > 0 && len(l.crlFirst) >= l.crlShards {
			return map[string]string{}
		}
		return nil
	})
	if err != nil {
		sc.note("first CRL round", err)
		return
	}
	sc.log.mu.Lock()
	last, entries := t0, 0.0
	for _, at := range sc.log.crlFirst {
		if at.After(last) {
			last = at
		}
	}
	for _, n := range sc.log.crlEntries {
		entries = max(entries, n)
	}
	shards := len(sc.log.crlFirst)
	sc.log.mu.Unlock()
	sc.phase("crl-first-round", last.Sub(t0), map[string]float64{"shards": float64(shards), "max_entries_per_shard": entries})
}

// signingRate measures the raw signing rate of the responder keys on
// every core, the rebuild's ceiling.
func (sc *scale) signingRate(ctx context.Context) {
	sc.h.say("measuring the raw signing rate")
	r, err := Presign(ctx, PresignConfig{Name: "raw-signing", DataDir: sc.data, Postgres: sc.cfg.Postgres, Responses: 200_000,
		Workers: runtime.GOMAXPROCS(0), VerifyEvery: 100, MaxCerts: 100_000}, PresignDeps{}, time.Now, rand.Reader)
	if r != nil {
		r.WriteSummary(sc.stdout)
		sc.s.Runs = append(sc.s.Runs, r)
		if rb := sc.s.phase("rebuild"); rb != nil && r.RequestsPerSec > 0 {
			rb.Figures["raw_signing_per_sec"] = round(r.RequestsPerSec, 0)
			rb.Figures["fraction_of_raw_signing"] = round(rb.Figures["responses_per_sec"]/r.RequestsPerSec, 3)
		}
	}
	if err != nil {
		sc.note("raw-signing", err)
	}
}

func (sc *scale) ocspRuns(ctx context.Context) {
	load := LoadConfig{Duration: sc.cfg.Duration, Warmup: sc.cfg.Warmup, Concurrency: sc.cfg.Concurrency}
	whole := min(sc.cfg.Certs, scaleUniformCerts)
	plain := Mix{Method: "get", GetEncoding: "raw", Seed: 1}
	zipf := Mix{Method: "get", GetEncoding: "raw", Zipf: 1, Seed: 2}
	runs := []struct {
		name  string
		certs int
		mix   Mix
	}{
		{"ocsp-uniform", whole, plain},
		{"ocsp-hot", sc.cfg.Hot, plain},
		{"ocsp-zipf", whole, zipf},
	}
	rates := map[string]float64{}
	for _, rn := range runs {
		if ctx.Err() != nil {
			sc.note(rn.name, ctx.Err())
			continue
		}
		sc.h.say("running %s over %d certificates", rn.name, rn.certs)
		var profiled sync.WaitGroup
		if rn.name == "ocsp-uniform" && sc.cfg.Profile > 0 {
			// dev is idle while the generator builds its corpus, then
			// serves the warm-up and the measured part.
			profiled.Go(func() { sc.profile(ctx, "uniform", min(sc.cfg.Profile, time.Minute)) })
		}
		l1Before := sc.l1(ctx)
		r, err := OCSP(ctx, OCSPConfig{Name: rn.name, Target: sc.urls.ocsp, DataDir: sc.data, Postgres: sc.cfg.Postgres, Load: load,
			Mix: rn.mix, VerifyEvery: 100, Timeout: 5 * time.Second, MaxCerts: rn.certs}, time.Now)
		profiled.Wait() // before the next run: the profile is of this one
		if r != nil {
			l1After := sc.l1(ctx)
			if hits, misses := l1After[0]-l1Before[0], l1After[1]-l1Before[1]; hits+misses > 0 {
				r.Figures["l1_hit_ratio"] = round(hits/(hits+misses), 4)
			}
			r.Figures["certificates"] = float64(rn.certs)
			r.WriteSummary(sc.stdout)
			sc.s.Runs = append(sc.s.Runs, r)
			rates[rn.name] = r.RequestsPerSec
		}
		if err != nil {
			sc.note(rn.name, err)
		}
	}
	if rates["ocsp-hot"] > 0 {
		sc.s.Setup["uniform ÷ hot-set rate"] = strconv.FormatFloat(round(rates["ocsp-uniform"]/rates["ocsp-hot"], 3), 'f', -1, 64)
	}
}

// l1 reads the responder's L1 hits and misses from dev's metrics.
func (sc *scale) l1(ctx context.Context) [2]float64 {
	var out [2]float64
	sc.metrics(ctx, "trustline_ocsp_lookups_total{", func(labels string, v float64) {
		switch {
		case !strings.Contains(labels, `tier="l1"`):
		case strings.Contains(labels, `result="hit"`):
			out[0] = v
		case strings.Contains(labels, `result="miss"`):
			out[1] = v
		}
	})
	return out
}

// metrics calls each with the labels and value of every sample in dev's
// metrics whose line starts with prefix; best effort.
func (sc *scale) metrics(ctx context.Context, prefix string, each func(labels string, v float64)) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sc.urls.api+"/metrics", nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		sp := strings.LastIndexByte(line, ' ')
		if !strings.HasPrefix(line, prefix) || sp < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[sp+1:], 64); err == nil {
			each(line[len(prefix):sp], v)
		}
	}
}

func (sc *scale) storm(ctx context.Context) {
	if sc.cfg.Storm == 0 || ctx.Err() != nil {
		return
	}
	target, at := sc.urls.crl, "the origin"
	if sc.edge != "" {
		u, err := url.Parse(sc.urls.crl)
		if err != nil {
			sc.note("crl-storm", err)
			return
		}
		target, at = sc.edge+u.EscapedPath(), "a Varnish edge purged by dev"
	}
	sc.h.say("revocation storm: %d revocations, CRLs fetched from %s", sc.cfg.Storm, at)
	sc.mu.Lock()
	sc.s.Setup["crl storm"] = fmt.Sprintf("%d revocations; 50 pollers per shard fetch the CRLs from %s (%s)", sc.cfg.Storm, at, target)
	sc.mu.Unlock()
	if sc.cfg.Profile > 0 {
		var profiled sync.WaitGroup
		profiled.Go(func() { sc.profile(ctx, "storm", min(sc.cfg.Profile, 30*time.Second)) })
		defer profiled.Wait()
	}
	l := LoadConfig{Duration: 2 * time.Minute, Warmup: 2 * time.Second, Concurrency: 8}
	r, err := CRL(ctx, CRLConfig{Name: "crl-storm", Target: target, DataDir: sc.data, Postgres: sc.cfg.Postgres, Edges: 50, Load: l,
		Conditional: "etag", Timeout: 10 * time.Second, Storm: sc.cfg.Storm, StormPoll: time.Second, Seed: 1}, time.Now)
	if r != nil {
		if sc.edge != "" {
			sc.edgeFigures(ctx, r)
		}
		r.WriteSummary(sc.stdout)
		sc.s.Runs = append(sc.s.Runs, r)
	}
	if err != nil {
		sc.note("crl-storm", err)
	}
}

// edgeFigures adds to the storm's run dev's purges by result and the
// cached objects Varnish removed.
func (sc *scale) edgeFigures(ctx context.Context, r *Run) {
	sc.metrics(ctx, "trustline_purges_total{", func(labels string, v float64) {
		for _, res := range []string{"done", "failed", "dropped"} {
			if strings.Contains(labels, `result="`+res+`"`) {
				r.Figures["edge_purges_"+res] = v
			}
		}
	})
	if n, err := sc.edgeObjectsPurged(ctx); err == nil {
		r.Figures["edge_objects_purged"] = n
	} else {
		r.Notes = append(r.Notes, err.Error())
	}
}

// resources records the peak RSS of dev and Redis and the store's size.
func (sc *scale) resources(ctx context.Context) {
	f := map[string]float64{}
	if hwm, ok := procPeakRSS(sc.dev.cmd.Process.Pid); ok {
		f["dev_peak_rss_mib"] = round(hwm/1024, 1)
	}
	if m, err := redisMemory(ctx, sc.redis); err == nil {
		f["redis_used_memory_mib"] = round(m["used_memory"]/(1<<20), 1)
		f["redis_used_memory_peak_mib"] = round(m["used_memory_peak"]/(1<<20), 1)
		f["redis_used_memory_rss_mib"] = round(m["used_memory_rss"]/(1<<20), 1)
	}
	if sc.cfg.Postgres == "" {
		var size int64
		for _, name := range []string{"trustline.db", "trustline.db-wal"} {
			if fi, err := os.Stat(filepath.Join(sc.data, name)); err == nil {
				size += fi.Size()
			}
		}
		f["store_mib"] = round(float64(size)/(1<<20), 1)
	}
	sc.phase("resources", 0, f)
}

// procPeakRSS reads a process's peak resident set (VmHWM), in KiB.
func procPeakRSS(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// redisMemory reads INFO memory's numeric fields through redis-cli.
func redisMemory(ctx context.Context, addr string) (map[string]float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "info", "memory").Output()
	if err != nil {
		return nil, fmt.Errorf("bench: redis-cli info memory: %w", err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = f
		}
	}
	if _, ok := m["used_memory"]; !ok {
		return nil, errors.New("bench: redis-cli info memory: no used_memory")
	}
	return m, nil
}

// devLog follows a dev process's log lines for the events scale waits
// for: the rebuild's end and each CRL shard's publications.
type devLog struct {
	mu         sync.Mutex
	started    time.Time
	ready      map[string]string // the ready line's fields
	debug      string            // the profiler's base URL
	rebuilt    map[string]string
	crlShards  int                  // shards announced by the generator
	crlFirst   map[string]time.Time // first publication of each shard
	crlEntries map[string]float64
	exited     bool
	changed    chan struct{} // closed and replaced on every event
}

func followDevLog(p *proc) *devLog {
	l := &devLog{started: time.Now(), crlFirst: map[string]time.Time{}, crlEntries: map[string]float64{}, changed: make(chan struct{})}
	go func() {
		for {
			select {
			case line := <-p.lines:
				l.take(line)
			case <-p.done:
				l.mu.Lock()
				l.exited = true
				close(l.changed)
				l.changed = make(chan struct{})
				l.mu.Unlock()
				return
			}
		}
	}()
	return l
}

func (l *devLog) take(line string) {
	var kv map[string]string
	switch {
	case strings.Contains(line, `msg="OCSP response cache rebuilt"`), strings.Contains(line, `msg="CRL published"`),
		strings.Contains(line, `msg="crl generator starting"`), strings.Contains(line, `msg="trustline dev ready"`),
		strings.Contains(line, `msg="profiler listening"`):
		kv = parseLogLine(line)
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kv["msg"] {
	case "trustline dev ready":
		l.ready = kv
	case "profiler listening":
		l.debug = kv["debug"]
	case "OCSP response cache rebuilt":
		l.rebuilt = kv
	case "CRL published":
		if _, seen := l.crlFirst[kv["crl"]]; !seen {
			l.crlFirst[kv["crl"]] = time.Now()
		}
		n, _ := strconv.ParseFloat(kv["entries"], 64)
		l.crlEntries[kv["crl"]] = n
	case "crl generator starting":
		// dev's hierarchy: two intermediates (the root's CRL is signed
		// in ceremonies).
		n, _ := strconv.Atoi(kv["shards"])
		l.crlShards = 2 * n
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait returns what cond finds, waiting for events until timeout.
func (l *devLog) wait(ctx context.Context, timeout time.Duration, cond func(*devLog) map[string]string) (map[string]string, error) {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		v, ch, exited := cond(l), l.changed, l.exited
		l.mu.Unlock()
		if v != nil {
			return v, nil
		}
		if exited {
			return nil, errors.New("bench: trustline dev exited; see its log")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("bench: not seen in trustline dev's log after %v", timeout)
		}
	}
}

// RunScale is `trustline bench scale`, what `make bench-scale` runs.
func RunScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ScaleConfig
	fs.StringVar(&cfg.Bin, "bin", "", "trustline binary to populate and run (default: this one)")
	fs.StringVar(&cfg.Out, "out", "bench/results", "results directory")
	fs.StringVar(&cfg.Name, "name", "scale", "file stem of the results: NAME.json, NAME.md, NAME-*.png")
	fs.IntVar(&cfg.Certs, "certs", 1_000_000, "certificates to populate")
	fs.Float64Var(&cfg.Revoked, "revoked-fraction", 0.01, "share populated revoked")
	fs.StringVar(&cfg.HashAlgs, "hash-algs", "sha1", "presign.hash_algs of the server, comma-separated")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL URL of an empty database for the store (default: SQLite)")
	fs.StringVar(&cfg.Redis, "redis-server", "redis-server", "redis-server binary, started on a free port")
	fs.DurationVar(&cfg.Duration, "duration", 15*time.Second, "measured duration of each OCSP run")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before each OCSP run")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "OCSP connections")
	fs.IntVar(&cfg.Hot, "hot", 1000, "certificates of the hot-set OCSP run")
	fs.IntVar(&cfg.Storm, "storm", 1000, "revocations in the CRL storm (0: none)")
	fs.DurationVar(&cfg.Profile, "profile", 0, "CPU profiles of dev: this long from the rebuild's start (NAME-rebuild.pprof), up to 60 s from the uniform OCSP run's (NAME-uniform.pprof) and 30 s from the storm's (NAME-storm.pprof); 0: none")
	fs.StringVar(&cfg.Varnish, "varnish", "varnishd", `varnishd binary: the storm is measured through a Varnish edge ("none": at the origin)`)
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (data dir and server logs)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	switch cfg.Varnish {
	case "none", "":
		cfg.Varnish = ""
	default:
		bin, err := lookVarnishd(cfg.Varnish)
		if err != nil {
			return fmt.Errorf("bench: scale measures the storm through Varnish: %w (Debian package varnish; --varnish none measures at the origin)", err)
		}
		cfg.Varnish = bin
	}
	return RunScaleConfig(ctx, cfg, stdout, stderr)
}

// lookVarnishd finds varnishd on PATH or in /usr/sbin, where Debian puts
// it and a user's PATH may not reach.
func lookVarnishd(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil && !strings.ContainsRune(name, '/') {
		if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
			return "/usr/sbin/" + name, nil
		}
	}
	return bin, err
}
