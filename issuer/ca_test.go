package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
)

// fakeCertStore is a hand-written CertStore.
type fakeCertStore struct {
	mu         sync.Mutex
	reserved   map[serial.Serial]bool
	certs      map[serial.Serial]store.Certificate
	audits     []store.AuditEntry
	collisions int // ReserveSerial answers ErrDuplicate this many times first
	blocked    map[string]store.BlockedKey
}

func newFakeStore() *fakeCertStore {
	return &fakeCertStore{reserved: map[serial.Serial]bool{}, certs: map[serial.Serial]store.Certificate{}}
}

func (f *fakeCertStore) ReserveSerial(_ context.Context, s serial.Serial, _ issuerid.ID, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.collisions > 0 {
		f.collisions--
		return store.ErrDuplicate
	}
	if f.reserved[s] {
		return store.ErrDuplicate
	}
	f.reserved[s] = true
	return nil
}

func (f *fakeCertStore) InsertCertificate(_ context.Context, c store.Certificate, a store.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.reserved[c.Serial] {
		return errors.New("serial not reserved")
	}
	f.certs[c.Serial] = c
	f.audits = append(f.audits, a)
	return nil
}

func (f *fakeCertStore) CompleteCertificate(_ context.Context, sn serial.Serial, der, _ []byte, _ time.Time, a store.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[sn]
	switch {
	case !ok:
		return store.ErrNotFound
	case !c.Precertificate:
		return store.ErrConflict
	}
	c.DER, c.Precertificate = der, false
	f.certs[sn] = c
	f.audits = append(f.audits, a)
	return nil
}

func (f *fakeCertStore) Certificate(_ context.Context, sn serial.Serial) (store.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[sn]
	if !ok {
		return store.Certificate{}, store.ErrNotFound
	}
	return c, nil
}

func (f *fakeCertStore) CertificatesWithKey(_ context.Context, h []byte) ([]serial.Serial, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []serial.Serial
	for sn, c := range f.certs {
		if string(c.KeyHash) == string(h) {
			out = append(out, sn)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeCertStore) BlockKey(_ context.Context, k store.BlockedKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked == nil {
		f.blocked = map[string]store.BlockedKey{}
	}
	if _, ok := f.blocked[string(k.KeyHash)]; ok {
		return store.ErrDuplicate
	}
	f.blocked[string(k.KeyHash)] = k
	return nil
}

func (f *fakeCertStore) BlockedKey(_ context.Context, h []byte) (store.BlockedKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.blocked[string(h)]; ok {
		return k, nil
	}
	return store.BlockedKey{}, store.ErrNotFound
}

func (f *fakeCertStore) AppendAudit(_ context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, e)
	return e, nil
}

func (f *fakeCertStore) Revoke(_ context.Context, r store.Revocation, a store.AuditEntry) (store.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[r.Serial]
	if !ok {
		return store.Certificate{}, store.ErrNotFound
	}
	if c.Status == status.Revoked {
		return store.Certificate{}, store.ErrAlreadyRevoked
	}
	c.Status, c.Reason, c.RevokedAt = status.Revoked, r.Reason, r.At
	f.certs[r.Serial] = c
	f.audits = append(f.audits, a)
	return c, nil
}

type recordingSink struct{ got []store.Certificate }

func (s *recordingSink) CertificateChanged(_ context.Context, c store.Certificate) error {
	s.got = append(s.got, c)
	return nil
}

var (
	devPKIOnce sync.Once
	devPKI     *pki.PKI
	devLinter  *linter.Linter
	devPKIErr  error
)

// testPKI creates one dev hierarchy for the package's tests (RSA key
// generation is slow).
func testPKI(t testing.TB) (*pki.PKI, *linter.Linter) {
	t.Helper()
	devPKIOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			devPKIErr = err
			return
		}
		cfg := pki.DefaultDev(filepath.Join(dir, "ca"), "http://127.0.0.1:8082", "file")
		devPKI, devPKIErr = pki.Create(context.Background(), cfg, pki.FileKeys{Dir: filepath.Join(dir, "keys")}, time.Now(), rand.Reader)
		if devPKIErr == nil {
			devLinter, devPKIErr = linter.New(linter.Config{})
		}
	})
	if devPKIErr != nil {
		t.Fatal(devPKIErr)
	}
	return devPKI, devLinter
}

func newTestCA(t *testing.T, st CertStore, sink StatusSink) *CA {
	t.Helper()
	p, lt := testPKI(t)
	ca, err := New(Config{OCSPURL: "http://127.0.0.1:8081/", BaseURL: "http://127.0.0.1:8082", Shards: 8, SerialPrefix: 0x2a},
		Deps{Store: st, PKI: p, Linter: lt, Sink: sink, Log: testfix.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueSignsLintedCertificates(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name       string
		pub        crypto.PublicKey
		wantIssuer issuerid.ID
	}{
		{"ecdsa", ecKey.Public(), "int-p256"},
		{"rsa", rsaKey.Public(), "int-rsa2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, sink := newFakeStore(), &recordingSink{}
			ca := newTestCA(t, st, sink)
			row, err := ca.Issue(context.Background(), IssueRequest{AccountID: "acct1", OrderID: "ord1", Profile: profile.DV,
				Names: []string{"www.example.com", "example.com"}, PublicKey: tt.pub})
			if err != nil {
				t.Fatal(err)
			}
			if row.IssuerID != tt.wantIssuer {
				t.Errorf("issuer %s, want %s", row.IssuerID, tt.wantIssuer)
			}
			cert, err := x509.ParseCertificate(row.DER)
			if err != nil {
				t.Fatal(err)
			}
			p, lt := testPKI(t)
			is, _ := p.Issuer(row.IssuerID)
			roots, inter := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(p.Root.Cert)
			inter.AddCert(is.Cert)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "example.com"}); err != nil {
				t.Errorf("chain does not verify: %v", err)
			}
			if err := lt.Certificate(row.DER); err != nil {
				t.Errorf("issued certificate fails lints: %v", err)
			}
			if got := row.Serial.Bytes(); len(got) != 17 || got[0] != 0x2a {
				t.Errorf("serial %s: want 17 octets with prefix 2a", row.Serial)
			}
			wantCRL := pki.ShardCRLURL("http://127.0.0.1:8082", row.IssuerID, int(row.Shard))
			if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCRL {
				t.Errorf("CRLDP %v, want %s", cert.CRLDistributionPoints, wantCRL)
			}
			if cert.Subject.CommonName != "" || len(cert.DNSNames) == 0 || len(cert.OCSPServer) != 1 {
				t.Errorf("CN %q (want none), SAN %v, OCSP %v", cert.Subject.CommonName, cert.DNSNames, cert.OCSPServer)
			}
			if len(st.audits) != 1 || st.audits[0].Kind != "certificate.issued" || st.audits[0].Subject != string(row.Serial) {
				t.Errorf("audit entries %+v", st.audits)
			}
			if len(sink.got) != 1 || sink.got[0].Serial != row.Serial {
				t.Errorf("sink saw %d certificates", len(sink.got))
			}
		})
	}
}

func TestIssueRetriesSerialCollisions(t *testing.T) {
	st := newFakeStore()
	st.collisions = 2
	ca := newTestCA(t, st, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"example.com"}, PublicKey: key.Public()}); err != nil {
		t.Fatalf("Issue after two collisions: %v", err)
	}
	st.collisions = maxSerialTries
	if _, err := ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"example.com"}, PublicKey: key.Public()}); err == nil {
		t.Fatal("Issue succeeded with every serial colliding")
	}
}

func TestIssueRefusesWhatFailsLint(t *testing.T) {
	st := newFakeStore()
	ca := newTestCA(t, st, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"under_score.example.com"}, PublicKey: key.Public()})
	var f *linter.Failure
	if !errors.As(err, &f) {
		t.Fatalf("Issue of a lint-failing name: err = %v, want *linter.Failure", err)
	}
	if len(st.certs) != 0 {
		t.Error("a certificate was stored although lint failed")
	}
}

func TestRevoke(t *testing.T) {
	st, sink := newFakeStore(), &recordingSink{}
	ca := newTestCA(t, st, sink)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	row, err := ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"example.com"}, PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Revoke(context.Background(), RevokeRequest{Serial: row.Serial, Reason: reason.CertificateHold}); !errors.Is(err, ErrReasonNotAllowed) {
		t.Errorf("certificateHold: err = %v", err)
	}
	got, err := ca.Revoke(context.Background(), RevokeRequest{Serial: row.Serial, Reason: reason.KeyCompromise, Actor: "acct1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != status.Revoked || got.Reason != reason.KeyCompromise {
		t.Errorf("after revoke: %v %v", got.Status, got.Reason)
	}
	if last := sink.got[len(sink.got)-1]; last.Status != status.Revoked {
		t.Error("sink not told of the revocation")
	}
	if _, err := ca.Revoke(context.Background(), RevokeRequest{Serial: row.Serial, Reason: reason.Superseded}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second revoke: err = %v", err)
	}
	var kinds []string
	for _, a := range st.audits {
		kinds = append(kinds, a.Kind)
	}
	if !slices.Contains(kinds, "certificate.revoked") || kinds[len(kinds)-1] != "key.blocked" {
		t.Errorf("audit entries %v: want the revocation, then the key blocked", kinds)
	}
	// keyCompromise blocked the key: the same key is refused, saying why.
	_, err = ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"example.com"}, PublicKey: key.Public()})
	var fb *fault.ForbiddenError
	if !errors.As(err, &fb) || !strings.Contains(fb.Detail, string(row.Serial)) || !strings.Contains(fb.Detail, "keyCompromise") {
		t.Errorf("the compromised key again: %v, want a refusal naming %s", err, row.Serial)
	}
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "trustline-issuer-test-") }
