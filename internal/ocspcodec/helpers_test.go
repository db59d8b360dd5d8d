package ocspcodec

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustline/trustline/internal/der"
)

// tlv builds a DER element from a tag and the concatenated parts; tests use
// it to write requests by hand.
func tlv(tag byte, parts ...[]byte) []byte { return der.Element(tag, parts...) }

// readTestdata returns a file from testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readCert parses a PEM certificate from testdata/.
func readCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// issuerHashesOf computes the CertID issuer hashes of cert independently of
// the Signer: the name hash over RawSubject, the key hash over the public
// key BIT STRING contents, read with encoding/asn1 rather than the
// package's own SubjectPublicKey.
func issuerHashesOf(t testing.TB, cert *x509.Certificate, h HashAlg) (name, key []byte) {
	t.Helper()
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	hn := h.New()
	hn.Write(cert.RawSubject)
	name = hn.Sum(nil)
	hn.Reset()
	hn.Write(spki.PublicKey.RightAlign())
	return name, hn.Sum(nil)
}
