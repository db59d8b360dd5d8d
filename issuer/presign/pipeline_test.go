package presign_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/presign"
)

func TestConfigValidate(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name string
		cfg  presign.Config
		ok   bool
	}{
		{"defaults", presign.Config{}, true},
		{"8h validity, refresh at half", presign.Config{Validity: 8 * h, RefreshAfter: 4 * h, Backdate: -1}, true},
		{"under 8h", presign.Config{Validity: 7 * h}, false},
		{"10 days counted inclusively", presign.Config{Validity: 240 * h, RefreshAfter: 96 * h}, false},
		{"10 days minus a second", presign.Config{Validity: 240*h - time.Second, RefreshAfter: 96 * h}, true},
		{"refresh over 4 days after thisUpdate", presign.Config{Validity: 9 * 24 * h, RefreshAfter: 97 * h}, false},
		{"refresh under 8h before nextUpdate", presign.Config{Validity: 24 * h, RefreshAfter: 17 * h}, false},
		{"short validity, refresh past half", presign.Config{Validity: 12 * h, RefreshAfter: 7 * h}, false},
		{"backdate over 24h", presign.Config{Backdate: 25 * h}, false},
		{"refresh too close to backdate", presign.Config{Validity: 8 * h, RefreshAfter: 4 * h, Backdate: 3*h + 30*time.Minute}, false},
		{"bad hash", presign.Config{HashAlgs: []ocspcodec.HashAlg{0}}, false},
		{"repeated hash", presign.Config{HashAlgs: []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA1}}, false},
		{"negative workers", presign.Config{Workers: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestIssueAndRevoke: the sink puts the good response in the cache before
// Issue returns, and the revoked one (reason, time, every hash algorithm)
// before Revoke returns, evicting readers' copies.
func TestIssueAndRevoke(t *testing.T) {
	e := newEnv(t, envOpts{})
	mem := e.mem
	var mu sync.Mutex
	var evicted []string
	cancel := mem.Subscribe(func(ev ocspcache.Eviction) { mu.Lock(); evicted = append(evicted, ev.Prefix); mu.Unlock() })
	defer cancel()

	for _, name := range []string{"p256.example.com"} {
		c := e.issue(name)
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256} {
			en := e.cached(c.IssuerID, c.Serial, h)
			r := e.check(en, c, h, ocsp.Good)
			if r.Certificate == nil {
				t.Error("response carries no delegated responder certificate")
			}
		}
		if en := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA384); en.Found() {
			t.Error("SHA-384 pre-signed, though not configured")
		}

		rc := e.revoke(c.Serial, reason.KeyCompromise)
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256, ocspcodec.SHA384, ocspcodec.SHA512} {
			r := e.check(e.cached(c.IssuerID, c.Serial, h), rc, h, ocsp.Revoked)
			if r.RevocationReason != ocsp.KeyCompromise || !r.RevokedAt.Equal(rc.RevokedAt.Truncate(time.Second)) {
				t.Errorf("%v: reason %d at %v; want keyCompromise at %v", h, r.RevocationReason, r.RevokedAt, rc.RevokedAt)
			}
			if r.ThisUpdate.Before(r.RevokedAt) {
				t.Errorf("%v: thisUpdate %v before the revocation %v", h, r.ThisUpdate, r.RevokedAt)
			}
		}
		mu.Lock()
		if want := ocspcache.EvictionPrefix(c.IssuerID, string(c.Serial)); len(evicted) != 1 || evicted[0] != want {
			t.Errorf("evictions %q, want [%q]", evicted, want)
		}
		mu.Unlock()
	}
}

// TestRSAIssuer: the RSA-2048 intermediate's responses (RSA responder
// key) verify too.
func TestRSAIssuer(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	if _, err := bench.Populate(ctx, e.ca, e.st, populate(2, 0.5, "rsa")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	certs, _ := e.st.ListCertificates(ctx, store.Page{})
	for _, c := range certs {
		full, _ := e.st.Certificate(ctx, c.Serial)
		want := map[status.Status]int{status.Good: ocsp.Good, status.Revoked: ocsp.Revoked}[c.Status]
		e.check(e.cached(c.IssuerID, c.Serial, ocspcodec.SHA256), full, ocspcodec.SHA256, want)
		if c.IssuerID != "int-rsa2048" {
			t.Errorf("issuer %s", c.IssuerID)
		}
	}
}

// TestTimes checks BR §4.9.10 on what is cached: backdated thisUpdate,
// validity and refresh point.
func TestTimes(t *testing.T) {
	e := newEnv(t, envOpts{cfg: presign.Config{Validity: 96 * time.Hour, RefreshAfter: 48 * time.Hour, Backdate: 2 * time.Hour}})
	c := e.issue("times.example.com")
	en := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA256)
	now := e.clock.Now()
	if want := now.Add(-2 * time.Hour); !en.ThisUpdate.Equal(want) {
		t.Errorf("thisUpdate %v, want %v", en.ThisUpdate, want)
	}
	if d := en.NextUpdate.Sub(en.ThisUpdate); d != 96*time.Hour {
		t.Errorf("validity %v", d)
	}
	if d := en.RefreshAt.Sub(en.ThisUpdate); d != 48*time.Hour {
		t.Errorf("refresh after %v", d)
	}
	got, err := e.st.Certificate(context.Background(), c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OCSPRefreshAt.Equal(en.RefreshAt) {
		t.Errorf("store refresh point %v, want %v", got.OCSPRefreshAt, en.RefreshAt)
	}
}

// TestRefresh: nothing is due after issuance; at the refresh point the
// responses are re-signed with a new thisUpdate and rescheduled.
func TestRefresh(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.issue("refresh.example.com")
	ctx := context.Background()
	if n, err := e.p.Refresh(ctx); err != nil || n != 0 {
		t.Fatalf("Refresh right after issuance: %d, %v", n, err)
	}
	before := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA1)
	e.clock.Advance(before.RefreshAt.Sub(e.clock.Now()))
	if n, err := e.p.Refresh(ctx); err != nil || n != 1 {
		t.Fatalf("Refresh at the refresh point: %d, %v", n, err)
	}
	after := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA1)
	if !after.ThisUpdate.After(before.ThisUpdate) {
		t.Errorf("thisUpdate %v not after %v", after.ThisUpdate, before.ThisUpdate)
	}
	e.check(after, c, ocspcodec.SHA1, ocsp.Good)
	if n, _ := e.p.Refresh(ctx); n != 0 {
		t.Errorf("%d certificates still due after a refresh", n)
	}
}

// staleStore answers DueForOCSP with a row read before a revocation.
type staleStore struct {
	store.Store
	stale store.CertSummary
}

func (s staleStore) DueForOCSP(context.Context, time.Time, time.Time, int) ([]store.CertSummary, error) {
	return []store.CertSummary{s.stale}, nil
}

// TestNoDowngrade: a refresh working from data read before a revocation
// must not put a good response back over the revoked one.
func TestNoDowngrade(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.issue("race.example.com")
	sum := store.CertSummary{Serial: c.Serial, IssuerID: c.IssuerID, NotAfter: c.NotAfter, Status: status.Good}
	rc := e.revoke(c.Serial, reason.Superseded)

	p, err := presign.New(presign.Config{}, presign.Deps{Store: staleStore{Store: e.st, stale: sum}, Cache: e.cache,
		Issuers: fromPKI(e.pki), Log: testfix.QuietLogger(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.check(e.cached(c.IssuerID, c.Serial, ocspcodec.SHA256), rc, ocspcodec.SHA256, ocsp.Revoked)
}

// TestSignLive: known certificates are signed for any algorithm; unknown,
// expired or another issuer's serials are ErrUnknown.
func TestSignLive(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.issue("live.example.com")
	ctx := context.Background()
	en, err := e.p.SignLive(ctx, c.IssuerID, ocspcodec.SHA512, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	e.check(en, c, ocspcodec.SHA512, ocsp.Good)
	other := e.pki.Intermediates[1].ID
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"unknown serial", func() error {
			_, err := e.p.SignLive(ctx, c.IssuerID, ocspcodec.SHA256, serial.MustParse("0102030405"))
			return err
		}},
		{"other issuer", func() error { _, err := e.p.SignLive(ctx, other, ocspcodec.SHA256, c.Serial); return err }},
		{"expired", func() error {
			e.clock.Advance(c.NotAfter.Sub(e.clock.Now()) + time.Second)
			defer e.clock.Advance(-(c.NotAfter.Sub(e.clock.Now()) + time.Second))
			_, err := e.p.SignLive(ctx, c.IssuerID, ocspcodec.SHA256, c.Serial)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, ocspcache.ErrUnknown) {
				t.Errorf("err = %v, want ErrUnknown", err)
			}
		})
	}
}

// TestRebuild: a lost cache is rebuilt from the store with every
// unexpired certificate's responses and the right statuses; the rebuild
// reports progress and marks the cache complete.
func TestRebuild(t *testing.T) {
	e := newEnv(t, envOpts{cfg: presign.Config{Batch: 16}})
	mem := e.mem
	ctx := context.Background()
	n, err := bench.Populate(ctx, e.ca, e.st, populate(300, 0.3, ""))
	if err != nil || n != 300 {
		t.Fatalf("Populate: %d, %v", n, err)
	}
	got, err := e.p.Rebuild(ctx)
	if err != nil || got != 300 {
		t.Fatalf("Rebuild: %d, %v", got, err)
	}
	st, _ := mem.State(ctx)
	if !st.Complete || st.Epoch == "" {
		t.Errorf("State after rebuild %+v", st)
	}
	pr := e.p.Progress()
	if pr.Running || pr.Done != 300 || pr.Responses != 600 || pr.Total != 300 || pr.Err != nil {
		t.Errorf("Progress %+v", pr)
	}
	certs, err := e.st.ListCertificates(ctx, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, c := range certs {
		full, _ := e.st.Certificate(ctx, c.Serial)
		want := ocsp.Good
		if c.Status == status.Revoked {
			want = ocsp.Revoked
			revoked++
		}
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256} {
			e.check(e.cached(c.IssuerID, c.Serial, h), full, h, want)
		}
		// The rebuild leaves the store's refresh points: its State's
		// floor stands for them.
		if full.OCSPRefreshAt.After(e.clock.Now()) {
			t.Fatalf("%s: the rebuild moved the refresh point to %v", c.Serial, full.OCSPRefreshAt)
		}
	}
	if revoked == 0 {
		t.Error("fixture has no revoked certificates")
	}
	floor := time.Unix(st.RefreshFloor, 0)
	if want := e.clock.Now().Add(-time.Hour).Add(36 * time.Hour); !floor.Equal(want) {
		t.Errorf("RefreshFloor %v, want thisUpdate + RefreshAfter of the claim, %v", floor, want)
	}
	if n, _ := e.p.Refresh(ctx); n != 0 {
		t.Errorf("Refresh after a rebuild signed %d", n)
	}
	e.clock.Set(floor.Add(-time.Second))
	if n, _ := e.p.Refresh(ctx); n != 0 {
		t.Errorf("Refresh a second before the floor signed %d", n)
	}
	// At the floor every response the rebuild signed is due, and is
	// refreshed: nothing is left past its refresh point.
	e.clock.Set(floor)
	if n, err := e.p.Refresh(ctx); n != 300 || err != nil {
		t.Errorf("Refresh at the floor signed %d, %v; want 300", n, err)
	}
	if n, _ := e.p.Refresh(ctx); n != 0 {
		t.Errorf("a second Refresh signed %d", n)
	}
}

// TestCatchUp: a revocation that reached the store but not the cache (no
// sink: another instance, or a crash in between) is applied from the
// event log; certificates already cached with their status are skipped.
func TestCatchUp(t *testing.T) {
	e := newEnv(t, envOpts{})
	mem := e.mem
	ctx := context.Background()
	if _, err := e.p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	a := e.issue("a.example.com")
	b := e.issue("b.example.com")
	if n, err := e.p.CatchUp(ctx); err != nil || n != 0 {
		t.Fatalf("CatchUp with everything cached: signed %d, %v", n, err)
	}
	// Revoke b in the store only.
	rb, err := e.st.Revoke(ctx, store.Revocation{Serial: b.Serial, Reason: reason.CessationOfOperation, At: e.clock.Now()},
		store.AuditEntry{At: e.clock.Now(), Kind: "certificate.revoked", Actor: "test", Subject: string(b.Serial)})
	if err != nil {
		t.Fatal(err)
	}
	e.check(e.cached(b.IssuerID, b.Serial, ocspcodec.SHA256), b, ocspcodec.SHA256, ocsp.Good)
	if n, err := e.p.CatchUp(ctx); err != nil || n != 1 {
		t.Fatalf("CatchUp: signed %d, %v; want 1", n, err)
	}
	e.check(e.cached(b.IssuerID, b.Serial, ocspcodec.SHA256), rb, ocspcodec.SHA256, ocsp.Revoked)
	e.check(e.cached(a.IssuerID, a.Serial, ocspcodec.SHA256), a, ocspcodec.SHA256, ocsp.Good)
	last, _ := e.st.LastEventSeq(ctx)
	if st, _ := mem.State(ctx); st.Seq != last {
		t.Errorf("State.Seq %d, want %d", st.Seq, last)
	}
}

// TestRun: the leader loop rebuilds an empty cache, notices its loss and
// rebuilds again, and releases its lease on exit.
func TestRun(t *testing.T) {
	e := newEnv(t, envOpts{cfg: presign.Config{Poll: 20 * time.Millisecond, Lease: 3 * time.Second, Instance: "one"}})
	mem := e.mem
	ctx := context.Background()
	if _, err := bench.Populate(ctx, e.ca, e.st, populate(20, 0, "")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- e.p.Run(rctx) }()
	waitComplete := func(epochNot string) ocspcache.State {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if st, _ := mem.State(ctx); st.Complete && st.Epoch != epochNot {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("cache not rebuilt")
		return ocspcache.State{}
	}
	first := waitComplete("")
	// An unfinished rebuild (another instance's, with no resume point
	// yet): the loop must notice and finish it, from the start.
	st, _ := mem.State(ctx)
	if err := mem.SwapState(ctx, st, ocspcache.State{Epoch: "unfinished", Seq: st.Seq}); err != nil {
		t.Fatal(err)
	}
	second := waitComplete(first.Epoch)
	if pr := e.p.Progress(); second.Epoch != "unfinished" || pr.Epoch != "unfinished" || pr.Resumed != "" || pr.Done != 20 {
		t.Errorf("after an unfinished rebuild: State %+v, Progress %+v; want it finished from the start", second, pr)
	}
	// A second instance cannot take the lease while the first runs.
	if ok, err := e.st.AcquireLease(ctx, "ocsp-presigner", "two", time.Now(), time.Now().Add(time.Minute)); err != nil || ok {
		t.Errorf("second instance took the lease: %v, %v", ok, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, err := e.st.AcquireLease(ctx, "ocsp-presigner", "two", time.Now(), time.Now().Add(time.Minute)); err != nil || !ok {
		t.Errorf("lease not released on exit: %v, %v", ok, err)
	}
}

// TestIssuerWithoutSigner: certificates of an issuer the pipeline has no
// key for get no responses, and are pushed to the back of the refresh
// queue instead of coming back first every round.
func TestIssuerWithoutSigner(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	if _, err := bench.Populate(ctx, e.ca, e.st, populate(3, 0, "rsa")); err != nil {
		t.Fatal(err)
	}
	var p256 []presign.Issuer
	for _, is := range fromPKI(e.pki) {
		if is.ID == "int-p256" {
			p256 = append(p256, is)
		}
	}
	p, err := presign.New(presign.Config{}, presign.Deps{Store: e.st, Cache: e.cache, Issuers: p256, Log: testfix.QuietLogger(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Refresh(ctx); err != nil || n != 0 {
		t.Fatalf("Refresh: %d, %v; want 0 signed", n, err)
	}
	due, err := e.st.DueForOCSP(ctx, e.clock.Now(), e.clock.Now(), 10)
	if err != nil || len(due) != 0 {
		t.Errorf("%d certificates still due (%v)", len(due), err)
	}
}

// stoppingCache is a cache whose Puts stop the rebuild (cancel) once
// `after` have gone through: a pre-signer killed midway.
type stoppingCache struct {
	*ocspcache.Memory
	mu     sync.Mutex
	puts   int
	after  int
	cancel context.CancelFunc
}

func (c *stoppingCache) Put(ctx context.Context, items []ocspcache.Item) error {
	c.mu.Lock()
	c.puts++
	stop := c.puts > c.after && c.cancel != nil
	c.mu.Unlock()
	if stop {
		c.cancel()
		return ctx.Err()
	}
	return c.Memory.Put(ctx, items)
}

// TestRebuildResumes: a rebuild stopped midway leaves its resume point in
// the cache's State; the next one continues that epoch from there, signs
// only what was not written (responses written before keep their bytes),
// and completes the cache.
func TestRebuildResumes(t *testing.T) {
	presign.SetPaging(t, 50, 2)
	cache := &stoppingCache{after: 30}
	e := newEnv(t, envOpts{cfg: presign.Config{Batch: 10, Workers: 2}, cache: nil})
	cache.Memory = e.mem
	p, err := presign.New(presign.Config{Batch: 10, Workers: 2}, presign.Deps{Store: e.st, Cache: cache, Issuers: fromPKI(e.pki), Log: testfix.QuietLogger(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const total = 1000
	if n, err := bench.Populate(ctx, e.ca, e.st, populate(total, 0.1, "")); err != nil || n != total {
		t.Fatalf("Populate: %d, %v", n, err)
	}
	certs, err := e.st.ListCertificates(ctx, store.Page{Limit: 2 * total})
	if err != nil || len(certs) != total {
		t.Fatalf("ListCertificates: %d, %v", len(certs), err)
	}

	stopCtx, cancel := context.WithCancel(ctx)
	cache.mu.Lock()
	cache.cancel = cancel
	cache.mu.Unlock()
	if _, err := p.Rebuild(stopCtx); err == nil {
		t.Fatal("the stopped rebuild reported success")
	}
	st, _ := e.mem.State(ctx)
	if st.Complete || st.Epoch == "" || st.After == "" {
		t.Fatalf("State after the stopped rebuild: %+v; want an unfinished epoch with a resume point", st)
	}
	// Every certificate up to the resume point is cached; remember the bytes.
	before := map[serial.Serial][]byte{}
	missing := 0
	for _, c := range certs {
		if string(c.Serial) > st.After {
			if en := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA1); !en.Found() {
				missing++
			}
			continue
		}
		en := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA1)
		if !en.Found() {
			t.Fatalf("%s is at or before the resume point %s but not cached", c.Serial, st.After)
		}
		before[c.Serial] = en.DER
	}
	if len(before) == 0 || missing == 0 {
		t.Fatalf("%d of %d certificates before the resume point; the test wants a rebuild stopped midway", len(before), total)
	}

	e.clock.Advance(time.Minute) // a re-signed response would carry a later producedAt
	cache.mu.Lock()
	cache.cancel = nil
	cache.mu.Unlock()
	n, err := p.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pr := p.Progress()
	if pr.Epoch != st.Epoch || pr.Resumed != serial.Serial(st.After) {
		t.Errorf("second rebuild: epoch %s resumed after %q; want %s after %q", pr.Epoch, pr.Resumed, st.Epoch, st.After)
	}
	if want := int64(total - len(before)); n != want || pr.Done != want {
		t.Errorf("second rebuild signed %d (done %d), want %d: only what the first left", n, pr.Done, want)
	}
	final, _ := e.mem.State(ctx)
	if !final.Complete || final.Epoch != st.Epoch || final.After != "" || final.Seq != st.Seq {
		t.Errorf("State after the resumed rebuild %+v; want %s complete, Seq %d", final, st.Epoch, st.Seq)
	}
	for _, c := range certs {
		full, _ := e.st.Certificate(ctx, c.Serial)
		want := ocsp.Good
		if c.Status == status.Revoked {
			want = ocsp.Revoked
		}
		en := e.cached(c.IssuerID, c.Serial, ocspcodec.SHA1)
		e.check(en, full, ocspcodec.SHA1, want)
		if der, ok := before[c.Serial]; ok && !bytes.Equal(der, en.DER) {
			t.Fatalf("%s was re-signed by the resumed rebuild", c.Serial)
		}
	}
}
