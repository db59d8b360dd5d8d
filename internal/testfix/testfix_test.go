package testfix

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Advance(time.Hour)
	c.Advance(-time.Minute)
	if want := t0.Add(59 * time.Minute); !c.Now().Equal(want) {
		t.Errorf("after ±: %v, want %v", c.Now(), want)
	}
	c.Set(t0.Add(-time.Hour))
	if !c.Now().Equal(t0.Add(-time.Hour)) {
		t.Errorf("after Set: %v", c.Now())
	}
}

func TestCA(t *testing.T) {
	now := time.Now()
	ca := NewCA(t, "Test Root", now.Add(-time.Hour), now.Add(time.Hour))
	if !ca.Cert.IsCA || len(ca.Cert.SubjectKeyId) == 0 || ca.Cert.Subject.CommonName != "Test Root" {
		t.Fatalf("root: IsCA %v, SKI %x, CN %q", ca.Cert.IsCA, ca.Cert.SubjectKeyId, ca.Cert.Subject.CommonName)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := ca.Issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"a.test"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Minute)}, leafKey.Public())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "a.test"}); err != nil {
		t.Errorf("leaf does not verify under the CA: %v", err)
	}
}

// TestCreateCertificate issues under an RSA intermediate, which a CA
// cannot hold, and self-signs.
func TestCreateCertificate(t *testing.T) {
	now := time.Now()
	ca := NewCA(t, "Test Root", now.Add(-time.Hour), now.Add(time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	inter := ca.Issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "RSA intermediate"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Minute), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, rsaKey.Public())
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := CreateCertificate(t, &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: []string{"a.test"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Minute)}, inter, leafKey.Public(), rsaKey)
	if leaf.SignatureAlgorithm != x509.SHA256WithRSA || leaf.CheckSignatureFrom(inter) != nil {
		t.Errorf("leaf: signature algorithm %v, signature from the intermediate: %v", leaf.SignatureAlgorithm, leaf.CheckSignatureFrom(inter))
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self"},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	self := CreateCertificate(t, tmpl, tmpl, leafKey.Public(), leafKey)
	if err := self.CheckSignatureFrom(self); err != nil {
		t.Errorf("self-signed certificate does not verify under itself: %v", err)
	}
}

func TestParsePEMChain(t *testing.T) {
	now := time.Now()
	ca := NewCA(t, "Test Root", now.Add(-time.Hour), now.Add(time.Hour))
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := ca.Issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"a.test"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Minute)}, leafKey.Public())
	var data []byte
	for _, c := range []*x509.Certificate{leaf, ca.Cert} {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	got := ParsePEMChain(t, data)
	if len(got) != 2 || !got[0].Equal(leaf) || !got[1].Equal(ca.Cert) {
		t.Errorf("ParsePEMChain = %d certificates, want the leaf then the root", len(got))
	}
	if got := ParsePEMChain(t, []byte("no PEM here")); len(got) != 0 {
		t.Errorf("ParsePEMChain(no PEM) = %d certificates", len(got))
	}
}
