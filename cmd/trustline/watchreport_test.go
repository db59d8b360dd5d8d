package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// TestPrintWatchReport: the report says what was checked, counts each kind
// with its first and last time, and lists every finding; with rounds and
// no finding it says so; with no round at all it says that instead.
func TestPrintWatchReport(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	round := func(w string, d time.Duration) store.WatchFinding {
		return store.WatchFinding{At: at.Add(d), Watcher: w, Object: "round", Kind: "checked", Detail: `{"certificates":10,"ocsp":40,"crl":8,"findings":0}`}
	}
	finding := func(kind, url, sn string, d time.Duration) store.WatchFinding {
		return store.WatchFinding{At: at.Add(d), Watcher: "w1", Object: "ocsp", Kind: kind, URL: url, Serial: sn, HTTPStatus: 200, Detail: "good, but revoked"}
	}
	var b strings.Builder
	printWatchReport(&b, []store.WatchFinding{round("w1", 0), round("w2", time.Minute), finding("status_mismatch", "http://cdn/ocsp/", "0a01", time.Minute),
		finding("status_mismatch", "http://r1/ocsp/", "0a01", 3*time.Minute), round("w1", 2*time.Minute)}, at, at.Add(time.Hour))
	out := b.String()
	for _, want := range []string{
		"Checked: 3 rounds by 2 watchers; 30 certificates sampled, 120 OCSP responses and 24 CRLs",
		"ocsp    status_mismatch  2      2026-12-07T05:01:00Z  2026-12-07T05:03:00Z",
		"2 disagreements:",
		"2026-12-07T05:03:00Z  ocsp    status_mismatch  http://r1/ocsp/   0a01    200   good, but revoked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printWatchReport(&b, []store.WatchFinding{round("w1", 0)}, at, at.Add(time.Hour))
	if !strings.Contains(b.String(), "by 1 watcher;") || !strings.Contains(b.String(), "No disagreements") {
		t.Errorf("a clean period:\n%s", b.String())
	}
	b.Reset()
	printWatchReport(&b, nil, at, at.Add(time.Hour))
	if !strings.Contains(b.String(), "No round was recorded") || strings.Contains(b.String(), "No disagreements") {
		t.Errorf("a period without rounds:\n%s", b.String())
	}

	b.Reset()
	if err := printWatchJSON(&b, []store.WatchFinding{round("w1", 0), finding("expired", "http://cdn/crl/i/0.crl", "", time.Minute)}, at, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Rounds   int
		Checked  struct{ OCSP int }
		Findings []struct{ Kind, URL string }
	}
	if err := json.Unmarshal([]byte(b.String()), &js); err != nil || js.Rounds != 1 || js.Checked.OCSP != 40 || len(js.Findings) != 1 || js.Findings[0].Kind != "expired" {
		t.Errorf("--json: %v\n%s", err, b.String())
	}
}
