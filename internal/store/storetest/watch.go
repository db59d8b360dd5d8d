package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// finding is the i-th test finding: an OCSP status mismatch fetched at at,
// with headers and a body of its own.
func finding(i int, at time.Time) store.WatchFinding {
	return store.WatchFinding{
		At:         at,
		Watcher:    "watch-1",
		Object:     "ocsp",
		Kind:       "status_mismatch",
		URL:        fmt.Sprintf("http://ocsp.example/%d", i),
		Serial:     string(sn(i)),
		Issuer:     string(issuerA),
		Detail:     fmt.Sprintf("finding %d: good where the store says revoked", i),
		HTTPStatus: 200,
		Header:     []byte(fmt.Sprintf(`{"Content-Type":["application/ocsp-response"],"X-N":["%d"]}`, i)),
		Body:       der(sn(i), 100+i),
	}
}

// storedFinding is f as the store returns it, with ID id: At in UTC at
// microsecond precision.
func storedFinding(f store.WatchFinding, id int64) store.WatchFinding {
	f.ID, f.At = id, us(f.At)
	return f
}

// allFindings lists every finding in one page.
func allFindings(t *testing.T, s store.Store) []store.WatchFinding {
	t.Helper()
	fs, err := s.WatchFindings(ctx(t), time.Time{}, 0, 1<<20, true)
	must(t, err, "listing watch findings")
	return fs
}

func findingIDs(fs []store.WatchFinding) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

// increasingIDs fails unless the IDs of fs are positive and increasing.
func increasingIDs(t *testing.T, fs []store.WatchFinding, doing string) {
	t.Helper()
	var last int64
	for i, f := range fs {
		if f.ID <= last {
			t.Fatalf("%s: finding %d has ID %d after %d (IDs %v)", doing, i, f.ID, last, findingIDs(fs))
		}
		last = f.ID
	}
}

// testWatchFindings: every field goes in and comes out (times in UTC at
// microsecond precision, nil Header and Body nil again, a CRL finding with
// no serial, any bytes), IDs assigned by the store in the order given and
// increasing across calls; recording nothing does nothing.
func testWatchFindings(t *testing.T, s store.Store) {
	must(t, s.RecordWatchFindings(ctx(t), nil), "recording no findings (nil)")
	must(t, s.RecordWatchFindings(ctx(t), []store.WatchFinding{}), "recording no findings (empty)")
	if got := allFindings(t, s); len(got) != 0 {
		t.Fatalf("after recording nothing, listed %d findings", len(got))
	}

	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	wholeCRL := store.WatchFinding{
		At:         t0.In(time.FixedZone("CET", 3600)).Add(time.Second), // not UTC, nanoseconds
		Watcher:    "watch-2",
		Object:     "crl",
		Kind:       "expired",
		URL:        "http://crl.example/int-a/3.crl",
		Issuer:     string(issuerA),
		Detail:     "served at or past its nextUpdate 2026-03-01T11:00:00Z",
		HTTPStatus: 200,
		Header:     []byte(`{"Cache-Control":["max-age=300"]}`),
		Body:       allBytes,
	}
	unreachable := store.WatchFinding{ // nil Header and Body, no status
		At:      t0.Add(2 * time.Second),
		Watcher: "watch-2",
		Object:  "ocsp",
		Kind:    "unreachable",
		URL:     "http://ocsp.example/",
		Serial:  string(sn(9)),
		Issuer:  string(issuerB),
		Detail:  "dial tcp: connection refused",
	}
	notFound := finding(3, t0.Add(3*time.Second)) // empty, non-nil Body
	notFound.Kind, notFound.HTTPStatus, notFound.Body = "unreachable", 404, []byte{}
	first := []store.WatchFinding{finding(1, t0), wholeCRL, unreachable, notFound}
	in := append([]store.WatchFinding(nil), first...)
	must(t, s.RecordWatchFindings(ctx(t), in), "recording findings")
	for i := range in {
		if in[i].ID != 0 {
			t.Errorf("RecordWatchFindings set the ID of its argument's finding %d to %d", i, in[i].ID)
		}
	}

	got := allFindings(t, s)
	if len(got) != len(first) {
		t.Fatalf("listed %d findings, want %d", len(got), len(first))
	}
	increasingIDs(t, got, "first recording")
	var want []store.WatchFinding
	for i, f := range first {
		want = append(want, storedFinding(f, got[i].ID))
	}
	want[3].Body = nil
	if d := diff(want, got); d != "" {
		t.Errorf("WatchFindings (-want +got):\n%s", d)
	}
	// Without the evidence: the same findings, Header and Body nil.
	brief, err := s.WatchFindings(ctx(t), time.Time{}, 0, 0, false)
	must(t, err, "listing findings without evidence")
	wantBrief := append([]store.WatchFinding(nil), want...)
	for i := range wantBrief {
		wantBrief[i].Header, wantBrief[i].Body = nil, nil
	}
	if d := diff(wantBrief, brief); d != "" {
		t.Errorf("WatchFindings without evidence (-want +got):\n%s", d)
	}
	if got[1].At.Location() != time.UTC {
		t.Errorf("At comes back in %v, want UTC", got[1].At.Location())
	}
	if got[2].Header != nil || got[2].Body != nil {
		t.Errorf("nil Header and Body came back as %#v, %#v; want nil", got[2].Header, got[2].Body)
	}
	if got[3].Body != nil {
		t.Errorf("an empty Body came back as %#v; want nil", got[3].Body)
	}

	// A later call gets later IDs, whatever its findings' times.
	second := []store.WatchFinding{finding(5, t0.Add(-time.Hour)), finding(6, t0.Add(time.Hour))}
	second[0].ID, second[1].ID = 1, 1<<40 // ignored
	must(t, s.RecordWatchFindings(ctx(t), second), "recording more findings")
	got = allFindings(t, s)
	increasingIDs(t, got, "second recording")
	if len(got) != len(first)+len(second) {
		t.Fatalf("listed %d findings, want %d", len(got), len(first)+len(second))
	}
	for i, f := range second {
		want = append(want, storedFinding(f, got[len(first)+i].ID))
	}
	if d := diff(want, got); d != "" {
		t.Errorf("WatchFindings after a second recording (-want +got):\n%s", d)
	}
}

// testWatchFindingText: text that PostgreSQL's TEXT cannot hold (invalid
// UTF-8, NUL) is kept with U+FFFD in its place, in every adapter, and
// does not fail the recording; Header and Body keep any bytes.
func testWatchFindingText(t *testing.T, s store.Store) {
	f := finding(1, t0)
	f.Detail = "idp \"http://crl.example/\xff\xfe3.crl\" nul \x00 end"
	f.URL = "http://crl.example/\x00"
	f.Watcher = "wätch-1"
	f.Header = []byte("\x00\xff")
	must(t, s.RecordWatchFindings(ctx(t), []store.WatchFinding{f}), "recording a finding with invalid text")
	got := allFindings(t, s)
	if len(got) != 1 {
		t.Fatalf("listed %d findings, want 1", len(got))
	}
	want := storedFinding(f, got[0].ID)
	want.Detail = "idp \"http://crl.example/\uFFFD3.crl\" nul \uFFFD end"
	want.URL = "http://crl.example/\uFFFD"
	if d := diff(want, got[0]); d != "" {
		t.Errorf("finding with invalid text (-want +got):\n%s", d)
	}
}

// testWatchFindingsPages: the since filter (at or after), paging by
// afterID in ID order across pages, and the default limit of 1000.
func testWatchFindingsPages(t *testing.T, s store.Store) {
	// 1005 findings in ID order, their times not in that order: finding i
	// was fetched at t0 + (i mod 5) minutes.
	const n = 1005
	var in []store.WatchFinding
	for i := range n {
		f := finding(i, t0.Add(time.Duration(i%5)*time.Minute))
		f.Body = f.Body[:8]
		in = append(in, f)
	}
	must(t, s.RecordWatchFindings(ctx(t), in[:500]), "recording findings")
	must(t, s.RecordWatchFindings(ctx(t), in[500:]), "recording more findings")
	all := allFindings(t, s)
	if len(all) != n {
		t.Fatalf("listed %d findings, want %d", len(all), n)
	}
	increasingIDs(t, all, "recording")
	for i, f := range all {
		if f.URL != in[i].URL {
			t.Fatalf("finding %d is %s, want %s: not in the order recorded", i, f.URL, in[i].URL)
		}
	}

	// The default limit, and the page after it.
	page, err := s.WatchFindings(ctx(t), time.Time{}, 0, 0, true)
	must(t, err, "listing with the default limit")
	if d := diff(findingIDs(all[:1000]), findingIDs(page)); d != "" {
		t.Errorf("limit 0 lists the first 1000 (-want +got):\n%s", d)
	}
	page, err = s.WatchFindings(ctx(t), time.Time{}, page[len(page)-1].ID, 0, true)
	must(t, err, "listing the page after the default limit")
	if d := diff(findingIDs(all[1000:]), findingIDs(page)); d != "" {
		t.Errorf("the page after 1000 (-want +got):\n%s", d)
	}
	if d := diff(all[1000:], page); d != "" {
		t.Errorf("the page after 1000, fields (-want +got):\n%s", d)
	}

	// since: at or after, whatever the ID order.
	since := us(t0.Add(3 * time.Minute))
	var wantSince []int64
	for _, f := range all {
		if !f.At.Before(since) {
			wantSince = append(wantSince, f.ID)
		}
	}
	if len(wantSince) != 402 {
		t.Fatalf("test setup: %d findings at or after %s, want 402", len(wantSince), since)
	}
	got, err := s.WatchFindings(ctx(t), since, 0, 1<<20, true)
	must(t, err, "listing since")
	if d := diff(wantSince, findingIDs(got)); d != "" {
		t.Errorf("WatchFindings(since %s) (-want +got):\n%s", since, d)
	}
	got, err = s.WatchFindings(ctx(t), since.Add(time.Microsecond), 0, 1<<20, true)
	must(t, err, "listing since a microsecond later")
	if len(got) != 201 {
		t.Errorf("since a microsecond after the 3-minute findings listed %d, want the 201 of minute 4", len(got))
	}
	got, err = s.WatchFindings(ctx(t), us(t0.Add(time.Hour)), 0, 0, true)
	must(t, err, "listing since after everything")
	if len(got) != 0 {
		t.Errorf("since after every finding listed %d", len(got))
	}

	// Pages of 7 with since, each after the last ID of the one before.
	var paged []int64
	var after int64
	for pages := 0; ; pages++ {
		if pages > len(wantSince) {
			t.Fatalf("paging does not end (after %d)", after)
		}
		page, err := s.WatchFindings(ctx(t), since, after, 7, true)
		must(t, err, "listing a page")
		if len(page) > 7 {
			t.Fatalf("a page of limit 7 has %d findings", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, findingIDs(page)...)
		after = page[len(page)-1].ID
	}
	if d := diff(wantSince, paged); d != "" {
		t.Errorf("paging by 7 since %s (-want +got):\n%s", since, d)
	}

	// afterID alone, from the middle.
	got, err = s.WatchFindings(ctx(t), time.Time{}, all[499].ID, 3, true)
	must(t, err, "listing after an ID")
	if d := diff(findingIDs(all[500:503]), findingIDs(got)); d != "" {
		t.Errorf("WatchFindings(after %d, limit 3) (-want +got):\n%s", all[499].ID, d)
	}
}

// testDeleteWatchFindings: deleting removes the findings fetched before
// the time (not at it) and counts them; IDs are never reused, not even
// after the newest findings are deleted.
func testDeleteWatchFindings(t *testing.T, s store.Store) {
	n, err := s.DeleteWatchFindings(ctx(t), t0)
	must(t, err, "deleting from an empty store")
	if n != 0 {
		t.Errorf("deleting from an empty store counted %d", n)
	}
	var in []store.WatchFinding
	for i := range 6 { // fetched at t0, t0+1m, …, t0+5m, newest first
		in = append(in, finding(i, t0.Add(time.Duration(5-i)*time.Minute)))
	}
	must(t, s.RecordWatchFindings(ctx(t), in), "recording findings")
	all := allFindings(t, s)
	maxID := all[len(all)-1].ID

	cut := t0.Add(2 * time.Minute) // before it: t0 and t0+1m, the last two recorded
	n, err = s.DeleteWatchFindings(ctx(t), cut)
	must(t, err, "deleting old findings")
	if n != 2 {
		t.Errorf("deleting findings fetched before %s counted %d, want 2", cut, n)
	}
	if d := diff(all[:4], allFindings(t, s)); d != "" {
		t.Errorf("after deleting before %s (-want +got):\n%s", cut, d)
	}
	n, err = s.DeleteWatchFindings(ctx(t), cut)
	must(t, err, "deleting again")
	if n != 0 {
		t.Errorf("deleting again counted %d, want 0", n)
	}

	n, err = s.DeleteWatchFindings(ctx(t), t0.Add(time.Hour))
	must(t, err, "deleting every finding")
	if n != 4 {
		t.Errorf("deleting every finding counted %d, want 4", n)
	}
	if got := allFindings(t, s); len(got) != 0 {
		t.Fatalf("after deleting every finding, listed %d", len(got))
	}
	must(t, s.RecordWatchFindings(ctx(t), []store.WatchFinding{finding(9, t0)}), "recording after deleting")
	got := allFindings(t, s)
	if len(got) != 1 || got[0].ID <= maxID {
		t.Errorf("a finding recorded after the newest were deleted has ID %v, want above %d (IDs are never reused)", findingIDs(got), maxID)
	}
}

// testWatchFindingLargeBody: a body of 64 MiB, the most the watch keeps,
// is stored and read back whole.
func testWatchFindingLargeBody(t *testing.T, s store.Store) {
	f := finding(1, t0)
	f.Object, f.Kind, f.Serial = "crl", "stale", ""
	f.Body = bytes.Repeat([]byte("0123456789abcdef"), (64<<20)/16)
	f.Body[len(f.Body)-1] = 0xff
	must(t, s.RecordWatchFindings(ctx(t), []store.WatchFinding{f}), "recording a 64 MiB body")
	got := allFindings(t, s)
	if len(got) != 1 {
		t.Fatalf("listed %d findings, want 1", len(got))
	}
	if !bytes.Equal(got[0].Body, f.Body) {
		t.Errorf("64 MiB body came back as %d bytes, not equal", len(got[0].Body))
	}
}

// testConcurrentRecordWatchFindings: a reader paging by afterID while
// several writers record sees every finding: IDs become visible in order,
// so no page skips one that commits late.
func testConcurrentRecordWatchFindings(t *testing.T, s store.Store) {
	const batches = 25
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	seen := map[int64]bool{}
	var readErr error
	c := ctx(t)
	go func() {
		defer wg.Done()
		var after int64
		for {
			finished := done.Load() // read once more after the writers are done
			page, err := s.WatchFindings(c, time.Time{}, after, 50, true)
			if err != nil {
				readErr = err
				return
			}
			for _, f := range page {
				if seen[f.ID] || f.ID <= after {
					readErr = fmt.Errorf("finding %d listed again, or out of order after %d", f.ID, after)
					return
				}
				seen[f.ID] = true
				after = f.ID
			}
			if finished && len(page) == 0 {
				return
			}
		}
	}()
	errs := race(racers, func(r int) error {
		for b := range batches {
			fs := []store.WatchFinding{finding(r*1000+2*b, t0), finding(r*1000+2*b+1, t0)}
			if err := s.RecordWatchFindings(c, fs); err != nil {
				return err
			}
		}
		return nil
	})
	done.Store(true)
	wg.Wait()
	for i, err := range errs {
		must(t, err, fmt.Sprintf("racer %d recording", i))
	}
	must(t, readErr, "paging while recording")
	all := allFindings(t, s)
	if len(all) != racers*batches*2 {
		t.Fatalf("listed %d findings, want %d", len(all), racers*batches*2)
	}
	var missed []int64
	for _, f := range all {
		if !seen[f.ID] {
			missed = append(missed, f.ID)
		}
	}
	if len(missed) > 0 {
		t.Errorf("the paging reader skipped %d findings that committed after a higher ID: %v", len(missed), missed)
	}
}
