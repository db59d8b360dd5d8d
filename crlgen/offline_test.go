package crlgen

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
)

// A root kept offline: the plant's generators publish the intermediates'
// shards and leave the root's CRL alone; a generator of the root alone
// signs it in a ceremony, valid up to a year, whenever it is asked.
func TestOfflineRootCeremony(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2)
	root, ints := fromPKI(e.pki)
	offline := root
	offline.Signer = nil
	plant, err := New(e.cfg, Deps{Store: e.st, Root: offline, Intermediates: ints, Linter: testLinter(t),
		Publishers: []crlpub.Publisher{e.rec}, Log: testfix.Logger(t), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cycle(t, plant)
	for _, c := range e.rec.take() {
		if c.Issuer == root.ID {
			t.Errorf("the plant's generator published the offline root's CRL %d", c.Number)
		}
	}
	if _, err := e.st.CRL(ctx, root.ID, shard.Full); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("root CRL in the store before any ceremony: %v", err)
	}
	if err := plant.PublishNow(ctx, root.ID); err == nil || !strings.Contains(err.Error(), "does not sign") {
		t.Errorf("PublishNow(root) on the plant's generator = %v", err)
	}

	year := 365 * 24 * time.Hour
	ccfg := e.cfg
	ccfg.FullValidity, ccfg.Holder = year, "ceremony"
	if _, err := New(ccfg, Deps{Store: e.st, Root: root, Linter: testLinter(t), Log: testfix.Logger(t)}); err == nil ||
		!strings.Contains(err.Error(), "CALinter") {
		t.Errorf("a year-long root CRL without a CA linter: New() = %v", err)
	}
	ceremony, err := New(ccfg, Deps{Store: e.st, Root: root, Linter: testLinter(t), CALinter: testLinter(t).ForCACRLs(),
		Publishers: []crlpub.Publisher{e.rec}, Log: testfix.Logger(t), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ceremony.PublishNow(ctx, root.ID); err != nil {
		t.Fatalf("ceremony: %v", err)
	}
	first, err := e.st.CRL(ctx, root.ID, shard.Full)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.NextUpdate.Sub(first.ThisUpdate); got != year {
		t.Errorf("root CRL valid %v, want %v", got, year)
	}
	rl, err := x509.ParseRevocationList(first.DER)
	if err != nil || rl.CheckSignatureFrom(root.Cert) != nil {
		t.Fatalf("root CRL does not verify under the root: %v", err)
	}
	if got := e.rec.take(); len(got) != 1 || got[0].Issuer != root.ID || got[0].Number != first.Number {
		t.Errorf("announced %+v, want the root CRL %d", got, first.Number)
	}
	// Asked again the next day, though nothing is due: a higher number.
	e.clock.Advance(24 * time.Hour)
	if err := ceremony.PublishNow(ctx, root.ID); err != nil {
		t.Fatalf("second ceremony: %v", err)
	}
	second, _ := e.st.CRL(ctx, root.ID, shard.Full)
	if second.Number <= first.Number || !second.ThisUpdate.After(first.ThisUpdate) {
		t.Errorf("second ceremony: number %d thisUpdate %s after %d %s", second.Number, second.ThisUpdate, first.Number, first.ThisUpdate)
	}
	// The ceremony gave its lease back: someone else can take it now.
	now := e.clock.Now()
	if ok, err := e.st.AcquireLease(ctx, leaseName(root.ID), "someone", now, now.Add(time.Minute)); err != nil || !ok {
		t.Errorf("the root's lease after the ceremony: ok=%v err=%v", ok, err)
	}
	// And while someone holds it, the ceremony refuses and publishes nothing.
	if err := ceremony.PublishNow(ctx, root.ID); err == nil || !strings.Contains(err.Error(), "another generator holds") {
		t.Errorf("ceremony under another's lease = %v", err)
	}
	if c, _ := e.st.CRL(ctx, root.ID, shard.Full); c.Number != second.Number {
		t.Errorf("root CRL %d published under another's lease", c.Number)
	}
}

// A running generator looks at the offline root's CRL at start and once a
// day: a CRL that was comfortably valid becomes one that expires soon.
func TestRunWatchesOfflineRootCRL(t *testing.T) {
	p := devPKI(t)
	lt := testLinter(t)
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, filepath.Join(t.TempDir(), "trustline.db"))
		now := bubbleClock()
		root, ints := fromPKI(p)
		ccfg := testConfig(2)
		ccfg.FullValidity, ccfg.Holder = 30*24*time.Hour+12*time.Hour, "ceremony"
		ceremony, err := New(ccfg, Deps{Store: st, Root: root, Linter: lt, CALinter: lt.ForCACRLs(), Log: testfix.Logger(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := ceremony.PublishNow(context.Background(), root.ID); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(2)
		cfg.RevocationDelay, cfg.PollInterval, cfg.LeaseTTL = 10*time.Minute, 5*time.Minute, 20*time.Minute
		logs := &testfix.Buffer{}
		offline := root
		offline.Signer = nil
		g, err := New(cfg, Deps{Store: st, Root: offline, Intermediates: ints, Linter: lt,
			Log: slog.New(slog.NewTextHandler(logs, nil)), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, g)
		synctest.Wait()
		if !strings.Contains(logs.String(), "the root is offline") || strings.Contains(logs.String(), "expires soon") {
			t.Fatalf("at start, with 30.5 days left:\n%s", logs)
		}
		time.Sleep(25 * time.Hour)
		synctest.Wait()
		if !strings.Contains(logs.String(), "expires soon") {
			t.Errorf("a day later, with 29.5 days left, no warning:\n%s", logs)
		}
		stop()
	})
}
