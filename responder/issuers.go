package responder

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcodec"
)

// Issuer is a CA the responder answers for: its id (the cache keys' first
// part) and its certificate (whose name and key hashes requests carry).
type Issuer struct {
	ID   issuerid.ID
	Cert *x509.Certificate
}

// issuer is an Issuer with its CertID hashes precomputed, indexed by
// HashAlg-1.
type issuer struct {
	id       issuerid.ID
	nameHash [4][]byte
	keyHash  [4][]byte
	// tags is the cache-tag prefix naming this issuer.
	tags string
}

func newIssuer(is Issuer) (*issuer, error) {
	if !is.ID.Valid() || is.Cert == nil {
		return nil, fmt.Errorf("responder: issuer %q: a valid ID and a certificate are required", is.ID)
	}
	key, err := subjectPublicKey(is.Cert)
	if err != nil {
		return nil, fmt.Errorf("responder: issuer %s: %w", is.ID, err)
	}
	out := &issuer{id: is.ID}
	for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256, ocspcodec.SHA384, ocspcodec.SHA512} {
		d := h.New()
		d.Write(is.Cert.RawSubject)
		out.nameHash[h-1] = d.Sum(nil)
		d.Reset()
		d.Write(key)
		out.keyHash[h-1] = d.Sum(nil)
	}
	return out, nil
}

// subjectPublicKey returns the contents of the certificate's
// subjectPublicKey BIT STRING, which issuerKeyHash hashes (RFC 6960
// §4.1.1).
func subjectPublicKey(cert *x509.Certificate) ([]byte, error) {
	spki := cryptobyte.String(cert.RawSubjectPublicKeyInfo)
	var inner cryptobyte.String
	var key []byte
	if !spki.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.SkipASN1(cbasn1.SEQUENCE) ||
		!inner.ReadASN1BitStringAsBytes(&key) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	return key, nil
}

// matches reports whether id names this issuer. Both hashes must match:
// two CAs may share a name (cross-signs, re-keys) or, in principle, a key.
func (is *issuer) matches(id *ocspcodec.CertID) bool {
	i := id.Hash - 1
	return bytes.Equal(id.IssuerKeyHash, is.keyHash[i]) && bytes.Equal(id.IssuerNameHash, is.nameHash[i])
}
