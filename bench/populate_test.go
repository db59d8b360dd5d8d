package bench_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/pki"
)

// populateCA is a CA over a fresh SQLite store: the test signs for real,
// as `trustline bench populate` does.
func populateCA(tb testing.TB) (*issuer.CA, *sqlite.Store, *pki.PKI) {
	tb.Helper()
	st := issuertest.SQLite(tb)
	iss := issuertest.New(tb, st, 0x44)
	return iss.CA, st, iss.PKI
}

func TestPopulateStoresRealCertificates(t *testing.T) {
	ca, st, p := populateCA(t)
	ctx := context.Background()
	n, err := bench.Populate(ctx, ca, st, bench.PopulateRequest{N: 500, RevokedFraction: 0.2, Batch: 128})
	if err != nil || n != 500 {
		t.Fatalf("Populate = %d, %v", n, err)
	}
	if c, _ := st.CountCertificates(ctx); c != 500 {
		t.Fatalf("%d certificates stored", c)
	}
	is, _ := p.Issuer("int-p256")
	lt, _ := linter.New(linter.Config{})
	revoked := 0
	page, err := st.ListCertificates(ctx, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range page {
		if s.Status == status.Revoked {
			revoked++
		}
		if i%50 != 0 {
			continue
		}
		c, err := st.Certificate(ctx, s.Serial)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(is.Cert); err != nil {
			t.Errorf("%s not signed by %s: %v", s.Serial, is.ID, err)
		}
		if err := lt.Certificate(c.DER); err != nil {
			t.Errorf("%s: %v", s.Serial, err)
		}
	}
	if revoked < 50 || revoked > 150 {
		t.Errorf("%d of 500 revoked, want about 100", revoked)
	}
}

// BenchmarkPopulate is the figure behind `trustline bench populate`
// (target: ≥ 5,000 P-256 certificates/s on 2 cores).
func BenchmarkPopulate(b *testing.B) {
	ca, st, _ := populateCA(b)
	const perOp = 20000
	b.ResetTimer()
	for b.Loop() {
		if _, err := bench.Populate(context.Background(), ca, st, bench.PopulateRequest{N: perOp, RevokedFraction: 0.01}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "certs/s")
}
