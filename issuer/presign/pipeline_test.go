package presign_test

import (
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
	"github.com/trustline/trustline/internal/store/sqlite"
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
	*sqlite.Store
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
		if !full.OCSPRefreshAt.After(e.clock.Now()) {
			t.Fatalf("%s: refresh point %v not rescheduled", c.Serial, full.OCSPRefreshAt)
		}
	}
	if revoked == 0 {
		t.Error("fixture has no revoked certificates")
	}
	if n, _ := e.p.Refresh(ctx); n != 0 {
		t.Errorf("Refresh after a rebuild signed %d", n)
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
	// Lose the cache: the loop must notice and rebuild under a new epoch.
	st, _ := mem.State(ctx)
	if err := mem.SwapState(ctx, st, ocspcache.State{Epoch: "lost-marker"}); err != nil {
		t.Fatal(err)
	}
	second := waitComplete(first.Epoch)
	if second.Epoch == "lost-marker" {
		t.Error("incomplete state accepted as complete")
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
