package testfix

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
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
