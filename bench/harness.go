package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// harness runs the processes of `make bench` and `make bench-peers`: the
// trustline binary's populate and dev commands and the peers. Every
// process it starts is stopped by its PID before it returns.
type harness struct {
	bin   string // the trustline binary
	work  string // scratch directory: data dirs and logs
	log   io.Writer
	procs []*proc
}

// newHarness makes a scratch directory for one run of servers.
func newHarness(bin, prefix string, log io.Writer) (*harness, error) {
	work, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &harness{bin: bin, work: work, log: log}, nil
}

// close stops every process the harness started and removes its scratch
// directory, unless keep asks to leave it for inspection.
func (h *harness) close(keep bool, what string) {
	h.stopAll()
	if keep {
		h.say("kept %s%s", h.work, what)
		return
	}
	os.RemoveAll(h.work)
}

func (h *harness) say(format string, args ...any) {
	fmt.Fprintf(h.log, "bench: "+format+"\n", args...)
}

// populate fills a fresh data dir with certificates, through the same
// binary (the bench package does not sign certificates itself).
func (h *harness) populate(ctx context.Context, dataDir string, certs int, revoked float64) error {
	h.say("populating %s with %d certificates", dataDir, certs)
	cmd := exec.CommandContext(ctx, h.bin, "bench", "populate", "--data", dataDir, "--certs", strconv.Itoa(certs),
		"--revoked-fraction", strconv.FormatFloat(revoked, 'f', -1, 64))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: %s bench populate: %w\n%s", h.bin, err, tail(out.String(), 2000))
	}
	h.say("%s", strings.TrimSpace(lastLine(out.String())))
	return nil
}

// benchRateLimits is a dev configuration lifting the limits a bench's one
// subscriber would hit (orders, validations, sign-ups from loopback).
const benchRateLimits = "rate_limits:\n  orders_per_account: {max: -1}\n  validations_per_account: {max: -1}\n" +
	"  validations_per_domain: {max: -1}\n  pending_validations_per_account: -1\n  signups_per_source: {max: -1}\n"

// devURLs are the listeners `trustline dev` reported ready on.
type devURLs struct{ api, ocsp, crl string }

// startDev starts `trustline dev` on dataDir with ephemeral ports (pinned
// to cpus when set) and waits for its ready line and /healthz.
func (h *harness) startDev(ctx context.Context, dataDir, cpus string) (devURLs, *proc, error) {
	// The benches drive one subscriber as fast as they can: its
	// per-account limits are lifted.
	cfg := filepath.Join(h.work, "dev-limits.yaml")
	if err := os.WriteFile(cfg, []byte(benchRateLimits), 0o600); err != nil {
		return devURLs{}, nil, fmt.Errorf("bench: %w", err)
	}
	p, err := startProc("trustline dev", filepath.Join(h.work, "dev-"+strconv.Itoa(len(h.procs))+".log"), cpus,
		h.bin, "dev", "--config", cfg, "--data", dataDir, "--api", "127.0.0.1:0", "--ocsp", "127.0.0.1:0", "--crl", "127.0.0.1:0")
	if err != nil {
		return devURLs{}, nil, err
	}
	h.procs = append(h.procs, p)
	kv, err := p.waitLine(60*time.Second, readyLine("trustline dev ready", "api", "ocsp", "crl"))
	if err != nil {
		return devURLs{}, p, err
	}
	u := devURLs{api: kv["api"], ocsp: kv["ocsp"], crl: kv["crl"]}
	if err := waitHTTP(ctx, u.api+"/healthz", 30*time.Second); err != nil {
		return u, p, err
	}
	h.say("trustline dev ready (pid %d): api %s ocsp %s crl %s", p.cmd.Process.Pid, u.api, u.ocsp, u.crl)
	return u, p, nil
}

// start starts another server process and remembers it for stopAll.
func (h *harness) start(name, cpus string, argv ...string) (*proc, error) {
	logName := strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' {
			return '-'
		}
		return r
	}, name)
	p, err := startProc(name, filepath.Join(h.work, logName+".log"), cpus, argv...)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	return p, nil
}

// stop stops one process by PID.
func (h *harness) stop(p *proc) {
	if p == nil {
		return
	}
	if err := p.stop(15 * time.Second); err != nil {
		h.say("%v", err)
	}
}

// stopAll stops every process still running, by PID.
func (h *harness) stopAll() {
	for _, p := range h.procs {
		h.stop(p)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// gitCommit names the checked-out commit of the working directory, best
// effort, for the report's setup.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// binVersion asks a binary for its version line, best effort.
func binVersion(ctx context.Context, argv ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(firstLine(string(out)))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// resolveBin finds the trustline binary: the flag, else this executable.
func resolveBin(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("bench: finding the trustline binary (give --bin): %w", err)
	}
	return p, nil
}
