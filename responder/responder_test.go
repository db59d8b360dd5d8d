package responder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/internal/resptest"
)

const (
	issuerA = issuerid.ID("int-a")
	issuerB = issuerid.ID("int-b")
	// Serials of the fixture: good, revoked, and one never issued.
	snGood    = "11aabbccddeeff00112233445566778899"
	snRevoked = "11aabbccddeeff0011223344556677889a"
	snUnknown = "11aabbccddeeff0011223344556677889b"
)

var (
	pkiA = sync.OnceValue(func() *resptest.PKI { return resptest.NewPKI(&testing.T{}, "A") })
	pkiB = sync.OnceValue(func() *resptest.PKI { return resptest.NewPKI(&testing.T{}, "B") })
)

// fakeSigner signs live for the serials it knows, like the pipeline.
type fakeSigner struct {
	pki   *resptest.PKI
	now   func() time.Time
	known map[serial.Serial]status.Status
	calls atomic.Int64
	block chan struct{} // if set, SignLive waits on it
	fail  error
}

func (f *fakeSigner) SignLive(ctx context.Context, is issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ocspcache.Entry{}, ctx.Err()
		}
	}
	if f.fail != nil {
		return ocspcache.Entry{}, f.fail
	}
	st, ok := f.known[sn]
	if !ok || is != issuerA {
		return ocspcache.Entry{}, fmt.Errorf("fake: %s: %w", sn, ocspcache.ErrUnknown)
	}
	return f.pki.Entry(&testing.T{}, string(sn), h, st, f.now()), nil
}

// flakyCache wraps a cache, counting lookups and failing on demand.
type flakyCache struct {
	*ocspcache.Memory
	fail atomic.Bool
	gets atomic.Int64
}

var errDown = errors.New("flaky: cache down")

func (c *flakyCache) Get(ctx context.Context, keys []string, out []ocspcache.Entry) error {
	c.gets.Add(1)
	if c.fail.Load() {
		return errDown
	}
	return c.Memory.Get(ctx, keys, out)
}

func (c *flakyCache) Put(ctx context.Context, items []ocspcache.Item) error {
	if c.fail.Load() {
		return errDown
	}
	return c.Memory.Put(ctx, items)
}

func (c *flakyCache) State(ctx context.Context) (ocspcache.State, error) {
	if c.fail.Load() {
		return ocspcache.State{}, errDown
	}
	return c.Memory.State(ctx)
}

type env struct {
	t      *testing.T
	clock  *testfix.Clock
	cache  *flakyCache
	signer *fakeSigner
	reg    *prometheus.Registry
	resp   *responder.Responder
	// entries are the pre-signed responses, by key.
	entries map[string]ocspcache.Entry
}

type option func(*responder.Config, *responder.Deps)

// newEnv builds a responder over a memory cache holding the fixture's
// pre-signed responses (SHA-1 and SHA-256) and a complete State.
func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	clock := testfix.NewClock(time.Now().Truncate(time.Second))
	mem, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: clock, cache: &flakyCache{Memory: mem}, reg: prometheus.NewRegistry(), entries: map[string]ocspcache.Entry{}}
	e.signer = &fakeSigner{pki: pkiA(), now: clock.Now,
		known: map[serial.Serial]status.Status{snGood: status.Good, snRevoked: status.Revoked}}
	var items []ocspcache.Item
	for sn, st := range e.signer.known {
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256} {
			k := ocspcache.Key(issuerA, string(sn), h)
			en := pkiA().Entry(t, string(sn), h, st, clock.Now())
			e.entries[k] = en
			items = append(items, ocspcache.Item{Key: k, Entry: en})
		}
	}
	ctx := context.Background()
	if err := mem.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := mem.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "test", Complete: true}); err != nil {
		t.Fatal(err)
	}
	cfg := responder.Config{
		Issuers:     []responder.Issuer{{ID: issuerA, Cert: pkiA().Issuer}, {ID: issuerB, Cert: pkiB().Issuer}},
		L1Entries:   1000,
		LiveSigning: 4,
	}
	deps := responder.Deps{Cache: e.cache, Evictions: mem, Signer: e.signer, Registerer: e.reg, Log: testfix.QuietLogger(), Now: clock.Now}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	r, err := responder.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	e.resp = r
	return e
}

func (e *env) answer(der []byte) responder.Answer {
	return e.resp.Answer(context.Background(), der)
}

func req(t *testing.T, h ocspcodec.HashAlg, sn string) []byte {
	return resptest.Request(t, nil, resptest.ID{Hash: h, Issuer: pkiA().Issuer, SerialHex: sn})
}

// metric returns the value of a counter or gauge with the given labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func TestAnswer(t *testing.T) {
	twoIDs := func(t *testing.T) []byte {
		return resptest.Request(t, nil,
			resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiA().Issuer, SerialHex: snGood},
			resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiA().Issuer, SerialHex: snRevoked})
	}
	for _, tc := range []struct {
		name string
		req  func(t *testing.T) []byte
		kind responder.Kind
		// key of the pre-signed response expected as the body; "" for
		// error answers.
		key string
	}{
		{"good SHA-1", func(t *testing.T) []byte { return req(t, ocspcodec.SHA1, snGood) }, responder.Good, ocspcache.Key(issuerA, snGood, ocspcodec.SHA1)},
		{"good SHA-256", func(t *testing.T) []byte { return req(t, ocspcodec.SHA256, snGood) }, responder.Good, ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)},
		{"revoked", func(t *testing.T) []byte { return req(t, ocspcodec.SHA256, snRevoked) }, responder.Revoked, ocspcache.Key(issuerA, snRevoked, ocspcodec.SHA256)},
		{"nonce gets the pre-signed response", func(t *testing.T) []byte {
			return resptest.Request(t, bytes.Repeat([]byte{7}, 16), resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiA().Issuer, SerialHex: snGood})
		}, responder.Good, ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)},
		{"unknown serial", func(t *testing.T) []byte { return req(t, ocspcodec.SHA256, snUnknown) }, responder.Unauthorized, ""},
		{"known serial, other issuer", func(t *testing.T) []byte {
			return resptest.Request(t, nil, resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiB().Issuer, SerialHex: snGood})
		}, responder.Unauthorized, ""},
		{"unconfigured issuer", func(t *testing.T) []byte {
			return resptest.Request(t, nil, resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiA().Root, SerialHex: snGood})
		}, responder.Unauthorized, ""},
		{"serial over 20 octets", func(t *testing.T) []byte { return req(t, ocspcodec.SHA256, "01"+snGood+"00112233") }, responder.Unauthorized, ""},
		{"two CertIDs", twoIDs, responder.Malformed, ""},
		{"garbage", func(*testing.T) []byte { return []byte("hello") }, responder.Malformed, ""},
		{"empty", func(*testing.T) []byte { return nil }, responder.Malformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.answer(tc.req(t))
			if a.Kind != tc.kind {
				t.Fatalf("Kind = %v, want %v", a.Kind, tc.kind)
			}
			if tc.key == "" {
				if a.Cacheable() {
					t.Error("error answer is cacheable")
				}
				want := map[responder.Kind][]byte{responder.Malformed: ocspcodec.MalformedRequest, responder.Unauthorized: ocspcodec.Unauthorized}[tc.kind]
				if !bytes.Equal(a.Body(), want) {
					t.Errorf("Body = %x, want %x", a.Body(), want)
				}
				return
			}
			if !a.Cacheable() || !bytes.Equal(a.Body(), e.entries[tc.key].DER) {
				t.Fatalf("Body is not the pre-signed response under %s", tc.key)
			}
			if got := metric(t, e.reg, "trustline_ocsp_answers_total", "kind", tc.kind.String()); got != 1 {
				t.Errorf("answers_total{kind=%s} = %v, want 1", tc.kind, got)
			}
		})
	}
}

// TestHeaderValues checks the RFC 5019 §6 values an Answer carries.
func TestHeaderValues(t *testing.T) {
	e := newEnv(t, func(c *responder.Config, _ *responder.Deps) { c.CacheTagHeader = "Surrogate-Key" })
	en := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)]
	e.clock.Advance(10 * time.Minute)
	a := e.answer(req(t, ocspcodec.SHA256, snGood))
	got := map[string]string{
		"MaxAge":       fmt.Sprint(a.MaxAge),
		"LastModified": string(a.LastModified()),
		"Expires":      string(a.Expires()),
		"CacheTags":    string(a.CacheTags()),
	}
	want := map[string]string{
		"MaxAge":       fmt.Sprint(int64(en.RefreshAt.Sub(e.clock.Now()) / time.Second)),
		"LastModified": en.ThisUpdate.UTC().Format(http.TimeFormat),
		"Expires":      en.NextUpdate.UTC().Format(http.TimeFormat),
		"CacheTags":    "ocsp ocsp-int-a ocsp-" + snGood,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header values (-want +got):\n%s", diff)
	}
	if etag := a.ETag(); len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Errorf("ETag %q is not a quoted strong tag", etag)
	}
	// Same response, same tag; another response, another tag.
	if b := e.answer(req(t, ocspcodec.SHA256, snGood)); !bytes.Equal(b.ETag(), a.ETag()) {
		t.Error("ETag differs between two answers of the same response")
	}
	if b := e.answer(req(t, ocspcodec.SHA1, snGood)); bytes.Equal(b.ETag(), a.ETag()) {
		t.Error("two different responses share an ETag")
	}
}

// TestResponsesParse has x/crypto/ocsp parse and verify what is served,
// and check that the CertID echoes the request's algorithm.
func TestResponsesParse(t *testing.T) {
	e := newEnv(t)
	for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256, ocspcodec.SHA384, ocspcodec.SHA512} {
		t.Run(h.String(), func(t *testing.T) {
			a := e.answer(req(t, h, snRevoked))
			if a.Kind != responder.Revoked {
				t.Fatalf("Kind = %v", a.Kind)
			}
			r, err := ocsp.ParseResponse(a.Body(), pkiA().Issuer)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != ocsp.Revoked || r.SerialNumber.Text(16) != snRevoked || r.IssuerHash != h.CryptoHash() {
				t.Errorf("parsed status %d serial %x hash %v", r.Status, r.SerialNumber, r.IssuerHash)
			}
		})
	}
}

// TestLazyAlgorithms: SHA-384/512 are signed on first request, cached and
// then served without signing again.
func TestLazyAlgorithms(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		a := e.answer(req(t, ocspcodec.SHA384, snGood))
		if a.Kind != responder.Good {
			t.Fatalf("request %d: Kind = %v", i, a.Kind)
		}
	}
	if n := e.signer.calls.Load(); n != 1 {
		t.Errorf("SignLive called %d times, want 1", n)
	}
	out := make([]ocspcache.Entry, 1)
	if err := e.cache.Memory.Get(context.Background(), []string{ocspcache.Key(issuerA, snGood, ocspcodec.SHA384)}, out); err != nil || !out[0].Found() {
		t.Error("lazily signed response not written to the cache")
	}
	// An unknown serial with a lazy algorithm: the missing pre-signed
	// response proves it unknown without asking the signer.
	before := e.signer.calls.Load()
	if a := e.answer(req(t, ocspcodec.SHA512, snUnknown)); a.Kind != responder.Unauthorized {
		t.Errorf("unknown serial, SHA-512: Kind = %v", a.Kind)
	}
	if e.signer.calls.Load() != before {
		t.Error("the signer was asked about a serial the cache proves unknown")
	}
}

// TestNeverExpired: at nextUpdate, neither the L1 nor the cache serve the
// response; without a way to re-sign, the answer is tryLater.
func TestNeverExpired(t *testing.T) {
	e := newEnv(t, func(_ *responder.Config, d *responder.Deps) { d.Signer = nil })
	en := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)]
	if a := e.answer(req(t, ocspcodec.SHA256, snGood)); a.Kind != responder.Good {
		t.Fatalf("Kind = %v", a.Kind)
	}
	// The pipeline is stuck: nothing refreshes the response.
	e.clock.Advance(en.NextUpdate.Sub(e.clock.Now()))
	a := e.answer(req(t, ocspcodec.SHA256, snGood))
	if a.Cacheable() || bytes.Equal(a.Body(), en.DER) {
		t.Fatal("served a response at its nextUpdate")
	}
	// The cache is complete and the response is gone: unknown, as far as
	// the responder can tell.
	if a.Kind != responder.Unauthorized {
		t.Errorf("Kind = %v, want unauthorized", a.Kind)
	}
}

// TestL1 checks hits, the refresh-point bound, and that a revocation
// written to the cache evicts the L1 copy at once.
func TestL1(t *testing.T) {
	e := newEnv(t)
	r := req(t, ocspcodec.SHA256, snGood)
	for range 3 {
		e.answer(r)
	}
	if got := metric(t, e.reg, "trustline_ocsp_lookups_total", "tier", "l1", "result", "hit"); got != 2 {
		t.Errorf("L1 hits = %v, want 2", got)
	}
	if got := metric(t, e.reg, "trustline_ocsp_l1_entries"); got != 1 {
		t.Errorf("l1_entries = %v, want 1", got)
	}

	// Revoke: the pipeline writes the revoked response with Evict.
	key := ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)
	rev := pkiA().Entry(t, snGood, ocspcodec.SHA256, status.Revoked, e.clock.Now())
	if err := e.cache.Memory.Put(context.Background(), []ocspcache.Item{{Key: key, Entry: rev, Evict: true}}); err != nil {
		t.Fatal(err)
	}
	if a := e.answer(r); a.Kind != responder.Revoked || !bytes.Equal(a.Body(), rev.DER) {
		t.Fatalf("after revocation: Kind = %v", a.Kind)
	}

	// Past the refresh point the L1 copy is not used: the cache is asked.
	gets := e.cache.gets.Load()
	e.clock.Advance(resptest.RefreshAfter)
	e.answer(r)
	if e.cache.gets.Load() == gets {
		t.Error("L1 served an entry past its refresh point")
	}
}

// TestL1Bounded: the L1 never holds more than its capacity.
func TestL1Bounded(t *testing.T) {
	e := newEnv(t, func(c *responder.Config, _ *responder.Deps) { c.L1Entries = 8 })
	var items []ocspcache.Item
	var reqs [][]byte
	for i := range 50 {
		sn := fmt.Sprintf("22%032x", i+1)
		items = append(items, ocspcache.Item{Key: ocspcache.Key(issuerA, sn, ocspcodec.SHA256),
			Entry: pkiA().Entry(t, sn, ocspcodec.SHA256, status.Good, e.clock.Now())})
		reqs = append(reqs, req(t, ocspcodec.SHA256, sn))
	}
	if err := e.cache.Memory.Put(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if a := e.answer(r); a.Kind != responder.Good {
			t.Fatalf("Kind = %v", a.Kind)
		}
	}
	if got := metric(t, e.reg, "trustline_ocsp_l1_entries"); got > 8 {
		t.Errorf("l1_entries = %v, want ≤ 8", got)
	}
}

// TestCacheDown: with the cache failing, L1 hits are served, misses are
// signed live, unknown serials stay unauthorized, and the cache is not
// hammered during the cooldown.
func TestCacheDown(t *testing.T) {
	e := newEnv(t)
	cached := req(t, ocspcodec.SHA256, snGood)
	e.answer(cached) // into L1
	e.cache.fail.Store(true)

	for _, tc := range []struct {
		name string
		req  []byte
		kind responder.Kind
	}{
		{"L1 hit", cached, responder.Good},
		{"miss signed live", req(t, ocspcodec.SHA1, snRevoked), responder.Revoked},
		{"unknown stays unauthorized", req(t, ocspcodec.SHA256, snUnknown), responder.Unauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := e.answer(tc.req); a.Kind != tc.kind {
				t.Errorf("Kind = %v, want %v", a.Kind, tc.kind)
			}
		})
	}
	if g := e.cache.gets.Load(); g > 2 {
		t.Errorf("cache asked %d times during its cooldown, want at most 2", g)
	}

	t.Run("without a signer: tryLater", func(t *testing.T) {
		e := newEnv(t, func(_ *responder.Config, d *responder.Deps) { d.Signer = nil })
		e.cache.fail.Store(true)
		if a := e.answer(req(t, ocspcodec.SHA256, snGood)); a.Kind != responder.TryLater || a.Cacheable() {
			t.Errorf("Kind = %v, cacheable %v; want tryLater, not cacheable", a.Kind, a.Cacheable())
		}
	})
}

// TestIncompleteCache: while the cache is being rebuilt a miss is not
// proof of an unknown serial; the responder signs live, or says tryLater.
func TestIncompleteCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		signer    bool
		sn        string
		want      responder.Kind
		wantCalls int64
	}{
		{"known, signed live", true, snGood, responder.Good, 1},
		{"unknown, signer says so", true, snUnknown, responder.Unauthorized, 1},
		{"no signer", false, snGood, responder.TryLater, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *responder.Config, d *responder.Deps) {
				if !tc.signer {
					d.Signer = nil
				}
			})
			ctx := context.Background()
			st, _ := e.cache.State(ctx)
			if err := e.cache.SwapState(ctx, st, ocspcache.State{Epoch: "rebuild", Complete: false}); err != nil {
				t.Fatal(err)
			}
			// Drop the fixture's responses, as a lost cache would.
			mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: e.clock.Now})
			mem.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "rebuild"})
			e.cache.Memory = mem
			if a := e.answer(req(t, ocspcodec.SHA256, tc.sn)); a.Kind != tc.want {
				t.Errorf("Kind = %v, want %v", a.Kind, tc.want)
			}
			if got := e.signer.calls.Load(); got != tc.wantCalls {
				t.Errorf("SignLive calls = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestBoundedCacheDropped: once a bounded memory cache has dropped live
// responses, a miss no longer proves a serial unknown even though the
// rebuild completed: the live signer answers it (a known serial good, an
// unknown one unauthorized because the signer says so).
func TestBoundedCacheDropped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mem, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: e.clock.Now, MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "test", Complete: true}); err != nil {
		t.Fatal(err)
	}
	filler := pkiA().Entry(t, snGood, ocspcodec.SHA1, status.Good, e.clock.Now())
	for i := 0; !mem.Dropped(); i++ {
		items := make([]ocspcache.Item, 1000)
		for j := range items {
			items[j] = ocspcache.Item{Key: ocspcache.Key(issuerA, fmt.Sprintf("7%07x%04x", i, j), ocspcodec.SHA1), Entry: filler}
		}
		if err := mem.Put(ctx, items); err != nil {
			t.Fatal(err)
		}
		if i > 100 {
			t.Fatal("100,000 responses into 4 MiB and nothing dropped")
		}
	}
	e.cache.Memory = mem
	if a := e.answer(req(t, ocspcodec.SHA256, snGood)); a.Kind != responder.Good {
		t.Errorf("dropped known serial: Kind = %v, want good (signed live)", a.Kind)
	}
	if a := e.answer(req(t, ocspcodec.SHA256, snUnknown)); a.Kind != responder.Unauthorized {
		t.Errorf("unknown serial: Kind = %v, want unauthorized", a.Kind)
	}
	if got := e.signer.calls.Load(); got != 2 {
		t.Errorf("SignLive calls = %d, want 2: misses must reach the signer", got)
	}
}

// TestLiveBudget: beyond LiveSigning concurrent signatures, tryLater.
func TestLiveBudget(t *testing.T) {
	e := newEnv(t, func(c *responder.Config, _ *responder.Deps) { c.LiveSigning = 1 })
	e.signer.block = make(chan struct{})
	done := make(chan responder.Answer)
	go func() { done <- e.answer(req(t, ocspcodec.SHA384, snGood)) }()
	for e.signer.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Another key (the same key would share the first signature).
	if a := e.answer(req(t, ocspcodec.SHA384, snRevoked)); a.Kind != responder.TryLater {
		t.Errorf("second live signature: Kind = %v, want tryLater", a.Kind)
	}
	close(e.signer.block)
	if a := <-done; a.Kind != responder.Good {
		t.Errorf("first live signature: Kind = %v", a.Kind)
	}
	if got := metric(t, e.reg, "trustline_ocsp_live_signing_total", "result", "rejected"); got != 1 {
		t.Errorf("live_signing_total{rejected} = %v, want 1", got)
	}
}

func TestConfigValidate(t *testing.T) {
	is := []responder.Issuer{{ID: issuerA, Cert: pkiA().Issuer}}
	for _, tc := range []struct {
		name string
		cfg  responder.Config
		ok   bool
	}{
		{"minimal", responder.Config{Issuers: is}, true},
		{"no issuers", responder.Config{}, false},
		{"bad algorithm", responder.Config{Issuers: is, Presigned: []ocspcodec.HashAlg{9}}, false},
		{"negative L1", responder.Config{Issuers: is, L1Entries: -1}, false},
		{"bad tag header", responder.Config{Issuers: is, CacheTagHeader: "X-Tags"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{})
	if _, err := responder.New(responder.Config{Issuers: is, L1Entries: 10}, responder.Deps{Cache: mem, Log: testfix.QuietLogger()}); err == nil {
		t.Error("New accepted an L1 without Evictions")
	}
	if _, err := responder.New(responder.Config{Issuers: append(is, is...)}, responder.Deps{Cache: mem, Log: testfix.QuietLogger()}); err == nil {
		t.Error("New accepted an issuer listed twice")
	}
}

// FuzzAnswer: any input gets an answer; only pre-signed responses are
// cacheable, and only for requests that name a known certificate.
func FuzzAnswer(f *testing.F) {
	t := &testing.T{}
	for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256, ocspcodec.SHA384} {
		f.Add(req(t, h, snGood))
		f.Add(req(t, h, snUnknown))
	}
	f.Add(resptest.Request(t, []byte{1, 2, 3}, resptest.ID{Hash: ocspcodec.SHA256, Issuer: pkiA().Issuer, SerialHex: snRevoked}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		e := newEnvF(t)
		a := e.answer(der)
		if a.Cacheable() {
			found := false
			for _, en := range e.entries {
				found = found || bytes.Equal(en.DER, a.Body())
			}
			if !found && a.Kind != responder.Good && a.Kind != responder.Revoked {
				t.Errorf("cacheable answer %v is no known response", a.Kind)
			}
		} else if len(a.Body()) != 5 {
			t.Errorf("error answer of %d octets", len(a.Body()))
		}
	})
}

var fuzzEnv struct {
	once sync.Once
	e    *env
}

// newEnvF shares one env between fuzz iterations (building one signs).
func newEnvF(t *testing.T) *env {
	fuzzEnv.once.Do(func() { fuzzEnv.e = newEnv(&testing.T{}) })
	return fuzzEnv.e
}

// BenchmarkAnswerL1Hit is the responder's hot path: parse, issuer match,
// key, L1 lookup. It must not allocate.
func BenchmarkAnswerL1Hit(b *testing.B) {
	e := newEnv(&testing.T{})
	r := req(&testing.T{}, ocspcodec.SHA256, snGood)
	ctx := context.Background()
	if a := e.resp.Answer(ctx, r); a.Kind != responder.Good {
		b.Fatalf("Kind = %v", a.Kind)
	}
	b.ReportAllocs()
	for b.Loop() {
		if a := e.resp.Answer(ctx, r); a.Kind != responder.Good {
			b.Fatal(a.Kind)
		}
	}
}

func TestAnswerL1HitAllocs(t *testing.T) {
	e := newEnv(t)
	r := req(t, ocspcodec.SHA256, snGood)
	ctx := context.Background()
	e.resp.Answer(ctx, r)
	if n := testing.AllocsPerRun(1000, func() { e.resp.Answer(ctx, r) }); n != 0 {
		t.Errorf("L1 hit allocates %v times per answer", n)
	}
}
