package linter

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testfix"
)

// signedCRL returns a CRL signed by a fresh root with nextUpdate validity
// after thisUpdate.
func signedCRL(t *testing.T, validity time.Duration) []byte {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	ca := testfix.NewCA(t, "Lint Root", now.Add(-time.Hour), now.AddDate(10, 0, 0))
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(7), ThisUpdate: now, NextUpdate: now.Add(validity),
	}, ca.Cert, ca.Key)
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
