// Package der writes the few ASN.1 types Trustline encodes by hand, in the
// Distinguished Encoding Rules of X.690: element headers with a one-octet
// tag and a definite, minimal length (§8.1.2, §8.1.3, §10.1), whole
// elements, non-negative INTEGERs from their big-endian magnitude (§8.3),
// and the Time of RFC 5280 §4.1.2.5 (UTCTime or GeneralizedTime, UTC, whole
// seconds; X.690 §11.7, §11.8). It writes only; to read DER, use
// golang.org/x/crypto/cryptobyte.
//
// It exists because its two users, ocspcodec's Signer and crlenc's
// streaming CRL encoder, compute every length first and then append into
// one buffer (or write by index into a slice of known size) without
// allocating. encoding/asn1 reflects and allocates for every value
// (x509.CreateRevocationList allocates 26 bytes per byte of CRL).
// cryptobyte.Builder, otherwise the right tool, allocates a child builder
// for every nested element and, having reserved one length octet, moves
// the content whenever it is longer than 127 octets. Prototypes of both
// users on cryptobyte (issue #16) measured: the encoding of a
// BasicOCSPResponse 5.7 µs and 26 allocations instead of 0.55 µs and 1,
// about 5 µs more on a P-256 Sign of 26 to 32 µs; a CRL 2 bytes allocated
// per byte of DER instead of 1 with cryptobyte framing entries still
// written by hand, and 16 with cryptobyte writing them too (and ten times
// the time).
//
// It does not validate its input: lengths must be below 2³² (AppendHeader
// panics rather than write a truncated length), and callers check years
// and magnitudes as each function says, so that the checks and their error
// messages stay with the profile that imposes them.
//
// It imports the standard library only, so any package may import it,
// ocspcodec (which the stateless responder imports) included.
package der

// Identifier octets (X.690 §8.1.2) of the universal types Trustline writes.
// Context-specific tags are the profiles' business and stay with them.
const (
	TagBoolean         = 0x01
	TagInteger         = 0x02
	TagBitString       = 0x03
	TagOctetString     = 0x04
	TagEnumerated      = 0x0a
	TagUTCTime         = 0x17
	TagGeneralizedTime = 0x18
	TagSequence        = 0x30 // SEQUENCE and SEQUENCE OF: constructed
)

// HeaderLen returns the length of the identifier and length octets of an
// element with n content octets.
func HeaderLen(n int) int {
	switch u := uint64(n); {
	case u < 0x80:
		return 2
	case u < 0x100:
		return 3
	case u < 0x10000:
		return 4
	case u < 0x1000000:
		return 5
	}
	return 6
}

// ElementLen returns the length of a whole element with n content octets.
func ElementLen(n int) int { return HeaderLen(n) + n }

// AppendHeader appends tag and the length octets of n content octets: one
// octet below 128, else 0x80|k and k big-endian octets, k minimal. It
// panics if n is negative or not below 2³², which no CRL or response
// Trustline writes comes near.
func AppendHeader(b []byte, tag byte, n int) []byte {
	switch u := uint64(n); {
	case u < 0x80:
		return append(b, tag, byte(n))
	case u < 0x100:
		return append(b, tag, 0x81, byte(n))
	case u < 0x10000:
		return append(b, tag, 0x82, byte(n>>8), byte(n))
	case u < 0x1000000:
		return append(b, tag, 0x83, byte(n>>16), byte(n>>8), byte(n))
	case u < 1<<32:
		return append(b, tag, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	panic("der: element length out of range")
}

// AppendElement appends a whole element with the given content.
func AppendElement(b []byte, tag byte, content []byte) []byte {
	return append(AppendHeader(b, tag, len(content)), content...)
}

// Element returns a new element whose content is the concatenation of
// parts, in one allocation of its exact size: for the small fixed parts of
// a structure, and for tests that write DER by hand.
func Element(tag byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := AppendHeader(make([]byte, 0, ElementLen(n)), tag, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// UnsignedIntegerLen returns the length of the INTEGER element that
// AppendUnsignedInteger writes for mag.
func UnsignedIntegerLen(mag []byte) int {
	n := len(mag)
	if n == 0 || mag[0]&0x80 != 0 {
		n++
	}
	return ElementLen(n)
}

// AppendUnsignedInteger appends the INTEGER whose value is the big-endian
// unsigned magnitude mag (as big.Int.Bytes returns it; empty is zero),
// with a zero octet in front when the top bit is set so that the value
// stays positive. mag must not start with a zero octet unless it is that
// one octet: DER integers are minimal (X.690 §8.3.2).
func AppendUnsignedInteger(b []byte, mag []byte) []byte {
	switch {
	case len(mag) == 0:
		return append(b, TagInteger, 1, 0)
	case mag[0]&0x80 != 0:
		b = AppendHeader(b, TagInteger, len(mag)+1)
		b = append(b, 0)
	default:
		b = AppendHeader(b, TagInteger, len(mag))
	}
	return append(b, mag...)
}
