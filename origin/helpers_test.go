package origin

// Fixtures made at test time: a small CA (ECDSA P-256, cRLSign) and CRLs
// signed by it with x509.CreateRevocationList. origin's tests may not use
// issuer/pki or crlgen (internal/deptest checks test imports too).

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/testfix"
)

const testBase = "http://crl.example"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	id   issuerid.ID
	cert *x509.Certificate
	key  crypto.Signer
}

func newCA(t testing.TB, id issuerid.ID) testCA {
	t.Helper()
	ca := testfix.NewCA(t, "Origin Test "+string(id), t0.Add(-24*time.Hour), t0.AddDate(5, 0, 0))
	return testCA{id, ca.Cert, ca.Key}
}

// crl signs a CRL for shard s with number n, thisUpdate at, and entries
// revoked serials.
func (ca testCA) crl(t testing.TB, s int, n int64, at time.Time, entries int) crlpub.CRL {
	t.Helper()
	var revoked []x509.RevocationListEntry
	for i := range entries {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: big.NewInt(int64(1000 + i)), RevocationTime: at.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(n), ThisUpdate: at, NextUpdate: at.Add(7 * 24 * time.Hour), RevokedCertificateEntries: revoked,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return crlpub.CRL{
		Issuer: ca.id, Shard: s, URL: testBase + crlpub.Path(ca.id, s), Number: n,
		ThisUpdate: at, NextUpdate: at.Add(7 * 24 * time.Hour), NextPublication: at.Add(time.Hour),
		DER: der, SHA256: sha256.Sum256(der), Entries: entries,
		ShardURLs: []string{testBase + crlpub.Path(ca.id, 0), testBase + crlpub.Path(ca.id, 1)},
	}
}

func newServer(t testing.TB, cfg Config, now func() time.Time) *Server {
	t.Helper()
	s, err := New(cfg, testfix.Logger(t), now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
