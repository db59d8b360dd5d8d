package ct

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newSubmitter(t *testing.T, cfg Config, logs ...*fakeLog) (*Submitter, *prometheus.Registry) {
	t.Helper()
	for _, f := range logs {
		cfg.Logs = append(cfg.Logs, f.log)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Wait(ctx)
	})
	return s, reg
}

// precert signs a precertificate and returns the chain to submit.
func (ca *testCA) precert(t *testing.T, notAfter time.Time) [][]byte {
	return [][]byte{ca.sign(t, ca.leafTemplate(notAfter), PoisonExtension()), ca.cert.Raw}
}

// TestSCTsMeetPolicy: three logs of two operators; the SCTs returned come
// from two operators, each verifies, and the final certificate that
// embeds them verifies too; a certificate embedding them with another key
// does not.
func TestSCTsMeetPolicy(t *testing.T) {
	a1, a2, b1 := startFakeLog(t, "a1", "A"), startFakeLog(t, "a2", "A"), startFakeLog(t, "b1", "B")
	s, reg := newSubmitter(t, Config{}, a1, a2, b1)
	ca := newTestCA(t)
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	res, err := s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, o := range res.SCTs {
		ops[o.Operator] = true
	}
	if len(res.SCTs) != 2 || len(ops) != 2 {
		t.Fatalf("SCTs %+v, want 2 from 2 operators", res.SCTs)
	}
	if !res.Extension.Id.Equal(OIDSCTList) || res.Extension.Critical || len(res.List) == 0 {
		t.Fatalf("extension %+v", res.Extension)
	}
	final := ca.sign(t, ca.leafTemplate(notAfter), res.Extension)
	if err := s.VerifyEmbedded(final, ca.cert.Raw); err != nil {
		t.Fatalf("the final certificate's SCTs: %v", err)
	}
	other := *ca
	other.sub = newTestCA(t).sub // same TBS but for the key: not what the logs signed
	if err := s.VerifyEmbedded(other.sign(t, ca.leafTemplate(notAfter), res.Extension), ca.cert.Raw); err == nil {
		t.Fatal("SCTs verified in a certificate for another key")
	}
	if n := testutil.ToFloat64(s.m.submissions.WithLabelValues("b1", kindPrecert, "ok")); n != 1 {
		t.Errorf("b1 precertificate submissions ok = %v, want 1 (the only log of operator B)", n)
	}
	if got, err := testutil.GatherAndCount(reg, "trustline_ct_breaker_state"); err != nil || got != 3 {
		t.Errorf("breaker series: %d %v", got, err)
	}
}

// TestOneLogDown: a failing log costs nothing while the others meet the
// policy; when they cannot, the error names each log's failure.
func TestOneLogDown(t *testing.T) {
	a, b, c := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B"), startFakeLog(t, "c", "C")
	a.setMode("fail")
	s, _ := newSubmitter(t, Config{}, a, b, c)
	ca := newTestCA(t)
	notAfter := time.Now().Add(24 * time.Hour)
	res, err := s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter)
	if err != nil || len(res.SCTs) != 2 {
		t.Fatalf("with one log down: %+v %v", res.SCTs, err)
	}
	for _, o := range res.SCTs {
		if o.Log == "a" {
			t.Error("an SCT from the failing log")
		}
	}

	b.setMode("fail")
	_, err = s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter)
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Got != 1 || pe.Failures["a"] == nil || pe.Failures["b"] == nil || !strings.Contains(err.Error(), "needs 2 from 2") {
		t.Fatalf("two logs down: %v", err)
	}
}

// TestSlowLogTimesOut: a log that does not answer is given up after the
// timeout, and busy answers (503) are retried within it.
func TestSlowLogTimesOut(t *testing.T) {
	a, b := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B")
	a.setMode("slow")
	s, _ := newSubmitter(t, Config{Timeout: 500 * time.Millisecond}, a, b)
	ca := newTestCA(t)
	notAfter := time.Now().Add(24 * time.Hour)
	_, err := s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter)
	var pe *PolicyError
	if !errors.As(err, &pe) || !strings.Contains(fmt.Sprint(pe.Failures["a"]), "no SCT within 500ms") {
		t.Fatalf("a slow log: %v", err)
	}

	a.setMode("busy")
	go func() { time.Sleep(300 * time.Millisecond); a.setMode("") }()
	s2, _ := newSubmitter(t, Config{Timeout: 5 * time.Second}, a, b)
	if _, err := s2.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter); err != nil {
		t.Fatalf("a log busy for a moment: %v", err)
	}
	if a.calls.Load() < 2 {
		t.Errorf("the busy log was asked %d times, want a retry", a.calls.Load())
	}
}

// TestBreaker: a log that keeps failing is skipped until its cool-down
// has passed; CanMeet then says the policy cannot be met, before anything
// is signed.
func TestBreaker(t *testing.T) {
	a, b := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B")
	a.setMode("fail")
	s, _ := newSubmitter(t, Config{BreakerFailures: 2, BreakerCooldown: 400 * time.Millisecond}, a, b)
	ca := newTestCA(t)
	notAfter := time.Now().Add(24 * time.Hour)
	if err := s.CanMeet(time.Now(), notAfter); err != nil {
		t.Fatalf("before any failure: %v", err)
	}
	for range 2 {
		s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter)
	}
	calls := a.calls.Load()
	err := s.CanMeet(time.Now(), notAfter)
	if err == nil || !strings.Contains(err.Error(), "failed 2 times in a row") {
		t.Fatalf("CanMeet with a's breaker open: %v", err)
	}
	if _, err := s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter); err == nil {
		t.Fatal("SCTs met the policy with a's breaker open")
	}
	if a.calls.Load() != calls {
		t.Error("a was asked while its breaker was open")
	}
	time.Sleep(500 * time.Millisecond)
	a.setMode("")
	if _, err := s.SCTs(context.Background(), ca.precert(t, notAfter), time.Now(), notAfter); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
	if n := testutil.ToFloat64(s.m.breaker.WithLabelValues("a")); n != 0 {
		t.Errorf("a's breaker state %v after a success, want 0 (closed)", n)
	}
}

// TestTemporalIntervals: only the logs whose interval holds the notAfter
// are asked; too few for the policy is a PolicyError before any request.
func TestTemporalIntervals(t *testing.T) {
	a, b, c := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B"), startFakeLog(t, "c", "C")
	split := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Hour)
	a.log.NotAfterLimit = split
	b.log.NotAfterLimit = split
	c.log.NotAfterStart = split
	s, _ := newSubmitter(t, Config{}, a, b, c)
	ca := newTestCA(t)
	early := split.Add(-time.Hour)
	if _, err := s.SCTs(context.Background(), ca.precert(t, early), time.Now(), early); err != nil {
		t.Fatal(err)
	}
	if c.calls.Load() != 0 {
		t.Error("a log whose interval starts later was asked")
	}
	late := split.Add(time.Hour)
	if err := s.CanMeet(time.Now(), late); err == nil || !strings.Contains(err.Error(), "only 1 of the 3") {
		t.Fatalf("CanMeet for a late notAfter: %v", err)
	}
}

// TestLogFinal: the final certificate goes to every log, in the
// background, as add-chain.
func TestLogFinal(t *testing.T) {
	a, b := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B")
	s, _ := newSubmitter(t, Config{}, a, b)
	ca := newTestCA(t)
	notAfter := time.Now().Add(24 * time.Hour)
	final := ca.sign(t, ca.leafTemplate(notAfter))
	s.LogFinal([][]byte{final, ca.cert.Raw}, notAfter)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fakeLog{a, b} {
		if got := f.chains(); len(got) != 1 || string(got[0][0].Data) != string(final) {
			t.Errorf("%s got %d chains", f.log.Name, len(got))
		}
		if n := testutil.ToFloat64(s.m.submissions.WithLabelValues(f.log.Name, kindFinal, "ok")); n != 1 {
			t.Errorf("%s final submissions ok = %v", f.log.Name, n)
		}
	}
}

// logListJSON writes a v3 log list of the fake logs.
func logListJSON(t *testing.T, mutate func(map[string]any), logs ...*fakeLog) []byte {
	t.Helper()
	ops := map[string][]map[string]any{}
	var order []string
	for _, f := range logs {
		if _, ok := ops[f.log.Operator]; !ok {
			order = append(order, f.log.Operator)
		}
		ops[f.log.Operator] = append(ops[f.log.Operator], map[string]any{
			"description": f.log.Name, "log_id": base64.StdEncoding.EncodeToString(f.log.ID[:]),
			"key": base64.StdEncoding.EncodeToString(f.log.KeyDER), "submission_url": f.log.URL + "/",
			"monitoring_url": f.log.URL, "mmd": 60,
		})
	}
	var operators []map[string]any
	for _, o := range order {
		operators = append(operators, map[string]any{"name": o, "email": []string{"ct@" + o + ".example"}, "logs": []any{}, "tiled_logs": ops[o]})
	}
	doc := map[string]any{"version": "1", "log_list_timestamp": "2026-12-01T00:00:00Z", "operators": operators}
	if mutate != nil {
		mutate(doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLogList(t *testing.T) {
	a, b := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B")
	logs, err := ParseLogList(logListJSON(t, nil, a, b))
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Operator != "A" || logs[0].URL != a.log.URL || logs[0].ID != a.log.ID || logs[1].Name != "b" {
		t.Fatalf("logs %+v", logs)
	}
	tiled := func(doc map[string]any, i int) map[string]any {
		return doc["operators"].([]map[string]any)[i]["tiled_logs"].([]map[string]any)[0]
	}
	for name, tc := range map[string]struct {
		mutate func(map[string]any)
		want   string // an error mentioning it, or "" for no error
		n      int
	}{
		"retired log left out": {func(d map[string]any) {
			tiled(d, 0)["state"] = map[string]any{"retired": map[string]any{"timestamp": "2026-01-01T00:00:00Z"}}
		}, "", 1},
		"usable kept": {func(d map[string]any) {
			tiled(d, 0)["state"] = map[string]any{"usable": map[string]any{"timestamp": "2026-01-01T00:00:00Z"}}
		}, "", 2},
		"wrong log id": {func(d map[string]any) { tiled(d, 0)["log_id"] = tiled(d, 1)["log_id"] }, "is not the SHA-256 of its key", 0},
		"bad key":      {func(d map[string]any) { tiled(d, 0)["key"] = "AAAA" }, "key does not parse", 0},
		"bad url":      {func(d map[string]any) { tiled(d, 0)["submission_url"] = "ftp://x" }, "not an http(s) URL", 0},
		"nameless op":  {func(d map[string]any) { d["operators"].([]map[string]any)[0]["name"] = " " }, "operator has no name", 0},
		"listed twice": {func(d map[string]any) {
			d["operators"].([]map[string]any)[1]["tiled_logs"] = []map[string]any{tiled(d, 0)}
		}, "listed twice", 0},
		"interval": {func(d map[string]any) {
			tiled(d, 0)["temporal_interval"] = map[string]string{"start_inclusive": "2027-01-01T00:00:00Z", "end_exclusive": "2027-07-01T00:00:00Z"}
		}, "", 2},
		"empty interval": {func(d map[string]any) {
			tiled(d, 0)["temporal_interval"] = map[string]string{"start_inclusive": "2027-07-01T00:00:00Z", "end_exclusive": "2027-01-01T00:00:00Z"}
		}, "ends before it starts", 0},
	} {
		logs, err := ParseLogList(logListJSON(t, tc.mutate, a, b))
		switch {
		case tc.want == "" && (err != nil || len(logs) != tc.n):
			t.Errorf("%s: %d logs, %v; want %d", name, len(logs), err, tc.n)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error mentioning %q", name, err, tc.want)
		}
		if name == "interval" && err == nil && !logs[0].Accepts(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)) {
			t.Error("a log does not accept a notAfter in its interval")
		}
		if name == "interval" && err == nil && logs[0].Accepts(time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)) {
			t.Error("a log accepts a notAfter at its interval's exclusive end")
		}
	}
	if _, err := ParseLogList([]byte(`{"operators": 3}`)); err == nil {
		t.Error("a malformed list parsed")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{{}, {MinSCTs: 1, MinOperators: 2}, {MinSCTs: 2}, {MinSCTs: -1, MinOperators: 1}, {MinSCTs: 3, MinOperators: 2, MinSCTsLong: 2}} {
		if p.Validate() == nil {
			t.Errorf("%+v validated", p)
		}
	}
	if (Policy{MinSCTs: 3, MinOperators: 2}).Validate() != nil {
		t.Error("3 from 2 refused")
	}
}

// TestLongLivedNeedsMore: a certificate valid longer than 180 days needs
// MinSCTsLong SCTs (3 by default, as Chrome asks).
func TestLongLivedNeedsMore(t *testing.T) {
	a, b, c := startFakeLog(t, "a", "A"), startFakeLog(t, "b", "B"), startFakeLog(t, "c", "C")
	s, _ := newSubmitter(t, Config{}, a, b, c)
	ca := newTestCA(t)
	nb := time.Now().Add(-time.Minute).Truncate(time.Second) // the test CA's notBefore
	long := nb.Add(200 * 24 * time.Hour)
	res, err := s.SCTs(context.Background(), ca.precert(t, long), nb, long)
	if err != nil || len(res.SCTs) != 3 {
		t.Fatalf("a 200-day certificate: %d SCTs, %v; want 3", len(res.SCTs), err)
	}
	if err := s.VerifyEmbedded(ca.sign(t, ca.leafTemplate(long), res.Extension), ca.cert.Raw); err != nil {
		t.Fatal(err)
	}
	c.setMode("fail")
	if _, err := s.SCTs(context.Background(), ca.precert(t, long), nb, long); err == nil || !strings.Contains(err.Error(), "needs 3 from 2") {
		t.Fatalf("a 200-day certificate with one of three logs down: %v", err)
	}
	short := nb.Add(90 * 24 * time.Hour)
	if _, err := s.SCTs(context.Background(), ca.precert(t, short), nb, short); err != nil {
		t.Fatalf("a 90-day certificate with one of three logs down: %v", err)
	}
	if err := s.CanMeet(nb, long); err != nil {
		t.Errorf("CanMeet before any breaker opened: %v", err)
	}
}

// TestUseful: an SCT is kept if it is of a new operator or there are SCTs
// to spare beyond the operators still missing.
func TestUseful(t *testing.T) {
	a, b := Log{Name: "a1", Operator: "A"}, Log{Name: "b1", Operator: "B"}
	for _, tc := range []struct {
		p    Policy
		have []Log
		next Log
		want bool
	}{
		{DefaultPolicy, nil, a, true},
		{DefaultPolicy, []Log{a}, a, false},
		{DefaultPolicy, []Log{a}, b, true},
		{Policy{MinSCTs: 3, MinOperators: 2}, []Log{a}, a, true},
		{Policy{MinSCTs: 3, MinOperators: 2}, []Log{a, a}, a, false},
		{Policy{MinSCTs: 3, MinOperators: 2}, []Log{a, a}, b, true},
		{Policy{MinSCTs: 2, MinOperators: 1}, []Log{a}, a, true},
	} {
		if got := tc.p.useful(tc.have, tc.next); got != tc.want {
			t.Errorf("%+v with %d SCTs, one of %s: useful %v, want %v", tc.p, len(tc.have), tc.next.Operator, got, tc.want)
		}
	}
}
