package responder

import (
	"bytes"
	"crypto/x509"
	"fmt"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcodec"
)

// Issuer is a CA the responder answers for: its id (the cache keys' first
// part) and its certificate (whose name and key hashes requests carry).
type Issuer struct {
	ID   issuerid.ID
	Cert *x509.Certificate
}

// issuer is an Issuer with its CertID hashes precomputed.
type issuer struct {
	id     issuerid.ID
	hashes ocspcodec.IssuerHashes
	// tags is the cache-tag prefix naming this issuer.
	tags string
}

func newIssuer(is Issuer) (*issuer, error) {
	if !is.ID.Valid() || is.Cert == nil {
		return nil, fmt.Errorf("responder: issuer %q: a valid ID and a certificate are required", is.ID)
	}
	h, err := ocspcodec.HashIssuer(is.Cert)
	if err != nil {
		return nil, fmt.Errorf("responder: issuer %s: %w", is.ID, err)
	}
	return &issuer{id: is.ID, hashes: h}, nil
}

// matches reports whether id names this issuer. Both hashes must match:
// two CAs may share a name (cross-signs, re-keys) or, in principle, a key.
func (is *issuer) matches(id *ocspcodec.CertID) bool {
	i := id.Hash - 1
	return bytes.Equal(id.IssuerKeyHash, is.hashes.Key[i]) && bytes.Equal(id.IssuerNameHash, is.hashes.Name[i])
}
