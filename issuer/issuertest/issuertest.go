// Package issuertest is a test fixture only: the issuance wiring that the
// tests of issuer/review, issuer/api, issuer/portal and bench share — a
// fresh SQLite store, and a CA over a store that signs with the dev
// hierarchy (pki.DefaultDev, keys in files) after the linter.
//
// Who may import it: tests only, and not the base package issuer's own
// (in-package) tests, since it imports issuer.
package issuertest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/pki"
)

// URLs the CA writes into certificates: AIA OCSP, and the base of CRL
// distribution points and caIssuers.
const (
	OCSPURL = "http://ocsp.test/"
	CRLBase = "http://crl.test"
)

// Shards is the number of CRL shards per intermediate.
const Shards = 4

// SQLite opens a fresh SQLite store in a temporary directory; it is
// closed when the test ends.
func SQLite(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "t.db")}, testfix.QuietLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// Issuance is a CA and what it signs with.
type Issuance struct {
	CA     *issuer.CA
	PKI    *pki.PKI
	Linter *linter.Linter
}

// New creates the dev hierarchy in a temporary directory and a CA over st
// that signs with it: serials start with serialPrefix (tests of different
// packages use different ones), OCSPURL and CRLBase go into certificates,
// Shards CRL shards, no status sink, logs discarded.
func New(tb testing.TB, st issuer.CertStore, serialPrefix byte) Issuance {
	tb.Helper()
	dir := tb.TempDir()
	p, err := pki.Create(context.Background(), pki.DefaultDev(filepath.Join(dir, "ca"), CRLBase, "file"),
		pki.FileKeys{Dir: filepath.Join(dir, "keys")}, time.Now(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	lt, err := linter.New(linter.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := issuer.New(issuer.Config{OCSPURL: OCSPURL, BaseURL: CRLBase, Shards: Shards, SerialPrefix: serialPrefix},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Log: testfix.QuietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	return Issuance{CA: ca, PKI: p, Linter: lt}
}
