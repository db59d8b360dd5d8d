package ocspcodec

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformed is matched (errors.Is) by every error ParseRequest and
// DecodeGET return. The responder answers it with MalformedRequest.
var ErrMalformed = errors.New("ocspcodec: malformed OCSP request")

// malformed is one reason for refusing a request. The reasons are
// constants, so returning one does not allocate, and tests can tell them
// apart; callers only need errors.Is(err, ErrMalformed).
type malformed string

func (m malformed) Error() string        { return string(m) }
func (m malformed) Is(target error) bool { return target == ErrMalformed }

// Reasons for refusing a request. Those marked "stricter" are refused here
// but accepted by golang.org/x/crypto/ocsp.ParseRequest (see the table in
// request_test.go).
const (
	errNotSequence     malformed = "ocspcodec: malformed OCSP request: not a DER SEQUENCE"
	errTrailingData    malformed = "ocspcodec: malformed OCSP request: trailing data after the OCSPRequest"
	errTrailingElement malformed = "ocspcodec: malformed OCSP request: unexpected element in a SEQUENCE" // stricter
	errTBSRequest      malformed = "ocspcodec: malformed OCSP request: bad tbsRequest"
	errVersion         malformed = "ocspcodec: malformed OCSP request: version is not v1"                  // stricter
	errRequestorName   malformed = "ocspcodec: malformed OCSP request: requestorName is not a GeneralName" // stricter
	errRequestList     malformed = "ocspcodec: malformed OCSP request: bad requestList"
	errNoRequests      malformed = "ocspcodec: malformed OCSP request: requestList is empty"
	errCertID          malformed = "ocspcodec: malformed OCSP request: bad CertID"
	errHashAlg         malformed = "ocspcodec: malformed OCSP request: unsupported CertID hash algorithm"
	errHashParams      malformed = "ocspcodec: malformed OCSP request: hash algorithm parameters not absent/NULL"       // stricter
	errHashLength      malformed = "ocspcodec: malformed OCSP request: issuer hash length does not match its algorithm" // stricter
	errSerial          malformed = "ocspcodec: malformed OCSP request: bad serialNumber INTEGER"
	errSerialSign      malformed = "ocspcodec: malformed OCSP request: serialNumber is zero or negative"       // stricter
	errExtensions      malformed = "ocspcodec: malformed OCSP request: bad Extensions"                         // stricter
	errCritical        malformed = "ocspcodec: malformed OCSP request: unrecognised critical extension"        // stricter
	errNonce           malformed = "ocspcodec: malformed OCSP request: nonce is not a DER OCTET STRING"        // stricter
	errNonceSize       malformed = "ocspcodec: malformed OCSP request: nonce is not 1 to 32 octets (RFC 8954)" // stricter
	errNonceTwice      malformed = "ocspcodec: malformed OCSP request: two nonce extensions"                   // stricter
	errSignature       malformed = "ocspcodec: malformed OCSP request: bad optionalSignature"
)

// MaxNonce is the longest nonce RFC 8954 §2.1 lets a responder accept; a
// request carrying a longer (or empty) one must get malformedRequest.
const MaxNonce = 32

// oidNonce is the DER element of id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2.
const oidNonce = "\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x02"

// Context-specific constructed tags [0], [1], [2] (EXPLICIT tagging).
var (
	tagC0 = asn1.Tag(0).Constructed().ContextSpecific()
	tagC1 = asn1.Tag(1).Constructed().ContextSpecific()
	tagC2 = asn1.Tag(2).Constructed().ContextSpecific()
)

// CertID identifies the certificate a request asks about (RFC 6960 §4.1.1).

// When filled by ParseRequest, the slices alias the parsed input: keep the
// input unmodified while the CertID is in use, and copy what must outlive it.
type CertID struct {
	Hash HashAlg
	// IssuerNameHash and IssuerKeyHash are Hash.Size() octets each:
	// the hash of the issuer's DER subject, and of the contents (no tag,
	// length or unused-bits octet) of its subjectPublicKey BIT STRING.
	IssuerNameHash, IssuerKeyHash []byte
	// Serial is the serialNumber as an unsigned, minimal, big-endian
	// integer: the INTEGER content with the 0x00 octet DER puts before a
	// first octet ≥ 0x80 removed, so it is what serial.FromBytes takes and
	// never starts with 0x00. ParseRequest refuses zero and negative
	// serials (first content octet ≥ 0x80, which old CAs produced and RFC
	// 5280 forbids): Trustline issued neither, and keeping their sign would
	// need a field that the responder would only ever compare to refuse.
	// Serial may be longer than the 20 octets RFC 5280 allows; lookups of
	// such serials simply fail.
	Serial []byte
}

// Request is a parsed OCSPRequest. It is fixed-size so that parsing into a
// reused Request does not allocate.
type Request struct {
	// CertIDs holds the first min(N, 4) CertIDs of the requestList in order.
	// RFC 9919 §2.1.1 has clients send exactly one.
	CertIDs [4]CertID
	// N is how many Requests the requestList held (at least 1). All N are
	// parsed and checked, only the first four are kept.
	N int
	// Nonce is the content of the id-pkix-ocsp-nonce request extension
	// (RFC 8954: 1 to 32 octets); it aliases the input. HasNonce reports
	// whether the extension was present.
	Nonce    []byte
	HasNonce bool
	// Signed reports that the request carried an optionalSignature. The
	// signature is checked for shape only, never verified: RFC 9919 §2.1.2
	// lets responders ignore it.
	Signed bool
}

// ParseRequest parses the DER OCSPRequest der (RFC 6960 §4.1.1) into r,
// overwriting all of r. It does not allocate; r's slices alias der.

// It insists on DER (definite minimal lengths, single-octet tags, BOOLEAN
// 0x00/0xFF, no trailing data at any level, no unknown elements in the
// SEQUENCEs), with one tolerance: a version or critical field that encodes
// its DEFAULT value explicitly is accepted, as x/crypto/ocsp accepts it and
// refusing it would only fail a client. Nesting is bounded by the grammar:
// requestorName, the signature algorithm and certificates are checked as
// single TLVs and not descended into.

// Beyond syntax it refuses what no responder could answer: unknown hash
// algorithms (SHA-1/256/384/512 only), issuer hashes of the wrong length,
// hash parameters other than absent or NULL, zero or negative serials,
// nonces outside 1..32 octets or repeated (RFC 8954), and critical
// extensions other than the nonce (RFC 6960 §4.4).

// Every error matches ErrMalformed.
func ParseRequest(der []byte, r *Request) error {
	*r = Request{}
	in := cryptobyte.String(der)
	var ocspReq, tbs cryptobyte.String
	if !in.ReadASN1(&ocspReq, asn1.SEQUENCE) {
		return errNotSequence
	}
	if !in.Empty() {
		return errTrailingData
	}
	if !ocspReq.ReadASN1(&tbs, asn1.SEQUENCE) {
		return errTBSRequest
	}
	if ocspReq.PeekASN1Tag(tagC0) {
		var sig cryptobyte.String
		if !ocspReq.ReadASN1(&sig, tagC0) || !checkSignature(sig) {
			return errSignature
		}
		r.Signed = true
	}
	if !ocspReq.Empty() {
		return errTrailingElement
	}
	return parseTBSRequest(tbs, r)
}

// parseTBSRequest parses the contents of a TBSRequest SEQUENCE.
func parseTBSRequest(tbs cryptobyte.String, r *Request) error {
	if tbs.PeekASN1Tag(tagC0) {
		var v, ver cryptobyte.String
		if !tbs.ReadASN1(&v, tagC0) || !v.ReadASN1(&ver, asn1.INTEGER) || !v.Empty() ||
			len(ver) != 1 || ver[0] != 0 {
			return errVersion
		}
	}
	if tbs.PeekASN1Tag(tagC1) {
		var w, name cryptobyte.String
		var tag asn1.Tag
		if !tbs.ReadASN1(&w, tagC1) || !w.ReadAnyASN1(&name, &tag) || !w.Empty() || !isGeneralNameTag(tag) {
			return errRequestorName
		}
	}
	var list cryptobyte.String
	if !tbs.ReadASN1(&list, asn1.SEQUENCE) {
		return errRequestList
	}
	if list.Empty() {
		return errNoRequests
	}
	for !list.Empty() {
		var one cryptobyte.String
		if !list.ReadASN1(&one, asn1.SEQUENCE) {
			return errRequestList
		}
		var id CertID
		if err := parseOneRequest(one, &id); err != nil {
			return err
		}
		if r.N < len(r.CertIDs) {
			r.CertIDs[r.N] = id
		}
		r.N++
	}
	if tbs.PeekASN1Tag(tagC2) {
		var w cryptobyte.String
		if !tbs.ReadASN1(&w, tagC2) {
			return errExtensions
		}
		if err := parseExtensions(w, r); err != nil {
			return err
		}
	}
	if !tbs.Empty() {
		return errTrailingElement
	}
	return nil
}

// parseOneRequest parses the contents of a Request SEQUENCE: a CertID and
// optional singleRequestExtensions.
func parseOneRequest(one cryptobyte.String, id *CertID) error {
	var certID cryptobyte.String
	if !one.ReadASN1(&certID, asn1.SEQUENCE) {
		return errCertID
	}
	if err := parseCertID(certID, id); err != nil {
		return err
	}
	if one.PeekASN1Tag(tagC0) {
		var w cryptobyte.String
		if !one.ReadASN1(&w, tagC0) {
			return errExtensions
		}
		// A nonce here has no meaning (RFC 8954 puts it in
		// requestExtensions), so it is treated like any other extension.
		if err := parseExtensions(w, nil); err != nil {
			return err
		}
	}
	if !one.Empty() {
		return errTrailingElement
	}
	return nil
}

// parseCertID parses the contents of a CertID SEQUENCE.
func parseCertID(s cryptobyte.String, id *CertID) error {
	var alg, oid cryptobyte.String
	if !s.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1Element(&oid, asn1.OBJECT_IDENTIFIER) {
		return errCertID
	}
	h := hashAlgFromOID(oid)
	if h == 0 {
		return errHashAlg
	}
	// RFC 5754 §2: parameters absent, though NULL must be accepted (and
	// is what most clients send, SHA-1 or not).
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, asn1.NULL) || len(null) != 0 || !alg.Empty() {
			return errHashParams
		}
	}
	var name, key, serial cryptobyte.String
	if !s.ReadASN1(&name, asn1.OCTET_STRING) || !s.ReadASN1(&key, asn1.OCTET_STRING) {
		return errCertID
	}
	if len(name) != h.Size() || len(key) != h.Size() {
		return errHashLength
	}
	if !s.ReadASN1(&serial, asn1.INTEGER) || !minimalInteger(serial) {
		return errSerial
	}
	if serial[0]&0x80 != 0 {
		return errSerialSign
	}
	if serial[0] == 0 {
		serial = serial[1:] // minimal: only the sign pad, or the value zero
	}
	if len(serial) == 0 {
		return errSerialSign
	}
	if !s.Empty() {
		return errTrailingElement
	}
	*id = CertID{Hash: h, IssuerNameHash: name, IssuerKeyHash: key, Serial: serial}
	return nil
}

// minimalInteger reports whether b is the content of a DER INTEGER: not
// empty, and no redundant leading 0x00 or 0xFF octet (X.690 §8.3.2).
func minimalInteger(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
		return false
	}
	return true
}

// parseExtensions parses the contents of an EXPLICIT [n] Extensions
// wrapper. With r non-nil (requestExtensions) the nonce is recorded in r.
func parseExtensions(w cryptobyte.String, r *Request) error {
	var exts cryptobyte.String
	if !w.ReadASN1(&exts, asn1.SEQUENCE) || !w.Empty() || exts.Empty() { // SIZE (1..MAX)
		return errExtensions
	}
	for !exts.Empty() {
		var ext, oid, value cryptobyte.String
		if !exts.ReadASN1(&ext, asn1.SEQUENCE) || !readOID(&ext, &oid) {
			return errExtensions
		}
		critical := false
		if ext.PeekASN1Tag(asn1.BOOLEAN) {
			var b cryptobyte.String
			if !ext.ReadASN1(&b, asn1.BOOLEAN) || len(b) != 1 || b[0] != 0 && b[0] != 0xff {
				return errExtensions
			}
			critical = b[0] == 0xff
		}
		if !ext.ReadASN1(&value, asn1.OCTET_STRING) || !ext.Empty() {
			return errExtensions
		}
		if r != nil && string(oid) == oidNonce {
			if r.HasNonce {
				return errNonceTwice
			}
			// RFC 8954 §2.1: extnValue holds Nonce ::= OCTET STRING (SIZE(1..32)).
			var nonce cryptobyte.String
			if !value.ReadASN1(&nonce, asn1.OCTET_STRING) || !value.Empty() {
				return errNonce
			}
			if len(nonce) == 0 || len(nonce) > MaxNonce {
				return errNonceSize
			}
			r.Nonce, r.HasNonce = nonce, true
			continue
		}
		// RFC 6960 §4.4: unrecognised extensions are ignored unless critical.
		if critical {
			return errCritical
		}
	}
	return nil
}

// readOID reads a DER OBJECT IDENTIFIER element into out, checking its
// content with validOID.
func readOID(s *cryptobyte.String, out *cryptobyte.String) bool {
	if !s.ReadASN1Element(out, asn1.OBJECT_IDENTIFIER) {
		return false
	}
	elem := *out
	var content cryptobyte.String
	return elem.ReadASN1(&content, asn1.OBJECT_IDENTIFIER) && validOID(content)
}

// validOID reports whether b is the content of a DER OBJECT IDENTIFIER:
// not empty, each subidentifier minimal (X.690 §8.19.2) and terminated.
func validOID(b []byte) bool {
	if len(b) == 0 || b[len(b)-1]&0x80 != 0 {
		return false
	}
	start := true
	for _, c := range b {
		if start && c == 0x80 {
			return false
		}
		start = c&0x80 == 0
	}
	return true
}

// isGeneralNameTag reports whether tag can start a GeneralName (RFC 5280
// §4.2.1.6): context-specific [0]..[8], constructed exactly for otherName,
// x400Address, directoryName (EXPLICIT, Name being a CHOICE) and
// ediPartyName.
func isGeneralNameTag(tag asn1.Tag) bool {
	const classMask, constructed = 0xc0, 0x20
	if tag&classMask != 0x80 {
		return false
	}
	n := tag & 0x1f
	switch n {
	case 0, 3, 4, 5:
		return tag&constructed != 0
	case 1, 2, 6, 7, 8:
		return tag&constructed == 0
	}
	return false
}

// checkSignature checks the shape of the contents of optionalSignature
// [0] EXPLICIT Signature (RFC 6960 §4.1.1): an AlgorithmIdentifier, a DER
// BIT STRING, and optionally [0] EXPLICIT SEQUENCE OF Certificate.
func checkSignature(w cryptobyte.String) bool {
	var sig, alg, oid, bits cryptobyte.String
	if !w.ReadASN1(&sig, asn1.SEQUENCE) || !w.Empty() ||
		!sig.ReadASN1(&alg, asn1.SEQUENCE) || !readOID(&alg, &oid) ||
		!sig.ReadASN1(&bits, asn1.BIT_STRING) || !validBitString(bits) {
		return false
	}
	if sig.PeekASN1Tag(tagC0) {
		var cw, certs cryptobyte.String
		if !sig.ReadASN1(&cw, tagC0) || !cw.ReadASN1(&certs, asn1.SEQUENCE) || !cw.Empty() {
			return false
		}
		for !certs.Empty() {
			if !certs.SkipASN1(asn1.SEQUENCE) {
				return false
			}
		}
	}
	return sig.Empty()
}

// validBitString reports whether b is the content of a DER BIT STRING:
// an unused-bits count 0..7 (0 when empty) and those bits zero.
func validBitString(b []byte) bool {
	if len(b) == 0 || b[0] > 7 || len(b) == 1 && b[0] != 0 {
		return false
	}
	return b[len(b)-1]&(1<<b[0]-1) == 0
}
