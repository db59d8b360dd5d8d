package linter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// caCRL returns a root and a CRL it signed with nextUpdate validity after
// thisUpdate.
func signedCRL(t *testing.T, validity time.Duration) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lint Root", Organization: []string{"T"}, Country: []string{"US"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(7), ThisUpdate: now, NextUpdate: now.Add(validity),
	}, root, key)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestCACRLAllowsTwelveMonths(t *testing.T) {
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	year := signedCRL(t, 360*24*time.Hour)
	var f *Failure
	if err := l.CRL(year); !errors.As(err, &f) || f.Findings[0].Lint != "e_crl_next_update_invalid" {
		t.Errorf("a subscriber CRL valid 360 days: got %v, want e_crl_next_update_invalid", err)
	}
	if err := l.CACRL(year); err != nil {
		t.Errorf("a CA CRL valid 360 days: %v", err)
	}
	if err := l.CACRL(signedCRL(t, 400*24*time.Hour)); !errors.As(err, &f) {
		t.Errorf("a CA CRL valid 400 days passed: %v", err)
	}
	if err := l.CRL(signedCRL(t, 7*24*time.Hour)); err != nil {
		t.Errorf("a subscriber CRL valid 7 days: %v", err)
	}
}
