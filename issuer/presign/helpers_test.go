package presign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/presign"
	"github.com/trustline/trustline/issuer/profile"
)

// The dev hierarchy (a P-384 root, a P-256 and an RSA-2048 intermediate
// with delegated responders) is made once per test binary: RSA key
// generation is slow.
var shared struct {
	once sync.Once
	dir  string
	pki  *pki.PKI
	lint *linter.Linter
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func devPKI(t testing.TB) (*pki.PKI, *linter.Linter, string) {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "presign-test-"); shared.err != nil {
			return
		}
		cfg := pki.DefaultDev(filepath.Join(shared.dir, "ca"), "http://crl.test", "file")
		if shared.pki, shared.err = pki.Create(context.Background(), cfg, pki.FileKeys{Dir: filepath.Join(shared.dir, "keys")}, time.Now(), rand.Reader); shared.err != nil {
			return
		}
		shared.lint, shared.err = linter.New(linter.Config{})
		if shared.err != nil {
			return
		}
		// PEM files for openssl and ocsptool.
		writePEM := func(name string, c *x509.Certificate) {
			if err := os.WriteFile(filepath.Join(shared.dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil && shared.err == nil {
				shared.err = err
			}
		}
		writePEM("root.pem", shared.pki.Root.Cert)
		for _, is := range shared.pki.Intermediates {
			writePEM(string(is.ID)+".pem", is.Cert)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.pki, shared.lint, shared.dir
}

// env is the issuance core over a SQLite store with the pipeline as its
// status sink, writing to cache.
type env struct {
	t     testing.TB
	pki   *pki.PKI
	dir   string // PEM files: root.pem, <issuer>.pem
	st    testStore
	cache ocspcache.Cache
	mem   *ocspcache.Memory // the cache, when it is the default memory one
	p     *presign.Pipeline
	ca    *issuer.CA
	clock *testfix.Clock
}

// testStore is what the tests use of a store: an adapter's.
type testStore interface {
	store.Store
	store.BulkLoader
}

type envOpts struct {
	cfg presign.Config
	// store defaults to a fresh SQLite file.
	store testStore
	// cache defaults to a memory cache on the env's clock.
	cache    ocspcache.Cache
	ocspURL  string
	realTime bool // use the wall clock (for openssl, which checks times)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	p, lt, dir := devPKI(t)
	ctx := context.Background()
	var st testStore = o.store
	if st == nil {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "t.db")}, testfix.QuietLogger())
		if err != nil {
			t.Fatal(err)
		}
		st = s
	}
	t.Cleanup(func() { st.Close() })
	var err error
	e := &env{t: t, pki: p, dir: dir, st: st, cache: o.cache, clock: testfix.NewClock(time.Now().Truncate(time.Second))}
	now := e.clock.Now
	if o.realTime {
		now = time.Now
	}
	if e.cache == nil {
		e.mem = newMemory(t, now)
		e.cache = e.mem
	}
	e.p, err = presign.New(o.cfg, presign.Deps{Store: st, Cache: e.cache, Issuers: fromPKI(p), Log: testfix.QuietLogger(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if o.ocspURL == "" {
		o.ocspURL = "http://ocsp.test/"
	}
	e.ca, err = issuer.New(issuer.Config{OCSPURL: o.ocspURL, BaseURL: "http://crl.test", Shards: 4, SerialPrefix: 0x5a},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Sink: e.p, Log: testfix.QuietLogger(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newMemory(t testing.TB, now func() time.Time) *ocspcache.Memory {
	m, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leafKey is a fresh subscriber key: a key revoked for keyCompromise is
// blocked, so certificates must not share one.
func leafKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// issue issues a DV certificate for name through the CA (and so the sink).
func (e *env) issue(name string) store.Certificate {
	e.t.Helper()
	c, err := e.ca.Issue(context.Background(), issuer.IssueRequest{AccountID: "acct", OrderID: "ord-" + name,
		Profile: profile.DV, Names: []string{name}, PublicKey: leafKey().Public()})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) revoke(sn serial.Serial, r reason.Reason) store.Certificate {
	e.t.Helper()
	c, err := e.ca.Revoke(context.Background(), issuer.RevokeRequest{Serial: sn, Reason: r, Actor: "acct"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) cached(is issuerid.ID, sn serial.Serial, h ocspcodec.HashAlg) ocspcache.Entry {
	e.t.Helper()
	out := make([]ocspcache.Entry, 1)
	if err := e.cache.Get(context.Background(), []string{ocspcache.Key(is, string(sn), h)}, out); err != nil {
		e.t.Fatal(err)
	}
	return out[0]
}

func (e *env) issuerCert(id issuerid.ID) *x509.Certificate {
	is, ok := e.pki.Issuer(id)
	if !ok {
		e.t.Fatalf("no issuer %s", id)
	}
	return is.Cert
}

// check parses and verifies a cached response with x/crypto/ocsp and
// checks what it says about c.
func (e *env) check(en ocspcache.Entry, c store.Certificate, h ocspcodec.HashAlg, want int) *ocsp.Response {
	e.t.Helper()
	if !en.Found() {
		e.t.Fatalf("no cached %s response for %s", h, c.Serial)
	}
	r, err := ocsp.ParseResponseForCert(en.DER, nil, e.issuerCert(c.IssuerID))
	if err != nil {
		e.t.Fatalf("x/crypto/ocsp: %v", err)
	}
	if r.Status != want || fmt.Sprintf("%x", r.SerialNumber) != string(c.Serial) || r.IssuerHash != h.CryptoHash() {
		e.t.Errorf("response says status %d serial %x hash %v; want %d, %s, %v", r.Status, r.SerialNumber, r.IssuerHash, want, c.Serial, h.CryptoHash())
	}
	if !r.ThisUpdate.Equal(en.ThisUpdate) || !r.NextUpdate.Equal(en.NextUpdate) {
		e.t.Errorf("entry times %v..%v, response %v..%v", en.ThisUpdate, en.NextUpdate, r.ThisUpdate, r.NextUpdate)
	}
	return r
}

func populate(n int, revoked float64, family string) bench.PopulateRequest {
	return bench.PopulateRequest{N: n, RevokedFraction: revoked, KeyFamily: family}
}

// fromPKI returns a test hierarchy's intermediates as Issuers signing with
// their delegated responders (cmd/ has the production adapter).
func fromPKI(p *pki.PKI) []presign.Issuer {
	var out []presign.Issuer
	for _, is := range p.Intermediates {
		out = append(out, presign.Issuer{ID: is.ID, Cert: is.Cert, Responder: is.Responder, Key: is.ResponderSigner})
	}
	return out
}
