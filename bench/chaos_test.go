package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testenv"
)

func TestParseChaosSchedule(t *testing.T) {
	got, err := ParseChaosSchedule(" 8s:start:redis, 5s:kill:redis,8.5s:flushall:redis,9s:stop:postgres,")
	if err != nil {
		t.Fatal(err)
	}
	want := []ChaosAction{{5 * time.Second, "kill", "redis"}, {8 * time.Second, "start", "redis"}, {8500 * time.Millisecond, "flushall", "redis"}, {9 * time.Second, "stop", "postgres"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"", ",", "5s:kill", "5s:flushall:postgres", "5s:kill:hsm", "5s:explode:redis", "-1s:kill:redis", "soon:kill:redis", "5s:kill:redis:now"} {
		if _, err := ParseChaosSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestChaosConfigValidate(t *testing.T) {
	ok := ChaosConfig{Out: "o", Name: "n", Certs: 1000, Rate: 10, Concurrency: 1, Duration: 10 * time.Second,
		Schedule: []ChaosAction{{time.Second, "kill", "redis"}}, Mix: Mix{Method: "get", GetEncoding: "raw"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	late := ok
	late.Schedule = []ChaosAction{{10 * time.Second, "kill", "redis"}}
	if err := late.Validate(); err == nil {
		t.Error("an action at the end of the run accepted")
	}
}

// TestChaosSmoke runs `trustline bench chaos` small: Redis is killed,
// restarted empty and flushed while the open-loop mix runs. With at most
// as many requests in flight as dev's live-signing budget (4 here: two
// per core), every answer must be correct and none tryLater: the L1
// answers while Redis is gone, and what it holds stays usable after the
// restart.
func TestChaosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs trustline dev and redis-server (~30 s)")
	}
	testenv.NeedCommand(t, "redis-server")
	cfg := ChaosConfig{Certs: 2000, Revoked: 0.05, Rate: 200, Concurrency: 4, Duration: 7 * time.Second}
	run, out := runChaosSmall(t, cfg, "1s:kill:redis,3s:start:redis,3.5s:flushall:redis")
	if len(run.Events) != 3 {
		t.Errorf("events %+v, want 3", run.Events)
	}
	for _, e := range run.Events {
		if e.Err != "" {
			t.Errorf("%s %s: %s", e.Action, e.Target, e.Err)
		}
	}
	if run.Requests < 1000 || run.Errors != 0 || run.Figures["try_later"] != 0 || run.Figures["wrong_answers"] != 0 {
		t.Errorf("%d requests, %d errors %v", run.Requests, run.Errors, run.ErrorsByKind)
	}
	for _, f := range []string{"chaos.md", "chaos-chaos-over-time.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSplitRevokable(t *testing.T) {
	certs := []Cert{{Serial: "01", Status: status.Good}, {Serial: "02", Status: status.Revoked}, {Serial: "03", Status: status.Good},
		{Serial: "04", Status: status.Good}, {Serial: "05", Status: status.Revoked}}
	rest, rev := splitRevokable(certs, 2)
	serials := func(cs []Cert) (out []serial.Serial) {
		for _, c := range cs {
			out = append(out, c.Serial)
		}
		return out
	}
	if d := cmp.Diff([]serial.Serial{"04", "03"}, serials(rev)); d != "" {
		t.Errorf("revokable (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]serial.Serial{"01", "02", "05"}, serials(rest)); d != "" {
		t.Errorf("rest (-want +got):\n%s", d)
	}
}

// TestChaosStoreSmoke runs `trustline bench chaos --plant` small: the
// production roles as separate processes, with the store in a private
// PostgreSQL server that is hung (SIGSTOP) for 3 s while a subscriber
// orders and an admin revokes. Every request is answered (201, 200 or
// 503, never a timeout or a 500), the outage is seen, and afterwards
// nothing acknowledged is missing, no serial appears twice and every
// shard's CRL numbers increase; the responder answers every OCSP request
// correctly throughout.
func TestChaosStoreSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a plant of trustline processes, redis-server and a PostgreSQL server (~40 s)")
	}
	testenv.NeedCommand(t, "redis-server")
	testenv.StartPostgres(t) // only to skip or fail loudly without the server binaries
	cfg := ChaosConfig{Certs: 2000, Revoked: 0.05, Rate: 100, Concurrency: 4, Duration: 9 * time.Second, IssueRate: 3, RevokeRate: 2, Plant: true}
	run, _ := runChaosSmall(t, cfg, "2s:stop:postgres,5s:cont:postgres")
	f := run.Figures
	if run.Errors != 0 {
		t.Errorf("OCSP errors %v", run.ErrorsByKind)
	}
	for _, zero := range []string{"wrong_answers", "issue_other_errors", "revoke_other_errors", "lost_orders", "lost_revocations",
		"duplicate_serials", "crl_number_not_increasing"} {
		if f[zero] != 0 {
			t.Errorf("%s = %v, want 0 (notes %q)", zero, f[zero], run.Notes)
		}
	}
	if f["issue_answered_503"]+f["revoke_answered_503"] == 0 || f["orders_checked_after"] == 0 || f["revoke_ok"] == 0 || f["crl_publications"] == 0 {
		t.Errorf("the outage or the writes went unseen: %v", f)
	}
}

// runChaosSmall runs `trustline bench chaos` as cfg says (the binary built
// for the test, redis-server, the request mix of make bench-chaos) with
// schedule, and returns the measured run and the results directory.
func runChaosSmall(t *testing.T, cfg ChaosConfig, schedule string) (*Run, string) {
	t.Helper()
	sched, err := ParseChaosSchedule(schedule)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bin, cfg.Out, cfg.Name, cfg.Redis, cfg.Schedule = buildTrustline(t), t.TempDir(), "chaos", "redis-server", sched
	cfg.Mix = Mix{Method: "mix", GetEncoding: "raw", SHA256: 0.5, Unknown: 0.02, Nonce: 0.05, Seed: 1}
	var stdout, stderr strings.Builder
	err = RunChaosConfig(context.Background(), cfg, &stdout, &stderr)
	t.Logf("chaos output:\n%s\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readSuite(t, filepath.Join(cfg.Out, "chaos.json")).Runs {
		if r.Name == "chaos" {
			return r, cfg.Out
		}
	}
	t.Fatal("no chaos run")
	return nil, ""
}
