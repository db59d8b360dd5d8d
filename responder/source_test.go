package responder

// Tests of each source of the chain alone, with hand-written doubles for
// the tier below it. The responses are fakes: no source parses the DER.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

const (
	testIssuer = issuerid.ID("int-a")
	testSerial = "01ab"
)

var (
	testNow   = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	errTest   = errors.New("test: failure")
	errDown   = errors.New("test: cache down")
	testIsOne = &issuer{id: testIssuer, tags: "ocsp ocsp-int-a"}
)

// lookupAt is the lookup for snHex (the key's spelling) with h at now.
func lookupAt(t *testing.T, snHex string, h ocspcodec.HashAlg, now time.Time) lookup {
	t.Helper()
	sn, err := hex.DecodeString(snHex)
	if err != nil {
		t.Fatal(err)
	}
	var l lookup
	l.set(testIsOne, h, sn, now)
	return l
}

// entryAt is a response valid at now: refreshed in an hour, dead in four.
func entryAt(der string, now time.Time) ocspcache.Entry {
	return ocspcache.Entry{DER: []byte(der), Status: status.Good,
		ThisUpdate: now.Add(-time.Hour), RefreshAt: now.Add(time.Hour), NextUpdate: now.Add(4 * time.Hour)}
}

// renderedFor is the rendered response for l, as the tier below the one
// under test would return it.
func renderedFor(l lookup) *rendered {
	e := entryAt("response for "+l.keyString(), l.now)
	return renderer{}.render(&l, &e)
}

func testMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stubSource is the tier below: it answers rd, err, after block is closed
// if set, and records what it was asked.
type stubSource struct {
	rd    *rendered
	err   error
	block chan struct{}
	calls atomic.Int64

	mu   sync.Mutex
	seen []lookup
}

func (s *stubSource) Response(_ context.Context, l lookup) (*rendered, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.seen = append(s.seen, l)
	s.mu.Unlock()
	if s.block != nil {
		<-s.block
	}
	return s.rd, s.err
}

// fakeEvictions hands out the L1's eviction callback.
type fakeEvictions struct {
	fn        func(ocspcache.Eviction)
	cancelled bool
}

func (f *fakeEvictions) Subscribe(fn func(ocspcache.Eviction)) func() {
	f.fn = fn
	return func() { f.cancelled = true }
}

// fakeCache holds entries by key and a State; with fail set, every
// method fails.
type fakeCache struct {
	mu      sync.Mutex
	entries map[string]ocspcache.Entry
	state   ocspcache.State
	fail    error
	keys    [][]string // asked by each Get
	states  int
	puts    []ocspcache.Item
}

// lossyCache is a fakeCache that says whether it dropped entries.
type lossyCache struct {
	*fakeCache
	dropped bool
}

func (c lossyCache) Dropped() bool { return c.dropped }

func (c *fakeCache) Get(_ context.Context, keys []string, out []ocspcache.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, keys)
	if c.fail != nil {
		return c.fail
	}
	for i, k := range keys {
		out[i] = c.entries[k]
	}
	return nil
}

func (c *fakeCache) State(context.Context) (ocspcache.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states++
	return c.state, c.fail
}

func (c *fakeCache) Put(_ context.Context, items []ocspcache.Item) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.puts = append(c.puts, items...)
	return nil
}

func (c *fakeCache) gets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

func testBreaker(m *metrics, log *slog.Logger) *breakers {
	return newBreakers(nil, time.Second, log, m.cacheErrors)
}

// outcome names what a source answered: "unknown" (an error wrapping
// ocspcache.ErrUnknown), "error", or "response".
func outcome(rd *rendered, err error) string {
	switch {
	case errors.Is(err, ocspcache.ErrUnknown):
		return "unknown"
	case err != nil || rd == nil:
		return "error"
	}
	return "response"
}

func TestL1Source(t *testing.T) {
	ctx := context.Background()
	l := lookupAt(t, testSerial, ocspcodec.SHA256, testNow)
	m := testMetrics(t)
	next := &stubSource{rd: renderedFor(l)}
	ev := &fakeEvictions{}
	s := newL1Source(newL1(10), ev, m, next)
	for _, step := range []struct {
		name     string
		evict    *ocspcache.Eviction // sent before the request
		wantNext int64               // next's calls after it
	}{
		{name: "miss", wantNext: 1},
		{name: "hit", wantNext: 1},
		{name: "another certificate evicted", evict: &ocspcache.Eviction{Prefix: ocspcache.EvictionPrefix(testIssuer, "02cd")}, wantNext: 1},
		{name: "this certificate evicted", evict: &ocspcache.Eviction{Prefix: ocspcache.EvictionPrefix(testIssuer, testSerial)}, wantNext: 2},
		{name: "everything evicted", evict: &ocspcache.Eviction{}, wantNext: 3},
	} {
		if step.evict != nil {
			ev.fn(*step.evict)
		}
		if rd, err := s.Response(ctx, l); err != nil || rd != next.rd || next.calls.Load() != step.wantNext {
			t.Errorf("%s: Response = %v, %v, next asked %d times; want next's response, %d", step.name, rd, err, next.calls.Load(), step.wantNext)
		}
	}
	if got, want := next.seen[0].str, ocspcache.Key(testIssuer, testSerial, ocspcodec.SHA256); got != want {
		t.Errorf("next got key string %q, want %q", got, want)
	}
	if hits, misses := testutil.ToFloat64(m.l1Hits), testutil.ToFloat64(m.l1Misses); hits != 2 || misses != 3 {
		t.Errorf("hits, misses = %v, %v; want 2, 3", hits, misses)
	}
	s.close()
	if !ev.cancelled {
		t.Error("close did not cancel the eviction subscription")
	}
}

// TestL1SourceUnconfirmed: once the eviction feed may have lost messages,
// what the L1 holds is looked up again below; it is served as it is only
// while nothing below can answer, replaced by what the tiers below return,
// and dropped when they prove the certificate unknown.
func TestL1SourceUnconfirmed(t *testing.T) {
	ctx := context.Background()
	l := lookupAt(t, testSerial, ocspcodec.SHA256, testNow)
	m := testMetrics(t)
	held := renderedFor(l)
	next := &stubSource{rd: held}
	ev := &fakeEvictions{}
	s := newL1Source(newL1(10), ev, m, next)
	s.Response(ctx, l) // into the L1
	fresh := renderedFor(l)
	for _, step := range []struct {
		name     string
		distrust bool // an Eviction without a prefix first
		rd       *rendered
		err      error // next's answer
		want     *rendered
		wantErr  error
		wantNext int64 // next's calls so far
	}{
		{name: "confirmed: a hit", want: held, wantNext: 1},
		{name: "unconfirmed, next fails: the copy", distrust: true, err: errTest, want: held, wantNext: 2},
		{name: "still unconfirmed: next asked again", err: errTest, want: held, wantNext: 3},
		{name: "next answers: its response", rd: fresh, want: fresh, wantNext: 4},
		{name: "confirmed again: a hit", err: errTest, want: fresh, wantNext: 4},
		{name: "unconfirmed, proved unknown", distrust: true, err: ocspcache.ErrUnknown, wantErr: ocspcache.ErrUnknown, wantNext: 5},
		{name: "dropped: next's error", err: errTest, wantErr: errTest, wantNext: 6},
	} {
		if step.distrust {
			ev.fn(ocspcache.Eviction{})
		}
		next.rd, next.err = step.rd, step.err
		rd, err := s.Response(ctx, l)
		if rd != step.want || !errors.Is(err, step.wantErr) || (step.wantErr == nil) != (err == nil) || next.calls.Load() != step.wantNext {
			t.Errorf("%s: Response = %p, %v, next asked %d times; want %p, %v, %d", step.name, rd, err, next.calls.Load(), step.want, step.wantErr, step.wantNext)
		}
	}
	if got := testutil.ToFloat64(m.l1Unconfirmed); got != 2 {
		t.Errorf("unconfirmed copies served = %v, want 2", got)
	}

	// Nothing is served at or past its refresh point, unconfirmed or not.
	s.Response(ctx, l) // errTest: nothing held
	next.rd, next.err = held, nil
	s.Response(ctx, l)
	ev.fn(ocspcache.Eviction{})
	next.rd, next.err = nil, errTest
	late := l
	late.now = time.Unix(held.refreshAt, 0)
	if rd, err := s.Response(ctx, late); rd != nil || err != errTest {
		t.Errorf("at the refresh point: Response = %v, %v; want next's error", rd, err)
	}
}

func TestL1SourceHitAllocs(t *testing.T) {
	ctx := context.Background()
	l := lookupAt(t, testSerial, ocspcodec.SHA256, testNow)
	var s source = newL1Source(newL1(10), &fakeEvictions{}, testMetrics(t), &stubSource{rd: renderedFor(l)})
	s.Response(ctx, l)
	if n := testing.AllocsPerRun(100, func() { s.Response(ctx, l) }); n != 0 {
		t.Errorf("hit allocates %v times", n)
	}
}

// TestL1SourceKeeps: nothing at or past its refresh point, and no error.
func TestL1SourceKeeps(t *testing.T) {
	ctx := context.Background()
	l := lookupAt(t, testSerial, ocspcodec.SHA256, testNow)
	atRefresh := l
	atRefresh.now = time.Unix(renderedFor(l).refreshAt, 0)
	for _, tc := range []struct {
		name string
		l    lookup
		err  error
	}{
		{"nothing kept at its refresh point", atRefresh, nil},
		{"errors not kept", l, errTest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &stubSource{rd: renderedFor(l), err: tc.err}
			s := newL1Source(newL1(10), &fakeEvictions{}, testMetrics(t), next)
			s.Response(ctx, tc.l)
			if _, err := s.Response(ctx, tc.l); err != tc.err || next.calls.Load() != 2 {
				t.Errorf("err = %v, next asked %d times; want %v, 2", err, next.calls.Load(), tc.err)
			}
		})
	}
}

// cacheCase is one lookup of TestCacheSource.
type cacheCase struct {
	name      string
	h         ocspcodec.HashAlg
	presigned []ocspcodec.HashAlg // nil: SHA-1 and SHA-256
	entries   map[string]ocspcache.Entry
	complete  bool
	// lossy, when set, makes the cache an ocspcache.Lossy whose Dropped
	// returns *lossy.
	lossy *bool
	// want is "hit", "unknown" or "next".
	want     string
	wantKeys []string
}

func TestCacheSource(t *testing.T) {
	yes, no := true, false
	key := func(h ocspcodec.HashAlg) string { return ocspcache.Key(testIssuer, testSerial, h) }
	live := map[string]ocspcache.Entry{key(ocspcodec.SHA256): entryAt("r", testNow)}
	dead := entryAt("dead", testNow)
	dead.NextUpdate = testNow
	for _, tc := range []cacheCase{
		{name: "hit", h: ocspcodec.SHA256, entries: live, complete: true, want: "hit", wantKeys: []string{key(ocspcodec.SHA256)}},
		{name: "miss, complete: unknown", h: ocspcodec.SHA1, complete: true, want: "unknown", wantKeys: []string{key(ocspcodec.SHA1)}},
		{name: "miss, incomplete: next", h: ocspcodec.SHA1, want: "next", wantKeys: []string{key(ocspcodec.SHA1)}},
		{name: "miss, complete, bounded cache dropped entries: next", h: ocspcodec.SHA1, complete: true, lossy: &yes,
			want: "next", wantKeys: []string{key(ocspcodec.SHA1)}},
		{name: "miss, complete, bounded cache dropped nothing: unknown", h: ocspcodec.SHA1, complete: true, lossy: &no,
			want: "unknown", wantKeys: []string{key(ocspcodec.SHA1)}},
		{name: "dead entry is a miss", h: ocspcodec.SHA256, entries: map[string]ocspcache.Entry{key(ocspcodec.SHA256): dead},
			complete: true, want: "unknown", wantKeys: []string{key(ocspcodec.SHA256)}},
		{name: "lazy algorithm, known: next", h: ocspcodec.SHA384, entries: live,
			complete: true, want: "next", wantKeys: []string{key(ocspcodec.SHA384), key(ocspcodec.SHA256)}},
		{name: "lazy algorithm, unknown", h: ocspcodec.SHA384, complete: true, want: "unknown",
			wantKeys: []string{key(ocspcodec.SHA384), key(ocspcodec.SHA256)}},
		{name: "lazy algorithm, incomplete: next", h: ocspcodec.SHA512, want: "next",
			wantKeys: []string{key(ocspcodec.SHA512), key(ocspcodec.SHA256)}},
		{name: "first pre-signed algorithm proves known without SHA-256", h: ocspcodec.SHA256, presigned: []ocspcodec.HashAlg{ocspcodec.SHA1},
			complete: true, want: "unknown", wantKeys: []string{key(ocspcodec.SHA256), key(ocspcodec.SHA1)}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkCacheSource(t, tc) })
	}
}

func checkCacheSource(t *testing.T, tc cacheCase) {
	presigned := tc.presigned
	if presigned == nil {
		presigned = []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256}
	}
	m := testMetrics(t)
	fc := &fakeCache{entries: tc.entries, state: ocspcache.State{Epoch: "e", Complete: tc.complete}}
	l := lookupAt(t, testSerial, tc.h, testNow)
	next := &stubSource{rd: renderedFor(l)}
	var reader cacheReader = fc
	if tc.lossy != nil {
		reader = lossyCache{fc, *tc.lossy}
	}
	s := newCacheSource(reader, presigned, time.Second, time.Second, testBreaker(m, testfix.QuietLogger()), renderer{}, m, next)
	rd, err := s.Response(context.Background(), l)
	got := outcome(rd, err)
	if got == "response" {
		got = map[bool]string{true: "next", false: "hit"}[rd == next.rd]
	}
	if got != tc.want || (got == "next") != (next.calls.Load() == 1) {
		t.Errorf("answered %s (%v), next asked %d times; want %s", got, err, next.calls.Load(), tc.want)
	}
	if want := tc.entries[l.keyString()].DER; got == "hit" && (string(rd.der) != string(want) || rd.key != l.keyString()) {
		t.Errorf("hit rendered %q under %q, want %q", rd.der, rd.key, want)
	}
	if diff := cmp.Diff([][]string{tc.wantKeys}, fc.keys); diff != "" {
		t.Errorf("keys asked (-want +got):\n%s", diff)
	}
	hits, misses := testutil.ToFloat64(m.cacheHits), testutil.ToFloat64(m.cacheMisses)
	if (got == "hit") != (hits == 1) || hits+misses != 1 {
		t.Errorf("cache hits, misses = %v, %v", hits, misses)
	}
}

// TestCacheSourceCooldown: after a failure the cache is left alone for
// the cooldown; next answers meanwhile.
func TestCacheSourceCooldown(t *testing.T) {
	ctx := context.Background()
	m := testMetrics(t)
	key := ocspcache.Key(testIssuer, testSerial, ocspcodec.SHA256)
	fc := &fakeCache{entries: map[string]ocspcache.Entry{key: entryAt("r", testNow)}, state: ocspcache.State{Epoch: "e", Complete: true}, fail: errDown}
	next := &stubSource{err: errTest}
	s := newCacheSource(fc, []ocspcodec.HashAlg{ocspcodec.SHA256}, time.Second, time.Second, testBreaker(m, testfix.QuietLogger()), renderer{}, m, next)
	for _, step := range []struct {
		after    time.Duration
		fail     error
		wantGets int
		wantHit  bool // else next answers
	}{
		{0, errDown, 1, false},
		{999 * time.Millisecond, errDown, 1, false}, // cooling down: the cache is not asked
		{time.Second, errDown, 2, false},
		{1999 * time.Millisecond, nil, 2, false},
		{2 * time.Second, nil, 3, true},
	} {
		fc.mu.Lock()
		fc.fail = step.fail
		fc.mu.Unlock()
		before := next.calls.Load()
		rd, err := s.Response(ctx, lookupAt(t, testSerial, ocspcodec.SHA256, testNow.Add(step.after)))
		if hit := err == nil && rd != nil; hit != step.wantHit || hit == (next.calls.Load() > before) {
			t.Errorf("+%v: Response = %v, %v, next asked %d times; want a hit: %v", step.after, rd, err, next.calls.Load()-before, step.wantHit)
		}
		if fc.gets() != step.wantGets {
			t.Errorf("+%v: cache asked %d times, want %d", step.after, fc.gets(), step.wantGets)
		}
	}
	if got := testutil.ToFloat64(m.cacheErrors); got != 2 {
		t.Errorf("cache errors = %v, want 2", got)
	}
}

// TestCacheSourceState: the completeness flag is read at most once per
// StateTTL, and a failed read counts as incomplete and trips the breaker.
func TestCacheSourceState(t *testing.T) {
	ctx := context.Background()
	m := testMetrics(t)
	fc := &fakeCache{state: ocspcache.State{Epoch: "rebuild"}}
	next := &stubSource{err: errTest}
	brk := testBreaker(m, testfix.QuietLogger())
	s := newCacheSource(fc, []ocspcodec.HashAlg{ocspcodec.SHA256}, time.Second, time.Second, brk, renderer{}, m, next)
	ask := func(after time.Duration) error {
		_, err := s.Response(ctx, lookupAt(t, testSerial, ocspcodec.SHA256, testNow.Add(after)))
		return err
	}
	if err := ask(0); err != errTest {
		t.Fatalf("incomplete: err = %v, want next's", err)
	}
	fc.state.Complete = true // the rebuild finishes
	if err := ask(999 * time.Millisecond); err != errTest {
		t.Errorf("within StateTTL: err = %v, want next's (flag not re-read)", err)
	}
	if err := ask(time.Second); !errors.Is(err, ocspcache.ErrUnknown) {
		t.Errorf("after StateTTL: err = %v, want ErrUnknown", err)
	}
	if fc.states != 2 {
		t.Errorf("State read %d times, want 2", fc.states)
	}

	fc.state, fc.fail = ocspcache.State{}, nil
	s.checkedAt.Store(0)
	s.cache = stateFails{fc}
	if err := ask(3 * time.Second); err != errTest {
		t.Errorf("State failing: err = %v, want next's", err)
	}
	if brk.of("").closed() || brk.of("").allow(testNow.Add(3*time.Second)) || testutil.ToFloat64(m.cacheErrors) != 1 {
		t.Error("a failed State read did not trip the breaker")
	}
}

// stateFails is a cache whose lookups work and whose State fails.
type stateFails struct{ *fakeCache }

func (stateFails) State(context.Context) (ocspcache.State, error) { return ocspcache.State{}, errDown }

// TestBreakerLogs: a failing cache is logged once per cooldown.
func TestBreakerLogs(t *testing.T) {
	var buf testfix.Buffer
	m := testMetrics(t)
	b := testBreaker(m, slog.New(slog.NewTextHandler(&buf, nil))).of("")
	for _, after := range []time.Duration{0, 10 * time.Millisecond, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond} {
		b.fail(testNow.Add(after), errDown)
	}
	if n := strings.Count(buf.String(), "response cache lookup failed"); n != 2 {
		t.Errorf("logged %d times, want 2:\n%s", n, buf.String())
	}
	if testutil.ToFloat64(m.cacheErrors) != 5 {
		t.Errorf("cache errors = %v, want 5", testutil.ToFloat64(m.cacheErrors))
	}
	if b.allow(testNow.Add(2499*time.Millisecond)) || !b.allow(testNow.Add(2500*time.Millisecond)) {
		t.Error("the breaker does not stay open for a cooldown after the last failure")
	}
}

// TestBreakerHalfOpen: once the cooldown is over one request at a time
// probes the cache; the others keep off it until the probe succeeds, and
// a failed probe opens the breaker for another cooldown.
func TestBreakerHalfOpen(t *testing.T) {
	var buf testfix.Buffer
	b := testBreaker(testMetrics(t), slog.New(slog.NewTextHandler(&buf, nil))).of("")
	for range 2 {
		if !b.allow(testNow) || !b.closed() {
			t.Fatal("a closed breaker refuses requests")
		}
	}
	b.ok() // no-op while closed
	b.fail(testNow, errDown)
	after := testNow.Add(time.Second)
	if !b.allow(after) {
		t.Fatal("no probe after the cooldown")
	}
	for range 3 {
		if b.allow(after) || b.closed() {
			t.Fatal("a second request let through while the probe is under way")
		}
	}
	b.fail(after, errDown) // the probe fails
	if b.allow(after.Add(999*time.Millisecond)) || !b.allow(after.Add(time.Second)) {
		t.Fatal("a failed probe does not open the breaker for a cooldown")
	}
	b.ok() // this probe succeeds
	for range 2 {
		if !b.closed() || !b.allow(after.Add(time.Second)) {
			t.Error("a successful probe does not close the breaker")
		}
	}
	if n := strings.Count(buf.String(), "breaker closed"); n != 1 {
		t.Errorf("recovery logged %d times, want 1:\n%s", n, buf.String())
	}
}

func TestLiveOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		want    int // index into metrics.live, -1 for none
		wantLog bool
	}{
		{"signed", nil, liveSigned, false},
		{"unknown", fmt.Errorf("signer: %w", ocspcache.ErrUnknown), liveUnknown, false},
		{"rejected is the budget's to count", errBudget, -1, false},
		{"failed", errTest, liveFailed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf testfix.Buffer
			m := testMetrics(t)
			l := lookupAt(t, testSerial, ocspcodec.SHA384, testNow)
			o := &liveOutcomes{next: &stubSource{rd: renderedFor(l), err: tc.err}, m: m, log: slog.New(slog.NewTextHandler(&buf, nil))}
			for range 2 { // each request is counted
				if _, err := o.Response(context.Background(), l); err != tc.err {
					t.Fatalf("err = %v, want next's %v", err, tc.err)
				}
			}
			want := [numLive]float64{}
			if tc.want >= 0 {
				want[tc.want] = 2
			}
			if got := liveCounts(m); got != want {
				t.Errorf("live_signing_total by %v = %v, want %v", liveNames, got, want)
			}
			if logged := strings.Contains(buf.String(), "live signing failed"); logged != tc.wantLog {
				t.Errorf("logged %v, want %v:\n%s", logged, tc.wantLog, buf.String())
			}
		})
	}
}

func liveCounts(m *metrics) (out [numLive]float64) {
	for i, c := range m.live {
		out[i] = testutil.ToFloat64(c)
	}
	return out
}

// TestCoalescer: concurrent requests for one key share one answer from
// next, errors included; other keys are not held up.
func TestCoalescer(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{{"response", nil}, {"error", errTest}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { checkCoalescer(t, tc.err) })
		})
	}
}

func checkCoalescer(t *testing.T, nextErr error) {
	l := lookupAt(t, testSerial, ocspcodec.SHA384, testNow)
	next := &stubSource{rd: renderedFor(l), err: nextErr, block: make(chan struct{})}
	c := &coalescer{next: next}
	type result struct {
		rd  *rendered
		err error
	}
	results := make(chan result)
	ask := func(l lookup) {
		rd, err := c.Response(context.Background(), l)
		results <- result{rd, err}
	}
	for range 5 {
		go ask(l)
	}
	go ask(lookupAt(t, "02cd", ocspcodec.SHA384, testNow))
	synctest.Wait()
	if got := next.calls.Load(); got != 2 {
		t.Fatalf("next asked %d times for 6 requests on 2 keys, want 2", got)
	}
	close(next.block)
	for range 6 {
		if r := <-results; r.rd != next.rd || r.err != nextErr {
			t.Errorf("Response = %v, %v; want next's", r.rd, r.err)
		}
	}
}

// TestBudget: beyond its size, requests get errBudget at once.
func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := testMetrics(t)
		l := lookupAt(t, testSerial, ocspcodec.SHA384, testNow)
		next := &stubSource{rd: renderedFor(l), block: make(chan struct{})}
		b := newBudget(1, m, next)
		done := make(chan error)
		go func() {
			_, err := b.Response(ctx, l)
			done <- err
		}()
		synctest.Wait()
		if got := testutil.ToFloat64(m.liveInflight); got != 1 {
			t.Errorf("inflight = %v, want 1", got)
		}
		if _, err := b.Response(ctx, lookupAt(t, "02cd", ocspcodec.SHA384, testNow)); err != errBudget {
			t.Errorf("beyond the budget: err = %v, want errBudget", err)
		}
		if got := testutil.ToFloat64(m.live[liveRejected]); got != 1 || next.calls.Load() != 1 {
			t.Errorf("rejected = %v, next asked %d times; want 1, 1", got, next.calls.Load())
		}
		close(next.block)
		if err := <-done; err != nil {
			t.Errorf("within the budget: err = %v", err)
		}
		if got := testutil.ToFloat64(m.liveInflight); got != 0 {
			t.Errorf("inflight = %v after the signature, want 0", got)
		}
		if _, err := b.Response(ctx, l); err != nil {
			t.Errorf("slot not given back: err = %v", err)
		}
	})
}

// signerFunc adapts a function to LiveSigner.
type signerFunc func(ctx context.Context, is issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error)

func (f signerFunc) SignLive(ctx context.Context, is issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error) {
	return f(ctx, is, h, sn)
}

// liveCase is one request of TestLiveSource.
type liveCase struct {
	name      string
	sn        string
	entry     ocspcache.Entry // what the signer returns
	signErr   error
	cacheDown bool  // breaker open before the request
	putErr    error // the cache fails writes
	// want is an outcome: "response", "unknown" or "error".
	want      string
	wantPut   bool
	wantTrips bool
}

func TestLiveSource(t *testing.T) {
	signed := entryAt("signed", testNow)
	expired := entryAt("expired", testNow)
	expired.NextUpdate = testNow
	for _, tc := range []liveCase{
		{name: "signed and written back", sn: testSerial, entry: signed, want: "response", wantPut: true},
		{name: "cache cooling down: not written", sn: testSerial, entry: signed, cacheDown: true, want: "response"},
		{name: "write fails: breaker trips", sn: testSerial, entry: signed, putErr: errDown, want: "response", wantTrips: true},
		{name: "unknown certificate", sn: testSerial, signErr: fmt.Errorf("signer: %w", ocspcache.ErrUnknown), want: "unknown"},
		{name: "signer fails", sn: testSerial, signErr: errTest, want: "error"},
		{name: "no response", sn: testSerial, want: "error"},
		{name: "expired response", sn: testSerial, entry: expired, want: "error"},
		{name: "zero serial is unknown, not signed", sn: "00", want: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkLiveSource(t, tc) })
	}
}

func checkLiveSource(t *testing.T, tc liveCase) {
	m := testMetrics(t)
	brk := testBreaker(m, testfix.QuietLogger())
	if tc.cacheDown {
		brk.of("").fail(testNow, errDown)
	}
	errsBefore := testutil.ToFloat64(m.cacheErrors)
	var calls []string
	signer := signerFunc(func(ctx context.Context, is issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error) {
		calls = append(calls, fmt.Sprintf("%s %v %s", is, h, sn))
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 2*time.Second {
			t.Errorf("signing context deadline %v, %v; want within SignTimeout", dl, ok)
		}
		return tc.entry, tc.signErr
	})
	fc := &fakeCache{fail: tc.putErr}
	s := &liveSource{signer: signer, cache: fc, brk: brk, rr: renderer{}, signTimeout: 2 * time.Second, putTimeout: time.Second}
	l := lookupAt(t, tc.sn, ocspcodec.SHA384, testNow)
	rd, err := s.Response(context.Background(), l)
	if got := outcome(rd, err); got != tc.want {
		t.Errorf("Response: %s (%v), want %s", got, err, tc.want)
	}
	if rd != nil && (string(rd.der) != "signed" || rd.key != l.keyString()) {
		t.Errorf("rendered %q under %q", rd.der, rd.key)
	}
	var wantCalls []string
	if tc.sn == testSerial {
		wantCalls = []string{"int-a SHA-384 " + testSerial}
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("signer calls (-want +got):\n%s", diff)
	}
	var wantPuts []ocspcache.Item
	if tc.wantPut {
		wantPuts = []ocspcache.Item{{Key: l.keyString(), Entry: tc.entry}}
	}
	if diff := cmp.Diff(wantPuts, fc.puts); diff != "" {
		t.Errorf("written back (-want +got):\n%s", diff)
	}
	if trips := testutil.ToFloat64(m.cacheErrors) > errsBefore; trips != tc.wantTrips {
		t.Errorf("breaker tripped: %v, want %v", trips, tc.wantTrips)
	}
}

// TestLiveSourceTimeout: a stalled signer is given up on after
// SignTimeout.
func TestLiveSourceTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer := signerFunc(func(ctx context.Context, _ issuerid.ID, _ ocspcodec.HashAlg, _ serial.Serial) (ocspcache.Entry, error) {
			<-ctx.Done()
			return ocspcache.Entry{}, ctx.Err()
		})
		m := testMetrics(t)
		s := &liveSource{signer: signer, cache: &fakeCache{}, brk: testBreaker(m, testfix.QuietLogger()), signTimeout: 2 * time.Second, putTimeout: time.Second}
		start := time.Now()
		_, err := s.Response(context.Background(), lookupAt(t, testSerial, ocspcodec.SHA384, testNow))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Errorf("err = %v after %v; want a deadline after 2s", err, time.Since(start))
		}
	})
}

// TestChain checks the order New assembles the sources in (doc.go says
// why).
func TestChain(t *testing.T) {
	ca := testfix.NewCA(t, "chain", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0))
	signer := signerFunc(func(context.Context, issuerid.ID, ocspcodec.HashAlg, serial.Serial) (ocspcache.Entry, error) {
		return ocspcache.Entry{}, errTest
	})
	full := []string{"*responder.l1Source", "*responder.cacheSource", "*responder.liveOutcomes", "*responder.coalescer", "*responder.budget", "*responder.liveSource"}
	for _, tc := range []struct {
		name   string
		l1     int
		live   int
		signer LiveSigner
		want   []string
	}{
		{"everything", 10, 1, signer, full},
		{"no L1", 0, 1, signer, full[1:]},
		{"no signer", 10, 1, nil, []string{"*responder.l1Source", "*responder.cacheSource", "responder.unavailable"}},
		{"no live signing budget", 0, 0, signer, []string{"*responder.cacheSource", "responder.unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(Config{Issuers: []Issuer{{ID: testIssuer, Cert: ca.Cert}}, L1Entries: tc.l1, LiveSigning: tc.live},
				Deps{Cache: &fakeCache{}, Evictions: &fakeEvictions{}, Signer: tc.signer, Log: testfix.QuietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if diff := cmp.Diff(tc.want, chain(r.src)); diff != "" {
				t.Errorf("chain (-want +got):\n%s", diff)
			}
		})
	}
}

// chain lists the sources from s down.
func chain(s source) []string {
	var out []string
	for s != nil {
		out = append(out, fmt.Sprintf("%T", s))
		switch v := s.(type) {
		case *l1Source:
			s = v.next
		case *cacheSource:
			s = v.next
		case *liveOutcomes:
			s = v.next
		case *coalescer:
			s = v.next
		case *budget:
			s = v.next
		default:
			s = nil
		}
	}
	return out
}

// twoParts is a cache of two parts, as a Redis Cluster has many: keys of
// serial 03ab live in part 1, whose server is down; the rest in part 0.
type twoParts struct{ *fakeCache }

func (twoParts) Partitions() int { return 2 }

func (twoParts) Partition(key string) int {
	if strings.Contains(key, ":03ab:") {
		return 1
	}
	return 0
}

func (c twoParts) Get(ctx context.Context, keys []string, out []ocspcache.Entry) error {
	for _, k := range keys {
		if c.Partition(k) == 1 {
			c.fakeCache.Get(ctx, keys, out) // counted as asked
			return errDown
		}
	}
	return c.fakeCache.Get(ctx, keys, out)
}

// TestBreakerPerPart: on a partitioned cache a failing part trips its
// own breaker only: its keys go to next without asking the cache for a
// cooldown, while the other part's keys are still looked up.
func TestBreakerPerPart(t *testing.T) {
	ctx := context.Background()
	m := testMetrics(t)
	fc := &fakeCache{state: ocspcache.State{Epoch: "e", Complete: true}}
	cache := twoParts{fc}
	next := &stubSource{err: errTest}
	brk := newBreakers(cache, time.Second, testfix.QuietLogger(), m.cacheErrors)
	if len(brk.parts) != 2 {
		t.Fatalf("%d breakers, want one per part", len(brk.parts))
	}
	s := newCacheSource(cache, []ocspcodec.HashAlg{ocspcodec.SHA256}, time.Second, time.Second, brk, renderer{}, m, next)
	ask := func(sn string, after time.Duration) error {
		_, err := s.Response(ctx, lookupAt(t, sn, ocspcodec.SHA256, testNow.Add(after)))
		return err
	}
	if err := ask("03ab", 0); err != errTest {
		t.Fatalf("the failing part: err = %v, want next's", err)
	}
	before := fc.gets()
	if err := ask("03ab", 100*time.Millisecond); err != errTest || fc.gets() != before {
		t.Errorf("the failing part within its cooldown: err = %v, cache asked %d times more, want next's and 0", err, fc.gets()-before)
	}
	if err := ask("02cd", 200*time.Millisecond); !errors.Is(err, ocspcache.ErrUnknown) || fc.gets() != before+1 {
		t.Errorf("the other part: err = %v after %d lookups, want one lookup proving it unknown", err, fc.gets()-before)
	}
	if !brk.of(ocspcache.Key("x", "02cd", ocspcodec.SHA256)).closed() || brk.of(ocspcache.Key("x", "03ab", ocspcodec.SHA256)).closed() {
		t.Error("want part 0 closed and part 1 open")
	}
}
