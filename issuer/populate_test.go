package issuer_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/pki"
)

func populateCA(tb testing.TB) (*issuer.CA, *sqlite.Store, *pki.PKI) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	log := testfix.QuietLogger()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "t.db")}, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	p, err := pki.Create(ctx, pki.DefaultDev(filepath.Join(dir, "ca"), "http://crl.test", "file"), pki.FileKeys{Dir: filepath.Join(dir, "keys")}, time.Now(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	lt, _ := linter.New(linter.Config{})
	ca, err := issuer.New(issuer.Config{OCSPURL: "http://ocsp.test/", BaseURL: "http://crl.test", Shards: 4, SerialPrefix: 0x44},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	return ca, st, p
}

func TestPopulateStoresRealCertificates(t *testing.T) {
	ca, st, p := populateCA(t)
	ctx := context.Background()
	n, err := ca.Populate(ctx, st, issuer.PopulateRequest{N: 500, RevokedFraction: 0.2, Batch: 128})
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
		if _, err := ca.Populate(context.Background(), st, issuer.PopulateRequest{N: perOp, RevokedFraction: 0.01}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "certs/s")
}
