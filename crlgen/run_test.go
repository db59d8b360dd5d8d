package crlgen

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
)

// Run, on a fake clock: everything at start, a revocation's shard within
// RevocationDelay, everything again each Period, leases released at stop.
func TestRunSchedule(t *testing.T) {
	p := devPKI(t)
	lt := testLinter(t)
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, filepath.Join(t.TempDir(), "trustline.db"))
		now := bubbleClock()
		c := cert(t, "int-p256", 1)
		insert(t, st, c)

		cfg := DevConfig(testBase, 2, 30*time.Second, "run-test")
		rec := &capture{}
		root, ints := fromPKI(p)
		g, err := New(cfg, Deps{Store: st, Root: root, Intermediates: ints, Linter: lt,
			Publishers: []crlpub.Publisher{rec}, Log: testfix.Logger(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, g)

		synctest.Wait()
		if got := rec.take(); len(got) != 5 {
			t.Fatalf("at start: published %v, want 5 CRLs", summarize(got))
		}

		time.Sleep(10 * time.Second)
		revokedAt := now()
		revoke(t, st, c.Serial, reason.KeyCompromise, revokedAt)
		time.Sleep(cfg.RevocationDelay)
		synctest.Wait()
		got := rec.take()
		if d := cmp.Diff([]string{"int-p256/1"}, summarize(got)); d != "" {
			t.Fatalf("within RevocationDelay of a revocation (-want +got):\n%s", d)
		}
		if lag := got[0].ThisUpdate.Sub(revokedAt); lag > cfg.RevocationDelay {
			t.Errorf("published %v after the revocation, more than %v", lag, cfg.RevocationDelay)
		}

		time.Sleep(cfg.Period)
		synctest.Wait()
		if got := rec.take(); len(got) != 5 {
			t.Errorf("a period later: published %v, want all 5", summarize(got))
		}

		stop()
		// Released: another holder takes the lease at once.
		ok, err := st.AcquireLease(context.Background(), leaseName("int-p256"), "other", now(), now().Add(time.Minute))
		if err != nil || !ok {
			t.Errorf("lease not released at stop: %v %v", ok, err)
		}
	})
}

// Replay announces the stored CRLs, marked Replayed.
func TestReplay(t *testing.T) {
	e := newEnv(t, 2)
	g := e.generator(t, e.cfg)
	cycle(t, g)
	want := e.rec.take()
	g2 := e.generator(t, e.cfg)
	if err := g2.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := e.rec.take()
	if len(got) != len(want) {
		t.Fatalf("replayed %d CRLs, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Replayed || got[i].Number != want[i].Number || got[i].SHA256 != want[i].SHA256 ||
			got[i].URL != want[i].URL || len(got[i].ShardURLs) != len(want[i].ShardURLs) {
			t.Errorf("replayed %+v, published %+v", got[i].Number, want[i].Number)
		}
	}
}

// conflictingStore lets another generator publish just before the wrapped
// generator's first swap of an int-p256 CRL.
type conflictingStore struct {
	Store
	other func()
	fired bool
}

func (s *conflictingStore) PublishCRL(ctx context.Context, c store.CRL, prev int64, audit store.AuditEntry) error {
	if !s.fired && c.IssuerID == "int-p256" {
		s.fired = true
		s.other()
	}
	return s.Store.PublishCRL(ctx, c, prev, audit)
}

// The loser of a swap re-reads: a CRL that was only due is left to the
// winner; a dirty one is rebuilt on top of the winner's.
func TestLoserRereadsAndMovesOn(t *testing.T) {
	for _, dirty := range []bool{false, true} {
		t.Run(map[bool]string{false: "due", true: "dirty"}[dirty], func(t *testing.T) {
			e := newEnv(t, 1)
			c := cert(t, "int-p256", 0)
			insert(t, e.st, c)
			winner := e.generator(t, e.cfg)
			cycle(t, winner)
			e.clock.Advance(2 * time.Hour) // all due
			if dirty {
				revoke(t, e.st, c.Serial, reason.KeyCompromise, e.clock.Now())
			}
			e.rec.take()

			loserRec := &capture{}
			cs := &conflictingStore{Store: e.st, other: func() { cycle(t, winner) }}
			root, ints := fromPKI(e.pki)
			// Same holder: both hold the leases, as after a lapse.
			loser, err := New(e.cfg, Deps{Store: cs, Root: root, Intermediates: ints, Linter: testLinter(t),
				Publishers: []crlpub.Publisher{loserRec}, Log: testfix.Logger(t), Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			cycle(t, loser)
			if n := value(t, loser.m.conflicts.WithLabelValues("int-p256")); n != 1 {
				t.Errorf("conflicts = %v, want 1", n)
			}
			var won []crlpub.CRL
			for _, c := range e.rec.take() {
				if c.Issuer == "int-p256" {
					won = append(won, c)
				}
			}
			var lost []crlpub.CRL
			for _, c := range loserRec.take() {
				if c.Issuer == "int-p256" || c.Issuer == "int-rsa2048" {
					lost = append(lost, c)
				}
			}
			if len(won) != 1 {
				t.Fatalf("winner published int-p256 %d times, want 1", len(won))
			}
			switch {
			case !dirty && len(lost) != 0:
				t.Errorf("loser published %v although the winner's CRLs were fresh", summarize(lost))
			case dirty && (len(lost) != 1 || lost[0].Issuer != "int-p256" || lost[0].Number <= won[0].Number):
				t.Errorf("loser published %v, want int-p256/0 once above the winner's %d", summarize(lost), won[0].Number)
			}
			_, rl := storedCRLOf(t, e.st, "int-p256", 0)
			if dirty && len(rl.RevokedCertificateEntries) != 1 {
				t.Errorf("stored CRL has %d entries, want the revocation", len(rl.RevokedCertificateEntries))
			}
		})
	}
}
