package bench

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/trustline/trustline/internal/ocspcodec"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DER of the CertID hash AlgorithmIdentifiers, with NULL parameters as
// x/crypto/ocsp and OpenSSL send them.
var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidNonce  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
)

// issuerKey identifies an issuer in CertIDs: its name and key hashes.
type issuerKey = ocspcodec.IssuerHashes

func newIssuerKey(cert *x509.Certificate) (issuerKey, error) {
	k, err := ocspcodec.HashIssuer(cert)
	if err != nil {
		return k, fmt.Errorf("bench: issuer %q: %w", cert.Subject, err)
	}
	return k, nil
}

// buildRequest returns a DER OCSPRequest (RFC 6960 §4.1.1) with one
// CertID and, when nonce is non-empty, the nonce extension of RFC 8954
// (1–32 octets). x/crypto/ocsp.CreateRequest cannot add a nonce, which is
// why the bench encodes requests itself.
func buildRequest(is issuerKey, h crypto.Hash, sn *big.Int, nonce []byte) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	var alg ocspcodec.HashAlg
	switch h {
	case crypto.SHA1:
		oid, alg = oidSHA1, ocspcodec.SHA1
	case crypto.SHA256:
		oid, alg = oidSHA256, ocspcodec.SHA256
	default:
		return nil, fmt.Errorf("bench: CertID hash %v not supported", h)
	}
	if sn.Sign() <= 0 {
		return nil, errors.New("bench: serial must be positive")
	}
	if len(nonce) > 32 {
		return nil, errors.New("bench: nonce longer than 32 octets (RFC 8954)")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oid)
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(is.Name[alg-1])
						b.AddASN1OctetString(is.Key[alg-1])
						b.AddASN1BigInt(sn)
					})
				})
			})
			if len(nonce) > 0 {
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extensions
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extension
							b.AddASN1ObjectIdentifier(oidNonce)
							b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
								b.AddASN1OctetString(nonce)
							})
						})
					})
				})
			}
		})
	})
	return b.Bytes()
}
