package ocspcodec

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"hash"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// HashAlg is the hash algorithm of a CertID (RFC 6960 §4.1.1). RFC 9919
// has clients use SHA-256 (or, still, SHA-1); SHA-384 and SHA-512 are
// accepted because RFC 6960 clients may send them. The zero value is no
// algorithm.
type HashAlg uint8

// The CertID hash algorithms Trustline answers.
const (
	SHA1 HashAlg = iota + 1
	SHA256
	SHA384
	SHA512
)

// hashAlgs lists every valid HashAlg, for loops in the Signer and tests.
var hashAlgs = [...]HashAlg{SHA1, SHA256, SHA384, SHA512}

// HashAlgNames are the names configuration files give the hash
// algorithms, in HashAlg order (ParseHashAlg).
var HashAlgNames = [...]string{"sha1", "sha256", "sha384", "sha512"}

// ParseHashAlg returns the algorithm a configuration name (HashAlgNames)
// stands for.
func ParseHashAlg(name string) (HashAlg, bool) {
	for i, n := range HashAlgNames {
		if n == name {
			return hashAlgs[i], true
		}
	}
	return 0, false
}

// DER OBJECT IDENTIFIER elements (tag and length included) of the hash
// algorithms. Strings, so that comparing against input does not allocate
// and nobody can modify them.
const (
	oidSHA1   = "\x06\x05\x2b\x0e\x03\x02\x1a"                 // 1.3.14.3.2.26
	oidSHA256 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" // 2.16.840.1.101.3.4.2.1
	oidSHA384 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02" // 2.16.840.1.101.3.4.2.2
	oidSHA512 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03" // 2.16.840.1.101.3.4.2.3
)

// Valid reports whether h is one of SHA1, SHA256, SHA384, SHA512.
func (h HashAlg) Valid() bool { return h >= SHA1 && h <= SHA512 }

// String returns "SHA-1", "SHA-256", "SHA-384", "SHA-512" or "HashAlg(N)".
func (h HashAlg) String() string {
	switch h {
	case SHA1:
		return "SHA-1"
	case SHA256:
		return "SHA-256"
	case SHA384:
		return "SHA-384"
	case SHA512:
		return "SHA-512"
	}
	return "HashAlg(" + strconv.Itoa(int(h)) + ")"
}

// New returns a new hash.Hash computing h. It panics if h is not Valid,
// like crypto.Hash.New for an unavailable hash.
func (h HashAlg) New() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512:
		return sha512.New()
	}
	panic("ocspcodec: New called on invalid " + h.String())
}

// Size is the digest length in octets, and so the length of the issuer
// name and key hashes of a CertID using h; 0 if h is not Valid.
func (h HashAlg) Size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA384:
		return sha512.Size384
	case SHA512:
		return sha512.Size
	}
	return 0
}

// CryptoHash returns the crypto.Hash for h, or 0 if h is not Valid.
func (h HashAlg) CryptoHash() crypto.Hash {
	switch h {
	case SHA1:
		return crypto.SHA1
	case SHA256:
		return crypto.SHA256
	case SHA384:
		return crypto.SHA384
	case SHA512:
		return crypto.SHA512
	}
	return 0
}

// OID returns the DER encoding (tag, length and content) of h's OBJECT
// IDENTIFIER, or nil if h is not Valid. The slice is a fresh copy.
func (h HashAlg) OID() []byte {
	if s := h.oid(); s != "" {
		return []byte(s)
	}
	return nil
}

func (h HashAlg) oid() string {
	switch h {
	case SHA1:
		return oidSHA1
	case SHA256:
		return oidSHA256
	case SHA384:
		return oidSHA384
	case SHA512:
		return oidSHA512
	}
	return ""
}

// hashAlgFromOID maps a DER OBJECT IDENTIFIER element to a HashAlg, 0 if
// it names none of them.
func hashAlgFromOID(der []byte) HashAlg {
	switch string(der) { // no allocation: the compiler compares in place
	case oidSHA1:
		return SHA1
	case oidSHA256:
		return SHA256
	case oidSHA384:
		return SHA384
	case oidSHA512:
		return SHA512
	}
	return 0
}

// IssuerHashes are the hashes a CertID carries to name an issuer (RFC 6960
// §4.1.1): of its subject's DER and of its subjectPublicKey's contents,
// with every HashAlg, indexed by HashAlg-1.
type IssuerHashes struct {
	Name, Key [len(hashAlgs)][]byte
}

// HashIssuer computes issuer's CertID hashes.
func HashIssuer(issuer *x509.Certificate) (IssuerHashes, error) {
	var out IssuerHashes
	key, err := SubjectPublicKey(issuer)
	if err != nil {
		return out, err
	}
	for _, h := range hashAlgs {
		d := h.New()
		d.Write(issuer.RawSubject)
		out.Name[h-1] = d.Sum(nil)
		d.Reset()
		d.Write(key)
		out.Key[h-1] = d.Sum(nil)
	}
	return out, nil
}

// SubjectPublicKey returns the contents of cert's subjectPublicKey BIT
// STRING: what the issuerKeyHash and the ResponderID KeyHash hash (RFC
// 6960 §4.1.1, §4.2.1).
func SubjectPublicKey(cert *x509.Certificate) ([]byte, error) {
	spki := cryptobyte.String(cert.RawSubjectPublicKeyInfo)
	var inner cryptobyte.String
	var key []byte
	if !spki.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.SkipASN1(cbasn1.SEQUENCE) ||
		!inner.ReadASN1BitStringAsBytes(&key) {
		return nil, fmt.Errorf("ocspcodec: reading subjectPublicKey of %q: malformed", cert.Subject)
	}
	return key, nil
}
