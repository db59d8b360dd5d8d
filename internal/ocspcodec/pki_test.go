package ocspcodec

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testfix"
)

// Test keys, generated once per test binary (RSA generation is slow).
var (
	keyP256 = sync.OnceValue(func() crypto.Signer { return mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	keyP384 = sync.OnceValue(func() crypto.Signer { return mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	keyRSA  = sync.OnceValue(func() crypto.Signer { return mustKey(rsa.GenerateKey(rand.Reader, 2048)) })
	// Responder keys, distinct from the issuers'.
	keyP256R = sync.OnceValue(func() crypto.Signer { return mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	keyP384R = sync.OnceValue(func() crypto.Signer { return mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	keyRSAR  = sync.OnceValue(func() crypto.Signer { return mustKey(rsa.GenerateKey(rand.Reader, 2048)) })
	leafKey  = sync.OnceValue(func() crypto.Signer { return mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
)

func mustKey[K crypto.Signer](k K, err error) crypto.Signer {
	if err != nil {
		panic(err)
	}
	return k
}

// testPKI is root → issuer → {leaf, delegated responder}.
type testPKI struct {
	root, issuer, responder, leaf *x509.Certificate
	issuerKey, responderKey       crypto.Signer
}

var oidNoCheckExt = pkix.Extension{Id: oidNoCheck, Value: []byte{0x05, 0x00}}

// newPKI builds a PKI whose issuer and responder have the given key types,
// under a testfix root. Certificates are valid from an hour ago for a
// year, so that openssl accepts them now.
func newPKI(t testing.TB, issuerKey, responderKey crypto.Signer) *testPKI {
	t.Helper()
	now := time.Now()
	root := testfix.NewCA(t, "ocspcodec test root", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	p := &testPKI{root: root.Cert, issuerKey: issuerKey, responderKey: responderKey}
	p.issuer = root.Issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"Trustline Test"}, CommonName: "ocspcodec test issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, issuerKey.Public())
	p.responder = p.issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "ocspcodec test responder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{oidNoCheckExt},
	}, responderKey)
	serial, _ := new(big.Int).SetString("8f00112233445566778899aabbccddeeff", 16) // high bit: INTEGER needs a pad
	p.leaf = p.issue(t, &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "leaf.example"}, DNSNames: []string{"leaf.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, leafKey())
	return p
}

// issue signs tmpl for key's public key with the issuer's key, which may
// be RSA and so cannot make a testfix.CA.
func (p *testPKI) issue(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	return testfix.CreateCertificate(t, tmpl, p.issuer, key.Public(), p.issuerKey)
}

// config returns the Config for issuer-signed or delegated responses.
func (p *testPKI) config(delegated bool) Config {
	if delegated {
		return Config{Issuer: p.issuer, Responder: p.responder, Key: p.responderKey}
	}
	return Config{Issuer: p.issuer, Key: p.issuerKey}
}
