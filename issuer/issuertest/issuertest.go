// Package issuertest is a test fixture only: the issuance wiring that the
// tests of issuer/review, issuer/api, issuer/portal and bench share — a
// fresh SQLite store, a CA over a store that signs with the dev hierarchy
// (pki.DefaultDev, keys in files) after the linter, and the order service
// and review queue over such a CA.
//
// Who may import it: tests only, and not the base package issuer's own
// (in-package) tests, since it imports issuer.
package issuertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/review"
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

// APIURL is where the order service tells subscribers to retrieve
// certificates.
const APIURL = "http://api.test"

// Workflow is what the API and the portal serve over a CA: the order
// service and the review queue.
type Workflow struct {
	Orders  *issuer.Orders
	Reviews *review.Service
}

// NewWorkflow builds the order service over st, ca and vals (no CSR
// policy, certificates retrieved from APIURL), and the review queue over
// it.
func NewWorkflow(tb testing.TB, st store.Store, ca *issuer.CA, vals review.Coverage, m mail.Sender, log *slog.Logger) Workflow {
	tb.Helper()
	return NewWorkflowCAA(tb, st, ca, vals, m, log, nil)
}

// NewWorkflowCAA is NewWorkflow with orders checked against CAA records
// by c (nil: not checked).
func NewWorkflowCAA(tb testing.TB, st store.Store, ca *issuer.CA, vals review.Coverage, m mail.Sender, log *slog.Logger, c issuer.CAAChecker) Workflow {
	tb.Helper()
	orders, err := issuer.NewOrders(APIURL, csrcheck.Policy{}, issuer.OrdersDeps{Store: st, CA: ca, Validations: vals, Mail: m, Log: log, CAA: c})
	if err != nil {
		tb.Fatal(err)
	}
	reviews, err := review.New(review.Deps{Store: st, Orders: orders, Validations: vals, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	return Workflow{Orders: orders, Reviews: reviews}
}

// Mails returns the messages a mail.Dir at dir holds for addr, oldest
// first.
func Mails(tb testing.TB, dir, addr string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if bytes.Contains(b, []byte("To: "+addr+"\r\n")) {
			out = append(out, string(b))
		}
	}
	return out
}
