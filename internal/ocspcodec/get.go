package ocspcodec

import (
	"bytes"
	"slices"
)

// MaxGETLen bounds the raw request target DecodeGET accepts, in octets.
// RFC 9919 §5 has clients use GET only when the base64 request is under
// 255 octets; 4096 leaves room for percent-encoding every character (×3),
// a few CertIDs and a nonce, and is below the request-line limits of the
// servers and CDNs in front of the responder.
const MaxGETLen = 4096

// Reasons for refusing a GET request target.
const (
	errGETTooLong malformed = "ocspcodec: malformed OCSP GET: request target longer than 4096 octets"
	errGETEmpty   malformed = "ocspcodec: malformed OCSP GET: no request in the path"
	errGETPercent malformed = "ocspcodec: malformed OCSP GET: bad percent-encoding"
	errGETChar    malformed = "ocspcodec: malformed OCSP GET: character outside base64"
	errGETPadding malformed = "ocspcodec: malformed OCSP GET: misplaced or excess base64 padding"
	errGETLength  malformed = "ocspcodec: malformed OCSP GET: truncated base64"
	errGETNotDER  malformed = "ocspcodec: malformed OCSP GET: decoded data is not a DER SEQUENCE"
)

// DecodeGET decodes the OCSPRequest carried in the path of a GET request
// (RFC 6960 Appendix A.1: "GET {url}/{url-encoding of base-64 encoding of
// the DER encoding of the OCSPRequest}") and appends its DER to dst.
//
// rawRequestURI is the request target as received, before any server
// normalisation: origin-form, any query is ignored. Because clients,
// proxies and CDNs mangle this path in many ways, DecodeGET accepts:
//   - one or more leading slashes;
//   - the standard and the URL-safe base64 alphabets, even mixed;
//   - missing or partial '=' padding, and trailing bits left non-zero;
//   - percent-encoding of any character, hex digits in either case
//     (%2B, %2F, %3D, %2b, …), decoded once only (%252B is refused);
//   - a '+' that became a space, raw or as %20.
//
// Any other character, data after padding, decoded data not starting with
// a SEQUENCE tag, or a target longer than MaxGETLen is refused with an error matching ErrMalformed; dst is then
// returned unchanged. DecodeGET does not allocate when dst has room for
// the decoded request (3/4 of the path length suffices).
func DecodeGET(rawRequestURI []byte, dst []byte) ([]byte, error) {
	if len(rawRequestURI) > MaxGETLen {
		return dst, errGETTooLong
	}
	p := rawRequestURI
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	for len(p) > 0 && p[0] == '/' {
		p = p[1:] // DER starts with 0x30, so base64 data never starts with '/'
	}
	if len(p) == 0 {
		return dst, errGETEmpty
	}
	start := len(dst)
	out := slices.Grow(dst, len(p)*3/4+2)
	var acc uint32
	var quads, pads int // quads: 6-bit values in acc; pads: '=' seen
	for i := 0; i < len(p); {
		c := p[i]
		i++
		if c == '%' {
			if i+2 > len(p) {
				return dst, errGETPercent
			}
			hi, ok1 := unhex(p[i])
			lo, ok2 := unhex(p[i+1])
			if !ok1 || !ok2 {
				return dst, errGETPercent
			}
			c = hi<<4 | lo
			i += 2
		}
		if c == '=' {
			pads++
			continue
		}
		if pads > 0 {
			return dst, errGETPadding
		}
		v, ok := base64Value(c)
		if !ok {
			return dst, errGETChar
		}
		acc = acc<<6 | uint32(v)
		quads++
		if quads == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, quads = 0, 0
		}
	}
	switch {
	case quads == 1:
		return dst, errGETLength
	case pads > 0 && (quads == 0 || quads+pads != 4):
		return dst, errGETPadding
	case quads == 2:
		out = append(out, byte(acc>>4))
	case quads == 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	if len(out) == start {
		return dst, errGETEmpty
	}
	// An OCSPRequest starts with a SEQUENCE tag. Checking it here also
	// makes stripping leading slashes lossless: data starting with '/'
	// would start with an octet ≥ 0xfc.
	if out[start] != 0x30 {
		return dst, errGETNotDER
	}
	return out, nil
}

// base64Value maps a character of either base64 alphabet (RFC 4648 §4 and
// §5), or a space that was a '+', to its 6-bit value.
func base64Value(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A', true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26, true
	case c >= '0' && c <= '9':
		return c - '0' + 52, true
	case c == '+' || c == '-' || c == ' ':
		return 62, true
	case c == '/' || c == '_':
		return 63, true
	}
	return 0, false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
