package testfix

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// CA is a throwaway ECDSA P-256 root for tests: certificate signing and
// CRL signing, a subject key id, valid over the window it is made with.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a root named name (CommonName; Organization and Country
// are set too, as linted CA subjects need them), valid from notBefore to
// notAfter.
func NewCA(tb testing.TB, name string, notBefore, notAfter time.Time) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	ski := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Trustline Tests"}, Country: []string{"US"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
		SubjectKeyId: ski[:],
	}
	return &CA{Cert: CreateCertificate(tb, tmpl, tmpl, key.Public(), key), Key: key}
}

// Issue signs tmpl for pub with the CA's key and returns the parsed
// certificate.
func (ca *CA) Issue(tb testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	tb.Helper()
	return CreateCertificate(tb, tmpl, ca.Cert, pub, ca.Key)
}

// CreateCertificate is x509.CreateCertificate with crypto/rand, followed
// by x509.ParseCertificate, failing tb on error. It is for the
// certificates a CA cannot issue: those signed by an intermediate whose
// key is not ECDSA (RSA, say), and self-signed ones (parent == tmpl).
func CreateCertificate(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// ParsePEMChain parses every PEM block in data, in order, as a
// certificate (a chain as the API and the portal serve it, leaf first),
// failing tb on a block that is not one.
func ParsePEMChain(tb testing.TB, data []byte) []*x509.Certificate {
	tb.Helper()
	var chain []*x509.Certificate
	for rest := data; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return chain
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			tb.Fatal(err)
		}
		chain = append(chain, c)
	}
}

// Pool is a pool holding the CA's certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}
