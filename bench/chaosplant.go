package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/pgserver"
)

// The plant target of `trustline bench chaos`: instead of one dev
// process, the production roles as separate processes on loopback, as
// `make plant` runs them but smaller and private: PostgreSQL and Redis of
// their own, `trustline init`, one api, one presigner, two responders, one
// crlgen and one origin. The load goes to the first responder; the
// schedule acts on Redis and PostgreSQL as with dev. On two cores the
// roles still share the machine; what the plant shows is that the
// responder is a process of its own, so a pre-signer rebuilding a lost
// cache competes with it only for CPU, not inside one Go runtime.

// plantRoles are the roles started, in order, with the name each
// listens under.
var plantRoles = []struct{ role, name string }{
	{"api", "api"}, {"presigner", "presigner"}, {"responder", "responder-1"}, {"responder", "responder-2"},
	{"crlgen", "crlgen"}, {"origin", "origin"},
}

// startPlant initialises a plant on pg and sc.redis, populates it and
// starts its roles, then waits for the pre-signer's warm rebuild. It sets
// sc.urls: the api, the first responder's OCSP URL and the origin.
func (sc *scale) startPlant(ctx context.Context, pg *pgserver.Server) error {
	ports := map[string]int{}
	for _, r := range plantRoles {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[r.name] = p
	}
	addr := func(name string) string { return "127.0.0.1:" + strconv.Itoa(ports[name]) }
	sc.urls = devURLs{api: "http://" + addr("api"), ocsp: "http://" + addr("responder-1") + "/ocsp/", crl: "http://" + addr("origin")}
	etc := filepath.Join(sc.h.work, "etc")
	cfg := filepath.Join(etc, "trustline.yaml")
	if err := sc.runCommand(ctx, "trustline init", sc.h.bin, "init", "--dir", etc, "--postgres", pg.URL("postgres"),
		"--redis", "redis://"+sc.redis+"/0", "--ocsp-url", sc.urls.ocsp, "--crl-url", sc.urls.crl+"/crl",
		"--api-url", sc.urls.api, "--mail-dir", filepath.Join(sc.data, "mail"), "--dev-urls"); err != nil {
		return err
	}
	// Text logs, which the bench follows; the pre-signer's workers as
	// with dev (--presign-workers); CRLs a revocation triggers within 5 s.
	// The write load is one subscriber ordering and validating as fast as
	// --issue-rate asks: its per-account limits are lifted.
	if err := editPlantConfig(cfg, map[string]string{"log: json": "log: text", "    workers: 0": "    workers: " + strconv.Itoa(sc.cfg.PresignWorkers),
		"    revocation_delay: 5m0s": "    revocation_delay: 5s",
		"        max: 300":           "        max: -1", "        max: 120": "        max: -1", "        max: 30": "        max: -1",
		"    pending_validations_per_account: 300": "    pending_validations_per_account: -1"}); err != nil {
		return err
	}
	// The admin key where the benches look for it, in the data dir.
	if key, err := os.ReadFile(filepath.Join(etc, "admin.key")); err != nil {
		return fmt.Errorf("bench: %w", err)
	} else if err := os.MkdirAll(sc.data, 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	} else if err := os.WriteFile(filepath.Join(sc.data, "admin.key"), key, 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	t0 := time.Now()
	if err := sc.runCommand(ctx, "bench populate", sc.h.bin, "bench", "populate", "--config", cfg, "--data", sc.data,
		"--certs", strconv.Itoa(sc.cfg.Certs), "--revoked-fraction", strconv.FormatFloat(sc.cfg.Revoked, 'f', -1, 64)); err != nil {
		return err
	}
	sc.phase("populate", time.Since(t0), map[string]float64{"certificates": float64(sc.cfg.Certs)})
	t0 = time.Now()
	for _, r := range plantRoles {
		p, err := sc.h.start(r.name, "", sc.h.bin, r.role, "--config", cfg, "--listen", addr(r.name))
		if err != nil {
			return err
		}
		if r.role == "presigner" {
			sc.log = followDevLog(p)
		}
	}
	for _, r := range plantRoles {
		if err := waitHTTP(ctx, "http://"+addr(r.name)+"/healthz", 2*time.Minute); err != nil {
			return fmt.Errorf("bench: plant role %s: %w", r.name, err)
		}
	}
	sc.h.say("plant ready: api %s, responders %s and %s, origin %s; waiting for the pre-signer's rebuild",
		addr("api"), addr("responder-1"), addr("responder-2"), addr("origin"))
	rb, err := sc.log.wait(ctx, 2*time.Hour, func(l *devLog) map[string]string { return l.rebuilt })
	if err != nil {
		return err
	}
	resps, _ := strconv.ParseFloat(rb["responses"], 64)
	sc.phase("rebuild", time.Since(t0), map[string]float64{"responses": resps})
	return nil
}

// editPlantConfig replaces whole lines of the configuration init wrote.
func editPlantConfig(path string, lines map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	s := string(b)
	for old, repl := range lines {
		if !strings.Contains(s, "\n"+old+"\n") {
			return fmt.Errorf("bench: %s has no line %q to change (did trustline init change its output?)", path, old)
		}
		s = strings.Replace(s, "\n"+old+"\n", "\n"+repl+"\n", 1)
	}
	return os.WriteFile(path, []byte(s), 0o600)
}

// runCommand runs one command to completion, its output kept for the error.
func (sc *scale) runCommand(ctx context.Context, name string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: %s: %w\n%s", name, err, tail(out.String(), 2000))
	}
	return nil
}
