package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/testenv"
)

func TestParseChaosSchedule(t *testing.T) {
	got, err := ParseChaosSchedule(" 8s:start:redis, 5s:kill:redis,8.5s:flushall:redis,")
	if err != nil {
		t.Fatal(err)
	}
	want := []ChaosAction{{5 * time.Second, "kill", "redis"}, {8 * time.Second, "start", "redis"}, {8500 * time.Millisecond, "flushall", "redis"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"", ",", "5s:kill", "5s:kill:postgres", "5s:explode:redis", "-1s:kill:redis", "soon:kill:redis", "5s:kill:redis:now"} {
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
	bin := buildTrustline(t)
	out := t.TempDir()
	var stdout, stderr strings.Builder
	sched, err := ParseChaosSchedule("1s:kill:redis,3s:start:redis,3.5s:flushall:redis")
	if err != nil {
		t.Fatal(err)
	}
	err = RunChaosConfig(context.Background(), ChaosConfig{Bin: bin, Out: out, Name: "chaos", Certs: 2000, Revoked: 0.05,
		Redis: "redis-server", Rate: 200, Concurrency: 4, Duration: 7 * time.Second, Schedule: sched,
		Mix: Mix{Method: "mix", GetEncoding: "raw", SHA256: 0.5, Unknown: 0.02, Nonce: 0.05, Seed: 1}}, &stdout, &stderr)
	t.Logf("chaos output:\n%s\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	s := readSuite(t, filepath.Join(out, "chaos.json"))
	var run *Run
	for _, r := range s.Runs {
		if r.Name == "chaos" {
			run = r
		}
	}
	if run == nil {
		t.Fatal("no chaos run")
	}
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
