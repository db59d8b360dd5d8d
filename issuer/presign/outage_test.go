package presign_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/presign"
)

// TestRunAcrossDatabaseOutage: the leader loop on PostgreSQL (a private
// server) keeps running while the database is shut down for two seconds,
// and afterwards applies a revocation made in the store (the catch-up
// follows the event log), keeps its lease against a second instance, and
// releases it on exit.
func TestRunAcrossDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{URL: pg.URL(), OpTimeout: time.Second}, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{store: st, realTime: true, cfg: presign.Config{Poll: 50 * time.Millisecond, Lease: 3 * time.Second, Instance: "one"}})
	if _, err := bench.Populate(ctx, e.ca, e.st, populate(20, 0, "")); err != nil {
		t.Fatal(err)
	}
	certs, err := e.st.ListCertificates(ctx, store.Page{Limit: 100})
	if err != nil || len(certs) != 20 {
		t.Fatalf("listing: %d, %v", len(certs), err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.p.Run(rctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("Run returned %v while waiting for %s", err, what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s", what)
			}
		}
	}
	waitFor("complete cache", func() bool { s, _ := e.mem.State(ctx); return s.Complete })

	pg.Stop()
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("Run returned during the outage: %v", err)
	default:
	}
	pg.Start()

	victim := certs[7]
	waitFor("revocation in the store", func() bool {
		_, err := e.st.Revoke(ctx, store.Revocation{Serial: victim.Serial, Reason: reason.KeyCompromise, At: time.Now()},
			store.AuditEntry{At: time.Now(), Kind: "certificate.revoked", Actor: "test", Subject: string(victim.Serial)})
		return err == nil
	})
	waitFor("revoked response", func() bool {
		en := e.cached(victim.IssuerID, victim.Serial, ocspcodec.SHA256)
		r, err := ocsp.ParseResponse(en.DER, e.issuerCert(victim.IssuerID))
		return err == nil && r.Status == ocsp.Revoked
	})
	if ok, err := e.st.AcquireLease(ctx, "ocsp-presigner", "two", time.Now(), time.Now().Add(time.Minute)); err != nil || ok {
		t.Errorf("a second instance took the lease after the outage: %v, %v", ok, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, err := e.st.AcquireLease(ctx, "ocsp-presigner", "two", time.Now(), time.Now().Add(time.Minute)); err != nil || !ok {
		t.Errorf("lease not released on exit: %v, %v", ok, err)
	}
}
