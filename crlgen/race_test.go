package crlgen

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/pki"
)

// Two generators on one store (two connections to one database, as two
// processes would have) both believe they hold every lease: the worst case,
// a paused generator whose lease lapsed. One clock is three seconds behind
// the other. Every CRL is due on every round, and revocations land
// meanwhile. The compare-and-swap must keep every shard's numbers strictly
// increasing, no number published twice, every publication in the store's
// history (the audit log), and every revocation on the final CRLs. Run on
// SQLite and on PostgreSQL.
func TestTwoGeneratorsRacing(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "trustline.db")
		testRacing(t, openStore(t, db), openStore(t, db), nil)
	})
	t.Run("postgres", func(t *testing.T) {
		url := freshPostgres(t)
		testRacing(t, openPostgres(t, url), openPostgres(t, url), nil)
	})
	// The same race with the database shut down (immediate shutdown:
	// transactions in flight cut off, some commits unknown to their
	// client) for a second in the middle, on a private server. Rounds
	// meanwhile fail with ErrUnavailable; afterwards the same guarantees
	// hold.
	t.Run("postgres restarted", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a private PostgreSQL server")
		}
		pg := testenv.StartPostgres(t)
		outage := func() {
			time.Sleep(300 * time.Millisecond)
			pg.Stop()
			time.Sleep(time.Second)
			pg.Start()
		}
		testRacing(t, openPostgres(t, pg.URL()), openPostgres(t, pg.URL()), outage)
	})
}

func testRacing(t *testing.T, stA, stB Store, outage func()) {
	p := devPKI(t)
	const shards = 3
	var certs []store.Certificate
	for i := range 30 {
		certs = append(certs, certNow(t, "int-p256", i%shards))
	}
	insert(t, stA, certs...)

	cfg := testConfig(shards)
	cfg.Period = time.Nanosecond // everything is due every round
	cfg.Validity = time.Hour
	cfg.Holder = "same-holder"
	root, ints := fromPKI(p)
	type gen struct {
		g   *Generator
		rec *capture
	}
	newGen := func(st Store, now func() time.Time) gen {
		rec := &capture{}
		g, err := New(cfg, Deps{Store: st, Root: root, Intermediates: ints, Linter: testLinter(t),
			Publishers: []crlpub.Publisher{rec}, Log: testfix.Logger(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return gen{g, rec}
	}
	// Each shard's thisUpdate moves at least a second per publication, and
	// a CRL is not due while the clock is before it: clocks running 1000
	// times fast keep everything due.
	fast := fastClock(time.Now(), 1000)
	a := newGen(stA, fast)
	b := newGen(stB, func() time.Time { return fast().Add(-3 * time.Second) })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var unavailable atomic.Int64
	for _, x := range []gen{a, b} {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := x.g.Cycle(ctx)
				switch {
				case err == nil, ctx.Err() != nil, errors.Is(err, store.ErrConflict):
				case outage != nil && errors.Is(err, store.ErrUnavailable):
					unavailable.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					t.Errorf("Cycle: %v", err)
					return
				}
			}
		})
	}

	revoked := map[serial.Serial]bool{}
	for i, c := range certs {
		if i%3 != 0 {
			continue
		}
		time.Sleep(100 * time.Millisecond)
		revoke(t, stA, c.Serial, reason.KeyCompromise, time.Now().Add(-2*time.Hour))
		revoked[c.Serial] = true
	}
	// After the revocations the race runs 2 s more, or with an outage
	// until a second after the database is back, however long its
	// restart took.
	outageDone := make(chan struct{})
	go func() {
		end := time.After(2 * time.Second)
		if outage != nil {
			outage()
			end = time.After(time.Second)
		}
		close(outageDone)
		<-end
		cancel()
	}()
	wg.Wait()
	<-outageDone
	// Quiet rounds publish what the last race round may have left dirty,
	// and announce swaps that reported failure when the race's deadline
	// cut them off but that the server committed after all. Such a
	// commit can land a moment after its connection was dropped, hence
	// the second round after a pause.
	cfg.Period = time.Hour
	for round := range 2 {
		if round > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		for _, x := range []gen{a, b} {
			x.g.cfg.Period = time.Hour
			err := x.g.Cycle(context.Background())
			// After an outage the pool may hand out a connection that
			// died with the server once more.
			for try := 0; err != nil && outage != nil && errors.Is(err, store.ErrUnavailable) && try < 20; try++ {
				time.Sleep(250 * time.Millisecond)
				err = x.g.Cycle(context.Background())
			}
			if err != nil {
				t.Fatalf("final Cycle: %v", err)
			}
		}
	}
	if outage != nil && unavailable.Load() == 0 {
		t.Error("no round failed with ErrUnavailable: the outage did not happen during the race")
	}

	// Per CRL, the numbers each generator was told about, in order.
	type key struct {
		issuer issuerid.ID
		shard  int
	}
	all := map[key][]int64{}
	for name, x := range map[string]gen{"a": a, "b": b} {
		seen := map[key][]int64{}
		for _, c := range x.rec.take() {
			k := key{c.Issuer, c.Shard}
			seen[k] = append(seen[k], c.Number)
			all[k] = append(all[k], c.Number)
		}
		for k, ns := range seen {
			if !slices.IsSorted(ns) || len(slices.Compact(slices.Clone(ns))) != len(ns) {
				t.Errorf("generator %s published %s/%d numbers out of order: %v", name, k.issuer, k.shard, ns)
			}
		}
	}
	var conflicts float64
	told := 0
	for _, ns := range all {
		told += len(ns)
	}
	for _, id := range []issuerid.ID{"root", "int-p256", "int-rsa2048"} {
		conflicts += value(t, a.g.m.conflicts.WithLabelValues(string(id))) + value(t, b.g.m.conflicts.WithLabelValues(string(id)))
	}
	t.Logf("%d publications of %d CRLs; compare-and-swaps lost: %v", told, len(all), conflicts)
	if conflicts == 0 {
		t.Error("no compare-and-swap was lost: the generators did not race")
	}

	// The audit log is the store's history of swaps.
	audited := map[key][]int64{}
	if err := stA.(interface {
		ScanAudit(context.Context, int64, func(store.AuditEntry) error) error
	}).ScanAudit(context.Background(), 0, func(e store.AuditEntry) error {
		if e.Kind != "crl.published" {
			return nil
		}
		var pl struct {
			Issuer issuerid.ID `json:"issuer"`
			Shard  string      `json:"shard"`
			Number int64       `json:"number"`
		}
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			return err
		}
		s := shard.Full
		if pl.Shard != "full" {
			s, _ = strconv.Atoi(pl.Shard)
		}
		audited[key{pl.Issuer, s}] = append(audited[key{pl.Issuer, s}], pl.Number)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k, ns := range all {
		slices.Sort(ns)
		if d := len(ns) - len(slices.Compact(slices.Clone(ns))); d != 0 {
			t.Errorf("%s/%d: %d numbers published twice", k.issuer, k.shard, d)
		}
		au := slices.Sorted(slices.Values(audited[k]))
		if !slices.Equal(ns, au) {
			t.Errorf("%s/%d: publications told %d, audited %d", k.issuer, k.shard, len(ns), len(au))
		}
		stored, rl := storedCRLOf(t, stA, k.issuer, k.shard)
		if stored.Number != ns[len(ns)-1] {
			t.Errorf("%s/%d: stored number %d, highest published %d", k.issuer, k.shard, stored.Number, ns[len(ns)-1])
		}
		if k.issuer == "int-p256" {
			for _, e := range rl.RevokedCertificateEntries {
				s, _ := serial.FromBigInt(e.SerialNumber)
				delete(revoked, s)
			}
		}
		if len(ns) < 2 {
			t.Errorf("%s/%d published only %d times: no race happened", k.issuer, k.shard, len(ns))
		}
	}
	if len(revoked) != 0 {
		t.Errorf("%d revocations missing from the final CRLs", len(revoked))
	}
}

// A shard of 100,000 revoked certificates: built, checked (zlint included)
// and published; openssl verifies it.
func TestShardWith100kEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-entry CRL: skipped in -short")
	}
	e := newEnv(t, 1)
	const n = 100_000
	batch := make([]store.Certificate, 0, 10_000)
	for i := range n {
		c := cert(t, "int-p256", 0)
		c.Status, c.RevokedAt = status.Revoked, t0.Add(-time.Duration(i)*time.Second)
		c.Reason = []reason.Reason{reason.Unspecified, reason.KeyCompromise, reason.Superseded,
			reason.CessationOfOperation, reason.AffiliationChanged}[i%5]
		batch = append(batch, c)
		if len(batch) == cap(batch) {
			insert(t, e.st, batch...)
			batch = batch[:0]
		}
	}
	g := e.generator(t, e.cfg)
	start := time.Now()
	cycle(t, g)
	t.Logf("round with a 100k-entry shard: %v", time.Since(start))
	c, rl := storedCRLOf(t, e.st, "int-p256", 0)
	if len(rl.RevokedCertificateEntries) != n {
		t.Fatalf("%d entries, want %d", len(rl.RevokedCertificateEntries), n)
	}
	t.Logf("CRL size: %d bytes", len(c.DER))
	opensslVerify(t, c.DER, e.pki.Intermediates[0].Cert)
}

// The kill -9 test: a helper process (this test binary, re-executed)
// publishes in a loop onto an SQLite file and a directory, and is killed
// with SIGKILL at random points. After each kill every stored CRL and every
// file parses and verifies, no number went back, and the helper made
// progress.
func TestKill9MidPublication(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test: skipped in -short")
	}
	dir := t.TempDir()
	db, out := filepath.Join(dir, "trustline.db"), filepath.Join(dir, "crls")
	devPKI(t)
	st := openStore(t, db)
	var certs []store.Certificate
	for i := range 40 {
		certs = append(certs, certNow(t, "int-rsa2048", i%4))
	}
	insert(t, st, certs...)

	issuers := map[issuerid.ID]*x509.Certificate{}
	p := devPKI(t)
	issuers["root"] = p.Root.Cert
	for _, is := range p.Intermediates {
		issuers[is.ID] = is.Cert
	}
	last := map[string]int64{}
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "CRLGEN_HELPER_DB="+db, "CRLGEN_HELPER_PKI="+hierDir,
			"CRLGEN_HELPER_OUT="+out)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it publish for a while, revoke something under it, kill it at
		// a random moment.
		time.Sleep(time.Duration(400+randN(600)) * time.Millisecond)
		revoke(t, st, certs[round].Serial, reason.KeyCompromise, time.Now().Add(-time.Hour))
		time.Sleep(time.Duration(randN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: helper ended by %v, not by SIGKILL (did it fail?)", round, err)
		}

		published, moved := 0, 0
		for id, cert := range issuers {
			crls, err := st.ListCRLs(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range crls {
				published++
				k := label(id, c.Shard)
				rl, err := x509.ParseRevocationList(c.DER)
				if err != nil {
					t.Fatalf("round %d: stored %s does not parse: %v", round, k, err)
				}
				if err := rl.CheckSignatureFrom(cert); err != nil {
					t.Errorf("round %d: stored %s does not verify: %v", round, k, err)
				}
				if rl.Number.Int64() != c.Number {
					t.Errorf("round %d: stored %s number %d, DER says %v", round, k, c.Number, rl.Number)
				}
				if c.Number < last[k] {
					t.Errorf("round %d: %s number went back from %d to %d", round, k, last[k], c.Number)
				}
				if c.Number > last[k] {
					moved++
				}
				last[k] = c.Number
				// The directory copy: whole, verifiable, never ahead of the store.
				b, err := os.ReadFile(filepath.Join(out, string(id), crlpub.FileName(c.Shard)))
				if errors.Is(err, os.ErrNotExist) {
					continue // killed between the swap and the hook
				}
				if err != nil {
					t.Fatal(err)
				}
				frl, err := x509.ParseRevocationList(b)
				if err != nil {
					t.Fatalf("round %d: file %s does not parse: %v", round, k, err)
				}
				if err := frl.CheckSignatureFrom(cert); err != nil {
					t.Errorf("round %d: file %s does not verify: %v", round, k, err)
				}
				if frl.Number.Int64() > c.Number {
					t.Errorf("round %d: file %s number %v is ahead of the store's %d", round, k, frl.Number, c.Number)
				}
			}
		}
		if moved == 0 {
			t.Errorf("round %d: the helper published nothing before it was killed", round)
		}
		if published != 1+2*4 {
			t.Errorf("round %d: %d CRLs stored, want 9", round, published)
		}
		if tmp, _ := filepath.Glob(filepath.Join(out, "*", ".tmp-*")); len(tmp) > 0 {
			t.Logf("round %d: %d temporary files left by the kill (ignored by readers)", round, len(tmp))
		}
	}
}

// certNow is cert for the tests that run on the real clock.
func certNow(t testing.TB, issuer issuerid.ID, sh int) store.Certificate {
	c := cert(t, issuer, sh)
	c.NotBefore, c.NotAfter = time.Now().Add(-24*time.Hour), time.Now().Add(90*24*time.Hour)
	return c
}

// fastClock runs speed times faster than the real one from start.
func fastClock(start time.Time, speed time.Duration) func() time.Time {
	real := time.Now()
	return func() time.Time { return start.Add(time.Since(real) * speed) }
}

func randN(n int) int { return mrand.IntN(n) }

const helperEnv = "TRUSTLINE_CRLGEN_KILL_HELPER"

// helperMain is the process TestKill9MidPublication kills: it publishes
// every CRL on every round, as fast as it can, until killed.
func helperMain() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "crlgen helper:", err); return 2 }
	ctx := context.Background()
	log := testfix.QuietLogger()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: os.Getenv("CRLGEN_HELPER_DB")}, log)
	if err != nil {
		return fail(err)
	}
	hier := os.Getenv("CRLGEN_HELPER_PKI")
	p, err := pki.Load(ctx, filepath.Join(hier, "ca"), pki.FileKeys{Dir: filepath.Join(hier, "keys")}, "file")
	if err != nil {
		return fail(err)
	}
	lt, err := linter.New(linter.Config{})
	if err != nil {
		return fail(err)
	}
	dw, err := crlpub.NewDirWriter(os.Getenv("CRLGEN_HELPER_OUT"))
	if err != nil {
		return fail(err)
	}
	cfg := testConfig(4)
	cfg.Period, cfg.Validity, cfg.Holder = time.Nanosecond, time.Hour, "kill-helper"
	root, ints := fromPKI(p)
	// A clock running 1000 times fast from the latest stored thisUpdate
	// keeps every CRL due on every round (see TestTwoGeneratorsRacing).
	start := time.Now()
	for _, id := range []issuerid.ID{root.ID, ints[0].ID, ints[1].ID} {
		crls, err := st.ListCRLs(ctx, id)
		if err != nil {
			return fail(err)
		}
		for _, c := range crls {
			start = later(start, c.ThisUpdate)
		}
	}
	g, err := New(cfg, Deps{Store: st, Root: root, Intermediates: ints, Linter: lt,
		Publishers: []crlpub.Publisher{dw}, Log: log, Now: fastClock(start, 1000)})
	if err != nil {
		return fail(err)
	}
	for {
		t := time.Now()
		if err := g.Cycle(ctx); err != nil {
			return fail(err)
		}
		if os.Getenv("CRLGEN_HELPER_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "cycle", time.Since(t))
		}
	}
}
