package ocspcodec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
)

// The unsigned error responses of RFC 6960 §4.2.1: an OCSPResponse with
// only a responseStatus. Their contents never change; treat them as
// read-only (they are full-capacity slices, so appending copies).
var (
	MalformedRequest = []byte{0x30, 0x03, 0x0a, 0x01, 0x01}
	InternalError    = []byte{0x30, 0x03, 0x0a, 0x01, 0x02}
	TryLater         = []byte{0x30, 0x03, 0x0a, 0x01, 0x03}
	// Unauthorized is RFC 9919 §2.2.3's answer for a certificate the
	// responder knows nothing about (DESIGN invariant 2).
	Unauthorized = []byte{0x30, 0x03, 0x0a, 0x01, 0x06}
)

// DER constants of the response.
const (
	// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
	oidBasic = "\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x01"
	// AlgorithmIdentifiers of the response signature (RFC 5758 §3.2: no
	// parameters for ECDSA; RFC 4055 §5: NULL for RSA).
	algECDSASHA256 = "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"
	algECDSASHA384 = "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x03"
	algRSASHA256   = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00"
)

// oidNoCheck is id-pkix-ocsp-nocheck, 1.3.6.1.5.5.7.48.1.5 (RFC 6960
// §4.2.2.2.1), which BR §4.9.9 requires in delegated responder certificates.
var oidNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// Single is the status of one certificate, as one SingleResponse says it
// (RFC 6960 §4.2.1).
type Single struct {
	// ID names the certificate. ID.Hash should be the request's: clients
	// match the response's CertID against their own. If IssuerNameHash and IssuerKeyHash are both empty
	// the Signer fills them in; otherwise they must be the issuer's.
	ID CertID
	// Status is Good, Revoked or Unknown.
	Status status.Status
	// RevokedAt and Reason are set only when Status is Revoked. An
	// Unspecified reason is left out of the response (as BR §7.2.2 has it
	// for CRLs); the Signer does not apply the BR's subscriber subset,
	// since it also answers for CA certificates.
	RevokedAt time.Time
	Reason    reason.Reason
	// ThisUpdate and NextUpdate bound the response's validity; both are
	// required (RFC 9919 §2.2.4 has clients insist on nextUpdate), and
	// NextUpdate must come after ThisUpdate. Picking them is the pipeline's
	// job (BR §4.9.10).
	ThisUpdate, NextUpdate time.Time
}

// Config configures a Signer: one per (issuer, responder) pair.
type Config struct {
	// Issuer is the CA certificate whose issued certificates the responses
	// are about. Required.
	Issuer *x509.Certificate
	// Responder is the delegated responder certificate (RFC 6960
	// §4.2.2.2), or nil when the issuer's own key signs. It must be issued
	// by Issuer, have EKU id-kp-OCSPSigning and the id-pkix-ocsp-nocheck
	// extension (BR §4.9.9); it is put in every response's certs. Its
	// validity is not checked here: rotating it before expiry is the
	// pipeline's job.
	Responder *x509.Certificate
	// Key is the private key of Responder, or of Issuer when Responder is
	// nil: ECDSA P-256 (signs ecdsa-with-SHA256), ECDSA P-384
	// (ecdsa-with-SHA384) or RSA of at least 2048 bits
	// (sha256WithRSAEncryption). Required.
	Key crypto.Signer
}

// Validate checks cfg; NewSigner calls it.
func (cfg Config) Validate() error {
	if cfg.Issuer == nil {
		return errors.New("ocspcodec: config: Issuer is required")
	}
	if cfg.Key == nil {
		return errors.New("ocspcodec: config: Key is required")
	}
	signerCert, role := cfg.Issuer, "Issuer"
	if cfg.Responder != nil {
		signerCert, role = cfg.Responder, "Responder"
		if err := cfg.Responder.CheckSignatureFrom(cfg.Issuer); err != nil {
			return fmt.Errorf("ocspcodec: config: Responder is not issued by Issuer: %w", err)
		}
		if !slices.Contains(cfg.Responder.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return errors.New("ocspcodec: config: Responder lacks EKU id-kp-OCSPSigning (RFC 6960 §4.2.2.2)")
		}
		if !slices.ContainsFunc(cfg.Responder.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidNoCheck) }) {
			return errors.New("ocspcodec: config: Responder lacks id-pkix-ocsp-nocheck (BR §4.9.9)")
		}
	}
	pub, ok := cfg.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signerCert.PublicKey) {
		return fmt.Errorf("ocspcodec: config: Key is not the key of %s", role)
	}
	if _, _, err := signatureAlgorithm(cfg.Key.Public()); err != nil {
		return err
	}
	return nil
}

// signatureAlgorithm picks the response signature algorithm for a key.
func signatureAlgorithm(pub crypto.PublicKey) (alg string, h crypto.Hash, err error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return algECDSASHA256, crypto.SHA256, nil
		case elliptic.P384():
			return algECDSASHA384, crypto.SHA384, nil
		}
		return "", 0, fmt.Errorf("ocspcodec: config: ECDSA curve %s not supported (P-256, P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", 0, fmt.Errorf("ocspcodec: config: RSA key of %d bits, fewer than 2048", k.N.BitLen())
		}
		return algRSASHA256, crypto.SHA256, nil
	}
	return "", 0, fmt.Errorf("ocspcodec: config: key type %T not supported (ECDSA P-256/P-384, RSA)", pub)
}

// Signer encodes and signs OCSP responses for one issuer with one key. Its
// constant parts are computed once, so that a response costs encoding
// tbsResponseData, one hash, one signature and assembly. It is safe for
// concurrent use if its Key is.
type Signer struct {
	key  crypto.Signer
	hash crypto.Hash // of the response signature
	// DER, precomputed.
	responderID []byte // [2] EXPLICIT KeyHash
	sigAlg      []byte // AlgorithmIdentifier
	certs       []byte // [0] EXPLICIT SEQUENCE OF Certificate, or empty
	// issuer hashes, indexed by HashAlg-1.
	issuer IssuerHashes
}

// NewSigner validates cfg and precomputes what every response repeats.
func NewSigner(cfg Config) (*Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signerCert := cfg.Issuer
	if cfg.Responder != nil {
		signerCert = cfg.Responder
	}
	alg, h, err := signatureAlgorithm(cfg.Key.Public())
	if err != nil {
		return nil, err
	}
	s := &Signer{key: cfg.Key, hash: h, sigAlg: []byte(alg)}

	// ResponderID byKey (RFC 6960 §4.2.1): shorter than byName, and
	// stable across a renewed responder certificate with the same key.
	responderKey, err := SubjectPublicKey(signerCert)
	if err != nil {
		return nil, err
	}
	keyHash := sha1.Sum(responderKey)
	s.responderID = der.Element(0xa2, der.Element(der.TagOctetString, keyHash[:]))

	if cfg.Responder != nil {
		s.certs = der.Element(0xa0, der.Element(der.TagSequence, cfg.Responder.Raw))
	}

	if s.issuer, err = HashIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	return s, nil
}

// IssuerHashes returns the issuer's name and key hashes computed with h,
// as a CertID for one of its certificates carries them; nil if h is not
// Valid. The slices are copies.
func (s *Signer) IssuerHashes(h HashAlg) (name, key []byte) {
	if !h.Valid() {
		return nil, nil
	}
	return slices.Clone(s.issuer.Name[h-1]), slices.Clone(s.issuer.Key[h-1])
}

// MatchesIssuer reports whether id's issuer hashes are this Signer's
// issuer's. It does not allocate.
func (s *Signer) MatchesIssuer(id CertID) bool {
	return id.Hash.Valid() &&
		bytes.Equal(id.IssuerNameHash, s.issuer.Name[id.Hash-1]) &&
		bytes.Equal(id.IssuerKeyHash, s.issuer.Key[id.Hash-1])
}

// Sign appends to dst a complete DER OCSPResponse: responseStatus
// successful, a BasicOCSPResponse (id-pkix-ocsp-basic) holding the one
// SingleResponse, ResponderID byKey, producedAt, no extensions (so no
// nonce: RFC 8954 §2.1 lets pre-signed responses omit it), signed by the
// Signer's key, with the delegated responder certificate when there is
// one. Times are GeneralizedTime in UTC with the sub-second part dropped.
//
// On error dst is returned unchanged. rand is passed to the key's Sign.
func (s *Signer) Sign(dst []byte, one Single, producedAt time.Time, rand io.Reader) ([]byte, error) {
	if err := s.check(&one, producedAt); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = s.appendTBSResponseData(dst, &one, producedAt)
	tbsLen := len(dst) - start

	var digest []byte
	switch s.hash {
	case crypto.SHA256:
		d := sha256.Sum256(dst[start:])
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(dst[start:])
		digest = d[:]
	}
	sig, err := s.key.Sign(rand, digest, s.hash)
	if err != nil {
		return dst[:start], fmt.Errorf("ocspcodec: signing response for serial %x: %w", one.ID.Serial, err)
	}

	bitsLen := 1 + len(sig)
	basicLen := tbsLen + len(s.sigAlg) + der.ElementLen(bitsLen) + len(s.certs) // tbsLen counts its header
	prefix := JoinedLen(basicLen, 0) - basicLen
	suffix := len(s.sigAlg) + der.ElementLen(bitsLen) + len(s.certs)

	// Slide tbsResponseData up to make room for the headers before it.
	dst = slices.Grow(dst, prefix+suffix)[:start+prefix+tbsLen]
	copy(dst[start+prefix:], dst[start:start+tbsLen])
	if p := appendResponsePrefix(dst[:start], basicLen); len(p) != start+prefix {
		panic("ocspcodec: internal error: response prefix length")
	}
	dst = append(dst, s.sigAlg...)
	dst = der.AppendHeader(dst, der.TagBitString, bitsLen)
	dst = append(dst, 0) // no unused bits
	dst = append(dst, sig...)
	return append(dst, s.certs...), nil
}

// check validates one and fills in the issuer hashes if they are empty.
func (s *Signer) check(one *Single, producedAt time.Time) error {
	id := &one.ID
	if !id.Hash.Valid() {
		return fmt.Errorf("ocspcodec: CertID hash algorithm %v not supported", id.Hash)
	}
	if len(id.IssuerNameHash) == 0 && len(id.IssuerKeyHash) == 0 {
		id.IssuerNameHash, id.IssuerKeyHash = s.issuer.Name[id.Hash-1], s.issuer.Key[id.Hash-1]
	} else if !s.MatchesIssuer(*id) {
		return errors.New("ocspcodec: CertID issuer hashes are not this Signer's issuer's")
	}
	if len(id.Serial) == 0 || id.Serial[0] == 0 {
		return fmt.Errorf("ocspcodec: serial %x is not a minimal positive integer", id.Serial)
	}
	switch one.Status {
	case status.Good, status.Unknown:
		if !one.RevokedAt.IsZero() || one.Reason != reason.Unspecified {
			return fmt.Errorf("ocspcodec: status %v with a revocation time or reason", one.Status)
		}
	case status.Revoked:
		if err := checkTime("revocation time", one.RevokedAt); err != nil {
			return err
		}
		if !one.Reason.Defined() {
			return fmt.Errorf("ocspcodec: revocation reason %v is not defined by RFC 5280", one.Reason)
		}
	default:
		return fmt.Errorf("ocspcodec: status %v not supported", one.Status)
	}
	for _, t := range []struct {
		what string
		t    time.Time
	}{{"thisUpdate", one.ThisUpdate}, {"nextUpdate", one.NextUpdate}, {"producedAt", producedAt}} {
		if err := checkTime(t.what, t.t); err != nil {
			return err
		}
	}
	if one.NextUpdate.Unix() <= one.ThisUpdate.Unix() {
		return fmt.Errorf("ocspcodec: nextUpdate %v is not after thisUpdate %v", one.NextUpdate, one.ThisUpdate)
	}
	return nil
}

// checkTime refuses times GeneralizedTime cannot carry as four digits.
func checkTime(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("ocspcodec: %s is not set", what)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("ocspcodec: %s %v is outside years 1 to 9999", what, t)
	}
	return nil
}

// appendTBSResponseData appends the DER ResponseData (RFC 6960 §4.2.1)
// holding one SingleResponse. Lengths are computed first so that it is
// written in one pass.
func (s *Signer) appendTBSResponseData(b []byte, one *Single, producedAt time.Time) []byte {
	id := &one.ID
	oid := id.Hash.oid()
	algLen := len(oid) + 2 // OID, NULL
	certIDLen := der.ElementLen(algLen) +
		der.ElementLen(len(id.IssuerNameHash)) +
		der.ElementLen(len(id.IssuerKeyHash)) +
		der.UnsignedIntegerLen(id.Serial)
	revokedLen := 0 // content of [1] IMPLICIT RevokedInfo
	withReason := one.Status == status.Revoked && one.Reason != reason.Unspecified
	if one.Status == status.Revoked {
		revokedLen = der.GeneralizedTimeLen
		if withReason {
			revokedLen += 5 // [0] EXPLICIT ENUMERATED
		}
	}
	singleLen := der.ElementLen(certIDLen) + 2 + revokedLen + der.GeneralizedTimeLen + 2 + der.GeneralizedTimeLen
	responsesLen := der.ElementLen(singleLen)
	dataLen := len(s.responderID) + der.GeneralizedTimeLen + der.ElementLen(responsesLen)

	b = der.AppendHeader(b, der.TagSequence, dataLen) // ResponseData; version v1 is DEFAULT, so absent
	b = append(b, s.responderID...)
	b = der.AppendGeneralizedTime(b, producedAt)
	b = der.AppendHeader(b, der.TagSequence, responsesLen)
	b = der.AppendHeader(b, der.TagSequence, singleLen)
	b = der.AppendHeader(b, der.TagSequence, certIDLen)
	b = der.AppendHeader(b, der.TagSequence, algLen)
	b = append(b, oid...)
	b = append(b, 0x05, 0x00) // NULL parameters, as x/crypto/ocsp and OpenSSL send
	b = der.AppendElement(b, der.TagOctetString, id.IssuerNameHash)
	b = der.AppendElement(b, der.TagOctetString, id.IssuerKeyHash)
	b = der.AppendUnsignedInteger(b, id.Serial) // check has made it minimal and positive
	switch one.Status {
	case status.Good:
		b = append(b, 0x80, 0x00) // [0] IMPLICIT NULL
	case status.Unknown:
		b = append(b, 0x82, 0x00) // [2] IMPLICIT UnknownInfo (NULL)
	case status.Revoked:
		b = append(b, 0xa1, byte(revokedLen)) // [1] IMPLICIT RevokedInfo
		b = der.AppendGeneralizedTime(b, one.RevokedAt)
		if withReason {
			b = append(b, 0xa0, 0x03, 0x0a, 0x01, byte(one.Reason))
		}
	}
	b = der.AppendGeneralizedTime(b, one.ThisUpdate)
	b = append(b, 0xa0, der.GeneralizedTimeLen) // nextUpdate [0] EXPLICIT
	return der.AppendGeneralizedTime(b, one.NextUpdate)
}
