package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/validation"
)

const crashEnv = "TRUSTLINE_CRASH_CHILD_DIR"

// wire builds the issuance core over the SQLite store in dir, creating the
// PKI on first use; opts adjust the order service's dependencies.
func wire(t testing.TB, dir string, opts ...func(*issuer.OrdersDeps)) (*sqlite.Store, *issuer.Orders, store.Account) {
	ctx := context.Background()
	log := testfix.QuietLogger()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "t.db")}, log)
	if err != nil {
		t.Fatal(err)
	}
	keys := pki.FileKeys{Dir: filepath.Join(dir, "keys")}
	var p *pki.PKI
	if pki.Exists(filepath.Join(dir, "ca")) {
		p, err = pki.Load(ctx, filepath.Join(dir, "ca"), keys, "file")
	} else {
		p, err = pki.Create(ctx, pki.DefaultDev(filepath.Join(dir, "ca"), "http://crl.test", "file"), keys, time.Now(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	lt, _ := linter.New(linter.Config{})
	ca, err := issuer.New(issuer.Config{OCSPURL: "http://ocsp.test/", BaseURL: "http://crl.test", Shards: 4, SerialPrefix: 0x33},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	m := mail.Dir{Path: filepath.Join(dir, "mail")}
	vals := validation.NewEmailOnly(st, m, nil)
	deps := issuer.OrdersDeps{Store: st, CA: ca, Validations: vals, Mail: m, Log: log}
	for _, o := range opts {
		o(&deps)
	}
	orders, err := issuer.NewOrders("http://api.test", csrcheck.Policy{}, deps)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.Account(ctx, "acct_crash")
	if errors.Is(err, store.ErrNotFound) {
		acct = store.Account{ID: "acct_crash", Email: "crash@example.com", Role: store.RoleSubscriber, CreatedAt: time.Now()}
		_, key, _ := issuer.NewAPIKey(acct.ID, acct.CreatedAt)
		if err := st.CreateAccount(ctx, acct, key); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := st.CreateValidation(ctx, store.Validation{ID: "val_crash", AccountID: acct.ID, Domain: "example.com", Method: "email",
			Contact: "admin@example.com", Status: store.ValidationValid, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			ValidatedAt: now, ValidUntil: now.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return st, orders, acct
}

// TestCrashChild is the process the crash test kills: it orders
// certificates in a loop until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9DuringIssuance")
	}
	_, orders, acct := wire(t, dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "example.com"}, DNSNames: []string{"example.com"}}, key)
	os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
	for {
		if _, err := orders.Create(context.Background(), acct, issuer.OrderRequest{CSR: csr, Profile: "dv"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKill9DuringIssuance kills an issuing process at random points and
// checks that no serial is reused, every stored certificate has its
// reservation, event and audit entry, every issued order has its
// certificate, and orders left processing complete on resume.
func TestKill9DuringIssuance(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	for round := 0; round < 4; round++ {
		os.Remove(filepath.Join(dir, "ready"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(150+round*170) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}

	st, orders, _ := wire(t, dir)
	defer st.Close()
	ctx := context.Background()
	certs := map[string]bool{}
	for after := ""; ; {
		page, err := st.ListCertificates(ctx, store.Page{AfterSerial: serialOf(after), Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if certs[string(c.Serial)] {
				t.Errorf("serial %s listed twice", c.Serial)
			}
			certs[string(c.Serial)] = true
			if err := st.ReserveSerial(ctx, c.Serial, c.IssuerID, time.Now()); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("certificate %s has no serial reservation (ReserveSerial: %v)", c.Serial, err)
			}
		}
		after = string(page[len(page)-1].Serial)
	}
	if len(certs) == 0 {
		t.Fatal("the child issued nothing before being killed; the test proves nothing")
	}
	issuedEvents := map[string]int{}
	evs, err := st.EventsAfter(ctx, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == store.EventIssued {
			issuedEvents[string(e.Serial)]++
		}
	}
	audited := map[string]int{}
	st.ScanAudit(ctx, 0, func(e store.AuditEntry) error {
		if e.Kind == "certificate.issued" {
			audited[e.Subject]++
		}
		return nil
	})
	for s := range certs {
		if issuedEvents[s] != 1 || audited[s] != 1 {
			t.Errorf("certificate %s: %d issued events, %d audit entries; want 1 and 1", s, issuedEvents[s], audited[s])
		}
	}
	if len(issuedEvents) != len(certs) || len(audited) != len(certs) {
		t.Errorf("%d certificates, %d with events, %d audited", len(certs), len(issuedEvents), len(audited))
	}
	if _, _, err := store.VerifyAudit(ctx, st); err != nil {
		t.Errorf("audit chain after kills: %v", err)
	}
	if _, err := orders.ResumeProcessing(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := st.ListOrders(ctx, store.OrderFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		switch o.Status {
		case store.OrderIssued:
			if _, err := st.Certificate(ctx, o.Serial); err != nil {
				t.Errorf("issued order %s: certificate %s: %v", o.ID, o.Serial, err)
			}
		case store.OrderProcessing:
			t.Errorf("order %s still processing after resume", o.ID)
		}
	}
	t.Logf("%d certificates, %d orders survived 4 kills", len(certs), len(all))
}

func serialOf(s string) serial.Serial { return serial.Serial(s) }
