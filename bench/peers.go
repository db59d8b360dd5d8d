package bench

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/status"
)

// PeerResult is one server's line in the peer comparison.
type PeerResult struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Command string `json:"command"`
	// RequestsPerSec counts every answer, right or wrong; Errors says
	// how many were wrong (or failed).
	RequestsPerSec float64          `json:"requests_per_sec"`
	VsFloor        float64          `json:"ratio_to_floor"`
	VsTrustline    float64          `json:"ratio_to_trustline"`
	Errors         int64            `json:"errors"`
	ErrorsByKind   map[string]int64 `json:"errors_by_kind"`
	Verified       int64            `json:"verified"`
	LatencyP50Ms   float64          `json:"latency_p50_ms"`
	LatencyP99Ms   float64          `json:"latency_p99_ms"`
	Notes          []string         `json:"notes,omitempty"`
}

// PeersConfig configures `make bench-peers`.
type PeersConfig struct {
	Bin, Out, Name string
	Certs          int
	Duration       time.Duration
	Warmup         time.Duration
	Concurrency    int
	// ServerCPUs and LoadCPUs are taskset CPU lists: every server runs
	// pinned to ServerCPUs, the load generator to LoadCPUs. Empty: no
	// pinning.
	ServerCPUs, LoadCPUs string
	// CFSSL and OpenSSL are the peers' binaries; empty skips that peer.
	CFSSL, OpenSSL string
	Peers          []string // which servers, in order
	Keep           bool
}

// peerNames are the servers compared, in the order they run.
var peerNames = [...]string{"floor", "trustline", "cfssl", "openssl"}

// RunPeersConfig compares Trustline's responder with the floor server,
// cfssl ocspserve and openssl ocsp on the same certificates, one server
// at a time, under the same load and pinning, and writes <Out>/<Name>.json
// and .md. The floor and cfssl serve the very same pre-signed responses
// (signed once with DIR's delegated responder key, as Trustline's
// pipeline signs); openssl signs each answer with that key; Trustline
// serves its own pipeline's responses.
func RunPeersConfig(ctx context.Context, cfg PeersConfig, stdout, stderr io.Writer) error {
	if cfg.Certs < 100 || cfg.Duration < time.Second || cfg.Concurrency < 1 {
		return errors.New("bench: peers: --certs ≥ 100, --duration ≥ 1s and --concurrency ≥ 1, please")
	}
	bin, err := resolveBin(cfg.Bin)
	if err != nil {
		return err
	}
	if cfg.ServerCPUs != "" || cfg.LoadCPUs != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("bench: peers: pinning needs taskset (util-linux), or pass --server-cpus '' --load-cpus '': %w", err)
		}
	}
	h, err := newHarness(bin, "trustline-peers-", stderr)
	if err != nil {
		return err
	}
	defer h.close(cfg.Keep, "")
	work := h.work
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()

	data := filepath.Join(work, "data")
	if err := h.populate(ctx, data, cfg.Certs, 0.05); err != nil {
		return err
	}
	h.say("signing the shared responses")
	pairs, issuers, err := loadPairs(ctx, data, "", cfg.Certs, false, time.Now())
	if err != nil {
		return err
	}
	pairsFile := filepath.Join(work, "pairs.txt")
	cfsslFile := filepath.Join(work, "cfssl-responses.txt")
	if err := os.WriteFile(pairsFile, formatPairs(pairs), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := writeCFSSLResponses(cfsslFile, pairs); err != nil {
		return err
	}

	s := &Suite{Title: "OCSP responders compared", Started: time.Now().UTC(), Machine: DescribeMachine(),
		Setup: map[string]string{
			"certificates": fmt.Sprintf("%d (5%% revoked), one ECDSA P-256 intermediate, delegated P-256 responder", cfg.Certs),
			"load": fmt.Sprintf("`trustline bench ocsp`: closed loop, %d connections, GET, SHA-1 CertIDs, uniform popularity, %v measured after %v warm-up",
				cfg.Concurrency, cfg.Duration, cfg.Warmup),
			"pinning": fmt.Sprintf("server on CPUs %q, load generator on CPUs %q (taskset)", cfg.ServerCPUs, cfg.LoadCPUs),
			"commit":  gitCommit(ctx),
		}}
	var failed []error
	for _, name := range cfg.Peers {
		h.say("peer %s", name)
		pr, run, err := runPeer(ctx, h, cfg, name, data, pairsFile, cfsslFile, issuers)
		if err != nil {
			h.say("peer %s: %v", name, err)
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
			s.Notes = append(s.Notes, fmt.Sprintf("%s did not run: %v", name, err))
			continue
		}
		run.WriteSummary(stdout)
		s.Runs = append(s.Runs, run)
		s.Peers = append(s.Peers, *pr)
	}
	ratios(s.Peers)
	s.Machine.finish()
	s.Finished = time.Now().UTC()
	if err := writeJSON(filepath.Join(cfg.Out, cfg.Name+".json"), s); err != nil {
		return err
	}
	if err := WriteMarkdown(filepath.Join(cfg.Out, cfg.Name+".md"), s); err != nil {
		return err
	}
	for _, p := range s.Peers {
		fmt.Fprintf(stdout, "%-10s %9.0f req/s  ×floor %s  ×trustline %s  errors %d\n", p.Name, p.RequestsPerSec,
			ratio(p.VsFloor), ratio(p.VsTrustline), p.Errors)
	}
	h.say("wrote %s.json and .md in %s", cfg.Name, cfg.Out)
	return errors.Join(failed...)
}

// ratios fills each peer's throughput relative to the floor and to
// Trustline.
func ratios(peers []PeerResult) {
	var floorRate, tlRate float64
	for _, p := range peers {
		switch p.Name {
		case "floor":
			floorRate = p.RequestsPerSec
		case "trustline":
			tlRate = p.RequestsPerSec
		}
	}
	for i := range peers {
		if floorRate > 0 {
			peers[i].VsFloor = round(peers[i].RequestsPerSec/floorRate, 3)
		}
		if tlRate > 0 {
			peers[i].VsTrustline = round(peers[i].RequestsPerSec/tlRate, 3)
		}
	}
}

// runPeer starts one server pinned, loads it from a pinned `trustline
// bench ocsp` process, and stops the server by PID.
func runPeer(ctx context.Context, h *harness, cfg PeersConfig, name, data, pairsFile, cfsslFile string,
	issuers map[issuerid.ID]*Issuer) (*PeerResult, *Run, error) {
	pr := &PeerResult{Name: name}
	var (
		target string
		p      *proc
		err    error
	)
	switch name {
	case "floor":
		argv := []string{h.bin, "bench", "floor", "--pairs", pairsFile, "--listen", "127.0.0.1:0"}
		pr.Command, pr.Version = strings.Join(argv[1:], " "), "responder/floor ("+binVersion(ctx, h.bin, "version")+")"
		pr.Notes = append(pr.Notes, "map lookup of the raw request, fasthttp: the ceiling")
		if p, err = h.start(name, cfg.ServerCPUs, argv...); err == nil {
			var kv map[string]string
			if kv, err = p.waitLine(2*time.Minute, readyLine("floor ready", "addr")); err == nil {
				target = kv["addr"]
			}
		}
	case "trustline":
		var u devURLs
		u, p, err = h.startDev(ctx, data, cfg.ServerCPUs)
		target = u.ocsp
		pr.Command, pr.Version = "trustline dev (OCSP listener)", binVersion(ctx, h.bin, "version")
		pr.Notes = append(pr.Notes, "the whole dev process is pinned (API, CRL generator and pipeline idle during the run)")
	case "cfssl":
		if cfg.CFSSL == "" {
			return nil, nil, errors.New("no cfssl binary given (--cfssl); bench/scripts/peers.sh installs v1.6.5")
		}
		port, perr := freePort()
		if perr != nil {
			return nil, nil, perr
		}
		argv := []string{cfg.CFSSL, "ocspserve", "-address", "127.0.0.1", "-port", strconv.Itoa(port), "-responses", cfsslFile, "-loglevel", "4"}
		pr.Command, pr.Version = "cfssl ocspserve -responses FILE", goModuleVersion(cfg.CFSSL)
		pr.Notes = append(pr.Notes, "same pre-signed responses as the floor (SHA-1 only: cfssl keys them by serial alone)",
			"its http.ServeMux answers 301 to GET paths whose base64 holds \"//\" (about 1 request in 140), counted as errors")
		if p, err = h.start(name, cfg.ServerCPUs, argv...); err == nil {
			target = "http://127.0.0.1:" + strconv.Itoa(port)
			err = waitTCP(ctx, p, "127.0.0.1:"+strconv.Itoa(port), 2*time.Minute)
		}
	case "openssl":
		if cfg.OpenSSL == "" {
			return nil, nil, errors.New("no openssl binary given (--openssl)")
		}
		var argv []string
		if argv, err = opensslArgs(cfg.OpenSSL, h.work, data, issuers); err != nil {
			return nil, nil, err
		}
		port, perr := freePort()
		if perr != nil {
			return nil, nil, perr
		}
		argv = append(argv, "-port", strconv.Itoa(port))
		pr.Command, pr.Version = "openssl ocsp -index -rsigner -rkey -resp_key_id", binVersion(ctx, cfg.OpenSSL, "version")
		pr.Notes = append(pr.Notes, "signs every answer (P-256) with the same delegated responder key; one process, HTTP/1.0 (a connection per request), listens on all interfaces",
			"under many connections it now and then answers 400 with its OCSP response inside the body, counted as errors")
		if p, err = h.start(name, cfg.ServerCPUs, argv...); err == nil {
			target = "http://127.0.0.1:" + strconv.Itoa(port)
			// Not a TCP probe: openssl ocsp 3.0 waits forever on a
			// connection that closes without a request.
			_, err = p.waitLine(2*time.Minute, func(line string) (map[string]string, bool) {
				return nil, strings.Contains(line, "waiting for OCSP client connections")
			})
		}
	default:
		return nil, nil, fmt.Errorf("unknown peer %q", name)
	}
	defer h.stop(p)
	if err != nil {
		return nil, nil, err
	}
	run, err := loadProcess(ctx, h, cfg, name, target, data)
	if err != nil {
		return nil, nil, err
	}
	pr.RequestsPerSec, pr.Errors, pr.ErrorsByKind, pr.Verified = run.RequestsPerSec, run.Errors, run.ErrorsByKind, run.Verified
	pr.LatencyP50Ms, pr.LatencyP99Ms = run.LatencyP50Ms, run.LatencyP99Ms
	if run.Errors > 0 {
		var kinds []string
		for k, v := range run.ErrorsByKind {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		}
		pr.Notes = append(pr.Notes, "errors: "+strings.Join(kinds, ", "))
	}
	return pr, run, nil
}

// loadProcess runs `trustline bench ocsp` as its own pinned process and
// reads its JSON.
func loadProcess(ctx context.Context, h *harness, cfg PeersConfig, name, target, data string) (*Run, error) {
	out := filepath.Join(h.work, "load-"+name+".json")
	argv := []string{h.bin, "bench", "ocsp", "--target", target, "--data", data, "--name", "peer-" + name,
		"--duration", cfg.Duration.String(), "--warmup", cfg.Warmup.String(), "--concurrency", strconv.Itoa(cfg.Concurrency),
		"--method", "get", "--json", out}
	if cfg.LoadCPUs != "" {
		argv = append([]string{"taskset", "-c", cfg.LoadCPUs}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	logf, err := os.Create(filepath.Join(h.work, "load-"+name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	runErr := cmd.Run()
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("bench: load against %s wrote no results (%v); see %s", name, runErr, logf.Name())
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: reading %s: %w", out, err)
	}
	return &r, nil
}

// opensslArgs writes an OpenSSL CA index of DIR's certificates (status,
// expiry, revocation, serial) and returns the `openssl ocsp` responder
// command for the one intermediate that issued them.
func opensslArgs(openssl, work, data string, issuers map[issuerid.ID]*Issuer) ([]string, error) {
	certs, err := readCerts(context.Background(), data, "", 10_000_000, time.Now())
	if err != nil {
		return nil, err
	}
	id := certs[0].IssuerID
	for _, c := range certs {
		if c.IssuerID != id {
			return nil, errors.New("bench: openssl ocsp serves one issuer; populate with one key family")
		}
	}
	is := issuers[id]
	if is == nil || is.Responder == nil {
		return nil, fmt.Errorf("bench: issuer %s has no delegated responder certificate in DIR/ca", id)
	}
	index := filepath.Join(work, "openssl-index.txt")
	if err := os.WriteFile(index, opensslIndex(certs), 0o644); err != nil {
		return nil, err
	}
	return []string{openssl, "ocsp", "-index", index, "-CA", filepath.Join(data, "ca", string(id)+".pem"),
		"-rsigner", filepath.Join(data, "ca", string(id)+"-ocsp.pem"), "-rkey", keyPath(data, id, true),
		"-resp_key_id", "-ndays", "3", "-ignore_err"}, nil
}

// opensslIndex formats certificates as an `openssl ca` index.txt:
// status, expiry, revocation time[,reason], serial (upper-case hex),
// file name, subject; tab-separated.
func opensslIndex(certs []Cert) []byte {
	var b strings.Builder
	for _, c := range certs {
		st, rev := "V", ""
		if c.Status == status.Revoked {
			st, rev = "R", c.RevokedAt.UTC().Format("060102150405Z")
			if !c.Reason.OmitOnCRL() {
				rev += "," + c.Reason.String()
			}
		}
		sn := strings.ToUpper(c.SN.Text(16))
		if len(sn)%2 == 1 {
			sn = "0" + sn
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\tunknown\t/CN=%s\n", st, c.NotAfter.UTC().Format("060102150405Z"), rev, sn, sn)
	}
	return []byte(b.String())
}

// RunPeers is `trustline bench peers`, what `make bench-peers` runs.
func RunPeers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg PeersConfig
	fs.StringVar(&cfg.Bin, "bin", "", "trustline binary (default: this one)")
	fs.StringVar(&cfg.Out, "out", "bench/results", "results directory")
	fs.StringVar(&cfg.Name, "name", "peers", "file stem of the results")
	fs.IntVar(&cfg.Certs, "certs", 10000, "certificates to populate")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration per server")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up per server")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "connections")
	serverCPUs, loadCPUs := "0", "1"
	if runtime.NumCPU() < 2 {
		serverCPUs, loadCPUs = "", ""
	}
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", serverCPUs, "taskset CPU list for the servers ('' for none)")
	fs.StringVar(&cfg.LoadCPUs, "load-cpus", loadCPUs, "taskset CPU list for the load generator ('' for none)")
	fs.StringVar(&cfg.CFSSL, "cfssl", "", "cfssl v1.6.5 binary (bench/scripts/peers.sh installs it)")
	fs.StringVar(&cfg.OpenSSL, "openssl", "openssl", "openssl binary ('' to skip)")
	peers := fs.String("peers", strings.Join(peerNames[:], ","), "servers to compare, in order")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (data dir, logs)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	for _, p := range strings.Split(*peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Peers = append(cfg.Peers, p)
		}
	}
	if cfg.OpenSSL != "" {
		if p, err := exec.LookPath(cfg.OpenSSL); err == nil {
			cfg.OpenSSL = p
		}
	}
	return RunPeersConfig(ctx, cfg, stdout, stderr)
}

// goModuleVersion is the main module version a Go binary was built from
// (`go install …@v1.6.5` leaves `cfssl version` saying "dev").
func goModuleVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return bi.Main.Path + " " + bi.Main.Version + " (" + bi.GoVersion + ")"
}
