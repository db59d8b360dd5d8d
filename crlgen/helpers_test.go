package crlgen

// Test fixtures made at test time: a dev hierarchy (issuer/pki), an SQLite
// store, certificates inserted in bulk or revoked one by one, a clock the
// test moves, and a publisher that records what it is told.

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

const testBase = "http://127.0.0.1:8082"

// t0 is the tests' starting instant: whole seconds, as CRLs keep them.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// bubbleClock is a clock for a synctest bubble: the bubble's time, moved
// to start at t0. The bubble's own clock starts in 2000; CRLs dated from
// t0 are checked by the lints whose effective dates are later.
func bubbleClock() func() time.Time {
	offset := time.Until(t0)
	return func() time.Time { return time.Now().Add(offset) }
}

// capture is a crlpub.Publisher that keeps every CRL it is told about.
type capture struct {
	mu   sync.Mutex
	crls []crlpub.CRL
}

func (r *capture) Published(_ context.Context, c crlpub.CRL) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crls = append(r.crls, c)
	return nil
}

func (r *capture) take() []crlpub.CRL {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.crls
	r.crls = nil
	return out
}

// hierarchy is a dev PKI created once per test binary (key generation,
// RSA-2048 especially, is the slow part) and copied per test.
var (
	hierOnce sync.Once
	hierDir  string
	hierErr  error
)

func devPKI(t testing.TB) *pki.PKI {
	t.Helper()
	hierOnce.Do(func() {
		hierDir, hierErr = os.MkdirTemp("", "crlgen-pki-*")
		if hierErr != nil {
			return
		}
		_, hierErr = pki.Create(context.Background(), pki.DefaultDev(filepath.Join(hierDir, "ca"), testBase, "file"),
			pki.FileKeys{Dir: filepath.Join(hierDir, "keys")}, t0.Add(-24*time.Hour), rand.Reader)
	})
	if hierErr != nil {
		t.Fatalf("creating dev PKI: %v", hierErr)
	}
	p, err := pki.Load(context.Background(), filepath.Join(hierDir, "ca"), pki.FileKeys{Dir: filepath.Join(hierDir, "keys")}, "file")
	if err != nil {
		t.Fatalf("loading dev PKI: %v", err)
	}
	return p
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	if hierDir != "" {
		os.RemoveAll(hierDir)
	}
	os.Exit(code)
}

var (
	lintOnce sync.Once
	theLint  *linter.Linter
	lintErr  error
)

func testLinter(t testing.TB) *linter.Linter {
	t.Helper()
	lintOnce.Do(func() { theLint, lintErr = linter.New(linter.Config{}) })
	if lintErr != nil {
		t.Fatal(lintErr)
	}
	return theLint
}

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path}, testfix.Logger(t))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// env is one generator's world.
type env struct {
	pki   *pki.PKI
	st    Store
	clock *testfix.Clock
	rec   *capture
	cfg   Config
}

func testConfig(shards int) Config {
	return Config{
		BaseURL:         testBase,
		Shards:          shards,
		Period:          time.Hour,
		RevocationDelay: 2 * time.Minute,
		Validity:        7 * 24 * time.Hour,
		PollInterval:    time.Second,
		LeaseTTL:        time.Minute,
		Holder:          "test-1",
	}
}

func newEnv(t testing.TB, shards int) *env {
	t.Helper()
	return &env{
		pki:   devPKI(t),
		st:    openStore(t, filepath.Join(t.TempDir(), "trustline.db")),
		clock: testfix.NewClock(t0),
		rec:   &capture{},
		cfg:   testConfig(shards),
	}
}

func (e *env) generator(t testing.TB, cfg Config) *Generator {
	t.Helper()
	root, ints := fromPKI(e.pki)
	g, err := New(cfg, Deps{
		Store: e.st, Root: root, Intermediates: ints, Linter: testLinter(t),
		Publishers: []crlpub.Publisher{e.rec}, Log: testfix.Logger(t), Now: e.clock.Now, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func cycle(t testing.TB, g *Generator) {
	t.Helper()
	if err := g.Cycle(context.Background()); err != nil {
		t.Fatalf("Cycle: %v", err)
	}
}

// run starts g.Run in the background; stop cancels it, waits for it to
// return and fails t if it returned an error.
func run(t testing.TB, g *Generator) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}
}

func newSerial(t testing.TB) serial.Serial {
	t.Helper()
	b := make([]byte, 17)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	b[0] = 0x42
	s, err := serial.FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cert is a store row for issuer/shard valid around t0.
func cert(t testing.TB, issuer issuerid.ID, sh int) store.Certificate {
	return store.Certificate{
		Serial: newSerial(t), IssuerID: issuer, Shard: shard.Index(sh), AccountID: "acct", OrderID: "order",
		NotBefore: t0.Add(-24 * time.Hour), NotAfter: t0.Add(90 * 24 * time.Hour), Status: status.Good,
	}
}

func insert(t testing.TB, st Store, cs ...store.Certificate) {
	t.Helper()
	if err := st.(interface {
		InsertCertificates(context.Context, []store.Certificate) error
	}).InsertCertificates(context.Background(), cs); err != nil {
		t.Fatalf("inserting certificates: %v", err)
	}
}

// revoke revokes through the store's Revoke, which appends the event the
// generator follows.
func revoke(t testing.TB, st Store, s serial.Serial, r reason.Reason, at time.Time) {
	t.Helper()
	_, err := st.(interface {
		Revoke(context.Context, store.Revocation, store.AuditEntry) (store.Certificate, error)
	}).Revoke(context.Background(), store.Revocation{Serial: s, Reason: r, At: at},
		store.AuditEntry{At: at, Kind: "certificate.revoked", Actor: "test", Subject: string(s)})
	if err != nil {
		t.Fatalf("revoking %s: %v", s, err)
	}
}

func storedCRLOf(t testing.TB, st Store, id issuerid.ID, sh int) (store.CRL, *x509.RevocationList) {
	t.Helper()
	c, err := st.CRL(context.Background(), id, sh)
	if err != nil {
		t.Fatalf("reading CRL %s/%d: %v", id, sh, err)
	}
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatalf("parsing CRL %s/%d: %v", id, sh, err)
	}
	return c, rl
}

// opensslVerify runs `openssl crl -verify` on der against issuer.
func opensslVerify(t testing.TB, der []byte, issuer *x509.Certificate) {
	t.Helper()
	bin := testenv.NeedCommand(t, "openssl")
	dir := t.TempDir()
	crlPath, caPath := filepath.Join(dir, "crl.der"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(crlPath, der, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-verify", "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl crl -verify: %v\n%s", err, out)
	}
}

// fromPKI returns a test hierarchy's root and intermediates as Deps wants
// them (cmd/ has the production adapter).
func fromPKI(p *pki.PKI) (root Issuer, intermediates []Issuer) {
	root = Issuer{ID: p.Root.ID, Cert: p.Root.Cert, Signer: p.Root.Signer}
	for _, is := range p.Intermediates {
		intermediates = append(intermediates, Issuer{ID: is.ID, Cert: is.Cert, Signer: is.Signer})
	}
	return root, intermediates
}
