package ocspcodec

import (
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/der"
)

// A signed response is mostly the same bytes for every certificate of an
// issuer: the delegated responder certificate in BasicOCSPResponse.certs
// (RFC 6960 §4.2.1) is over half of a P-256 response. The signature covers
// tbsResponseData only, so the certs may be kept once and put back when
// the response is served; the response cache stores responses that way.
// SplitCerts and JoinCerts are the two halves.

// SplitCerts splits resp, a successful id-pkix-ocsp-basic OCSPResponse in
// DER, into body (the BasicOCSPResponse's tbsResponseData,
// signatureAlgorithm and signature elements, as they stand) and certs (its
// [0] EXPLICIT certs element, nil if it has none), such that
// JoinCerts(nil, body, certs) gives resp back byte for byte. ok is false
// for anything else: an error response, another response type, trailing
// data, or a length that is not minimal (DER), since the rejoined
// response would then differ. body and certs alias resp.
func SplitCerts(resp []byte) (body, certs []byte, ok bool) {
	s := cryptobyte.String(resp)
	var outer, status, explicit, rb, oid, octets, basic cryptobyte.String
	if !s.ReadASN1(&outer, cbasn1.SEQUENCE) || !s.Empty() ||
		!outer.ReadASN1(&status, cbasn1.ENUM) || len(status) != 1 || status[0] != 0 ||
		!outer.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !outer.Empty() ||
		!explicit.ReadASN1(&rb, cbasn1.SEQUENCE) || !explicit.Empty() ||
		!rb.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) || string(oid) != oidBasic ||
		!rb.ReadASN1(&octets, cbasn1.OCTET_STRING) || !rb.Empty() ||
		!octets.ReadASN1(&basic, cbasn1.SEQUENCE) || !octets.Empty() {
		return nil, nil, false
	}
	start := basic
	var tbs, alg, sig, c cryptobyte.String
	if !basic.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!basic.ReadASN1Element(&alg, cbasn1.SEQUENCE) ||
		!basic.ReadASN1Element(&sig, cbasn1.BIT_STRING) {
		return nil, nil, false
	}
	body = start[:len(tbs)+len(alg)+len(sig)]
	if !basic.Empty() {
		if !basic.ReadASN1Element(&c, cbasn1.Tag(0).Constructed().ContextSpecific()) || !basic.Empty() {
			return nil, nil, false
		}
		certs = c
	}
	// cryptobyte insists on minimal lengths, so the headers JoinCerts
	// writes are the ones read; the check guards that reasoning.
	if JoinedLen(len(body), len(certs)) != len(resp) {
		return nil, nil, false
	}
	return body, certs, true
}

// JoinedLen is the length of JoinCerts's output for a body and certs of
// these lengths.
func JoinedLen(body, certs int) int {
	outer, _ := responseLens(body + certs)
	return der.ElementLen(outer)
}

// JoinCerts appends to dst the successful id-pkix-ocsp-basic
// OCSPResponse whose BasicOCSPResponse holds body followed by certs (see
// SplitCerts). It does not check them. body may be a string, as a cache
// holds it, so that it is copied once.
func JoinCerts[B ~[]byte | ~string](dst []byte, body B, certs []byte) []byte {
	dst = appendResponsePrefix(dst, len(body)+len(certs))
	dst = append(dst, body...)
	return append(dst, certs...)
}

// responseLens returns the content lengths of the OCSPResponse, of its
// [0] EXPLICIT responseBytes wrapper, of ResponseBytes and of the response
// OCTET STRING around a BasicOCSPResponse of basicLen content octets.
func responseLens(basicLen int) (outer, octets int) {
	octets = der.ElementLen(basicLen)
	return 3 + der.ElementLen(der.ElementLen(len(oidBasic)+der.ElementLen(octets))), octets
}

// appendResponsePrefix appends every header of a successful basic
// OCSPResponse up to and including the BasicOCSPResponse's own, for a
// BasicOCSPResponse of basicLen content octets.
func appendResponsePrefix(dst []byte, basicLen int) []byte {
	outerLen, octetsLen := responseLens(basicLen)
	respBytesLen := len(oidBasic) + der.ElementLen(octetsLen)
	dst = der.AppendHeader(dst, der.TagSequence, outerLen)          // OCSPResponse
	dst = append(dst, der.TagEnumerated, 0x01, 0x00)                // responseStatus successful
	dst = der.AppendHeader(dst, 0xa0, der.ElementLen(respBytesLen)) // [0] EXPLICIT
	dst = der.AppendHeader(dst, der.TagSequence, respBytesLen)      // ResponseBytes
	dst = append(dst, oidBasic...)                                  // responseType
	dst = der.AppendHeader(dst, der.TagOctetString, octetsLen)      // response
	return der.AppendHeader(dst, der.TagSequence, basicLen)         // BasicOCSPResponse
}
