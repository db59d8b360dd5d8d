package ct

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
)

// fakeLog is an RFC 6962 log's add-chain and add-pre-chain, in process:
// it signs real SCTs with its own key but keeps no tree. Its behaviour
// can be switched to failing, slow or overloaded.
type fakeLog struct {
	srv   *httptest.Server
	key   *ecdsa.PrivateKey
	log   Log
	mu    sync.Mutex
	mode  string // "", "fail", "slow", "busy"
	calls atomic.Int64
	got   [][]ctgo.ASN1Cert // the chains submitted
}

func startFakeLog(t *testing.T, name, operator string) *fakeLog {
	t.Helper()
	f := &fakeLog{}
	f.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.log = Log{Name: name, Operator: operator, URL: f.srv.URL, Key: f.key.Public(), KeyDER: der, ID: sha256.Sum256(der)}
	return f
}

func (f *fakeLog) setMode(m string) { f.mu.Lock(); f.mode = m; f.mu.Unlock() }

// chains returns the chains submitted so far.
func (f *fakeLog) chains() [][]ctgo.ASN1Cert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]ctgo.ASN1Cert(nil), f.got...)
}

func (f *fakeLog) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.mu.Lock()
	mode := f.mode
	f.mu.Unlock()
	switch mode {
	case "fail":
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case "slow":
		// The body read, the server notices the client going away.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	case "busy":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	etype := ctgo.X509LogEntryType
	switch r.URL.Path {
	case "/ct/v1/add-chain":
	case "/ct/v1/add-pre-chain":
		etype = ctgo.PrecertLogEntryType
	default:
		http.NotFound(w, r)
		return
	}
	var req ctgo.AddChainRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Chain) < 2 {
		http.Error(w, "bad chain", http.StatusBadRequest)
		return
	}
	chain := make([]ctgo.ASN1Cert, len(req.Chain))
	for i, c := range req.Chain {
		chain[i] = ctgo.ASN1Cert{Data: c}
	}
	f.mu.Lock()
	f.got = append(f.got, chain)
	f.mu.Unlock()
	ts := uint64(time.Now().UnixMilli())
	leaf, err := ctgo.MerkleTreeLeafFromRawChain(chain, etype, ts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sct := ctgo.SignedCertificateTimestamp{SCTVersion: ctgo.V1, LogID: ctgo.LogID{KeyID: f.log.ID}, Timestamp: ts}
	input, err := ctgo.SerializeSCTSignatureInput(sct, ctgo.LogEntry{Leaf: *leaf})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(input)
	sig, _ := f.key.Sign(rand.Reader, sum[:], crypto.SHA256)
	ds, _ := cttls.Marshal(ctgo.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig,
	})
	json.NewEncoder(w).Encode(ctgo.AddChainResponse{SCTVersion: ctgo.V1, ID: f.log.ID[:], Timestamp: ts, Signature: ds})
}

// testCA is an issuer that signs precertificates and final certificates.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	sub  *ecdsa.PrivateKey // the subscriber's key
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CT CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	sub, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &testCA{key: k, cert: c, sub: sub}
}

// leafTemplate is a subscriber certificate's template; extra extensions
// are added to it (the poison, or the SCT list).
func (ca *testCA) leafTemplate(notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(0x5eed), DNSNames: []string{"www.example.com"},
		NotBefore: time.Now().Add(-time.Minute).Truncate(time.Second), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate, ext ...pkix.Extension) []byte {
	t.Helper()
	c := *tmpl
	c.ExtraExtensions = append([]pkix.Extension(nil), ext...)
	der, err := x509.CreateCertificate(rand.Reader, &c, ca.cert, ca.sub.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
