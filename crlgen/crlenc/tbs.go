package crlenc

// Hand-written DER for the TBSCertList (RFC 5280 §5.1), on internal/der. The
// fixed parts are built with small allocations; the entries, which are the
// whole cost, are written into the output buffer with no allocation.

import (
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/serial"
)

// Context-specific tags of the CRL profile.
const (
	// Constructed [0]: crlExtensions (EXPLICIT), distributionPoint
	// (EXPLICIT, a CHOICE) and fullName (GeneralNames).
	tagContext0 = 0xa0
	// authorityKeyIdentifier keyIdentifier [0] IMPLICIT OCTET STRING.
	tagKeyID = 0x80
	// GeneralName uniformResourceIdentifier [6] IMPLICIT IA5String.
	tagURI = 0x86
)

// Extension OIDs, as the DER of the OBJECT IDENTIFIER (tag and length
// included), and the other fixed encodings.
func oidAuthorityKeyID() []byte { return []byte{0x06, 0x03, 0x55, 0x1d, 0x23} } // 2.5.29.35
func oidCRLNumber() []byte      { return []byte{0x06, 0x03, 0x55, 0x1d, 0x14} } // 2.5.29.20
func oidIDP() []byte            { return []byte{0x06, 0x03, 0x55, 0x1d, 0x1c} } // 2.5.29.28
func derTrue() []byte           { return []byte{der.TagBoolean, 0x01, 0xff} }

// reasonExtLen is the length of an entry's crlEntryExtensions holding only a
// reasonCode: SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED } } }.
const reasonExtLen = 14

func putReasonExt(dst []byte, code byte) {
	copy(dst, []byte{0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, code})
}

// tbsHead is the TBSCertList up to nextUpdate: version v2, signature,
// issuer, thisUpdate, nextUpdate.
func tbsHead(p Params, algID []byte) []byte {
	b := []byte{der.TagInteger, 0x01, 0x01} // v2
	b = append(b, algID...)
	b = append(b, p.Issuer.RawSubject...)
	b = der.AppendTime(b, p.ThisUpdate)
	return der.AppendTime(b, p.NextUpdate)
}

// crlExtensions is the [0] EXPLICIT crlExtensions field, in the order the
// standard library writes them.
func crlExtensions(p Params) []byte {
	aki := der.Element(der.TagSequence, oidAuthorityKeyID(),
		der.Element(der.TagOctetString, der.Element(der.TagSequence, der.Element(tagKeyID, p.Issuer.SubjectKeyId))))
	num := der.Element(der.TagSequence, oidCRLNumber(),
		der.Element(der.TagOctetString, der.AppendUnsignedInteger(nil, p.Number.Bytes())))
	if p.IDPURI == "" {
		return der.Element(tagContext0, der.Element(der.TagSequence, aki, num))
	}
	// IssuingDistributionPoint ::= SEQUENCE {
	//   distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } },
	//   onlyContainsUserCerts [1] IMPLICIT BOOLEAN TRUE }
	idpValue := der.Element(der.TagSequence,
		der.Element(tagContext0, der.Element(tagContext0, der.Element(tagURI, []byte(p.IDPURI)))),
		[]byte{0x81, 0x01, 0xff})
	idp := der.Element(der.TagSequence, oidIDP(), derTrue(), der.Element(der.TagOctetString, idpValue))
	return der.Element(tagContext0, der.Element(der.TagSequence, aki, num, idp))
}

// entryEncoder sizes and writes revokedCertificates entries:
// SEQUENCE { userCertificate INTEGER, revocationDate Time,
// crlEntryExtensions SEQUENCE OF Extension OPTIONAL }.
type entryEncoder struct {
	userOnly   bool  // a subscriber CRL: BR §7.2.2's subscriber reasons only
	thisUpdate int64 // Unix seconds; no revocation may be later
	// hex maps '0'–'9' and 'a'–'f' to their values and every other byte to
	// 0xff. A table rather than comparisons: serial digits are random, so
	// branches on them mispredict, and that was most of the encoding time.
	hex [256]byte
}

func newEntryEncoder(p Params) *entryEncoder {
	enc := &entryEncoder{userOnly: p.IDPURI != "", thisUpdate: p.ThisUpdate.Unix()}
	for c := range enc.hex {
		switch {
		case '0' <= c && c <= '9':
			enc.hex[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			enc.hex[c] = byte(c - 'a' + 10)
		default:
			enc.hex[c] = 0xff
		}
	}
	return enc
}

// size validates e and returns the length of its encoding.
func (enc *entryEncoder) size(e Entry) (int, error) {
	sl, err := enc.serialContentLen(e.Serial)
	if err != nil {
		return 0, err
	}
	if e.RevokedAt.IsZero() {
		return 0, fmt.Errorf("serial %s: revocation time not set", e.Serial)
	}
	if e.RevokedAt.Unix() > enc.thisUpdate {
		// RFC 5280 §5.1.2.6: revocationDate is when the revocation occurred,
		// which thisUpdate must not precede (zlint: e_crl_revocation_time_after_this_update).
		return 0, fmt.Errorf("serial %s: revoked at %s, after thisUpdate %s", e.Serial,
			e.RevokedAt.UTC().Format(time.RFC3339), time.Unix(enc.thisUpdate, 0).UTC().Format(time.RFC3339))
	}
	tl, ok := der.TimeLen(e.RevokedAt)
	if !ok {
		return 0, fmt.Errorf("serial %s: %w", e.Serial, errTimeRange(e.RevokedAt))
	}
	if err := checkReason(e.Reason, enc.userOnly); err != nil {
		return 0, fmt.Errorf("serial %s: %w", e.Serial, err)
	}
	n := der.ElementLen(sl) + tl
	if !e.Reason.OmitOnCRL() {
		n += reasonExtLen
	}
	// At most 23+17+14 = 54 content bytes: always a one-byte length.
	return 2 + n, nil
}

// put writes e, which size has validated, into dst, which has exactly the
// length size returned. Writing by index into a slice of known length is
// markedly faster than appending byte by byte.
func (enc *entryEncoder) put(dst []byte, e Entry) {
	s := e.Serial
	sl := serialContentLenValid(s)
	dst[0], dst[1], dst[2], dst[3] = der.TagSequence, byte(len(dst)-2), der.TagInteger, byte(sl)
	out := dst[4 : 4+sl]
	if sl > len(s)/2 {
		out[0] = 0 // keep the INTEGER positive
		out = out[1:]
	}
	for i := range out {
		out[i] = enc.hex[s[2*i]]<<4 | enc.hex[s[2*i+1]]
	}
	rest := dst[4+sl:]
	rest = rest[der.PutTime(rest, e.RevokedAt):]
	if !e.Reason.OmitOnCRL() {
		putReasonExt(rest, byte(e.Reason))
	}
}

// serialContentLen checks that s is canonical (lowercase hex of 1 to 20
// octets, no leading zero octet) and returns its DER INTEGER content length.
func (enc *entryEncoder) serialContentLen(s serial.Serial) (int, error) {
	n := len(s)
	switch {
	case n == 0:
		return 0, errors.New("empty serial")
	case n%2 != 0 || n > 2*serial.MaxOctets:
		return 0, fmt.Errorf("serial %q: not 1 to %d octets of hex", s, serial.MaxOctets)
	case s[0] == '0' && s[1] == '0':
		return 0, fmt.Errorf("serial %q: zero or leading zero octet", s)
	}
	var bad byte // collects 0xff from any non-digit, without a branch per digit
	for i := 0; i < n; i++ {
		bad |= enc.hex[s[i]]
	}
	if bad > 0x0f {
		return 0, fmt.Errorf("serial %q: not canonical lowercase hex", s)
	}
	return serialContentLenValid(s), nil
}

// serialContentLenValid is serialContentLen for a validated serial.
func serialContentLenValid(s serial.Serial) int {
	n := len(s) / 2
	if s[0] >= '8' { // '8'–'9', 'a'–'f': high bit set
		n++
	}
	return n
}

// errTimeRange is the error for a time der.TimeLen refuses: one whose year
// no DER Time can carry.
func errTimeRange(t time.Time) error {
	return fmt.Errorf("time %s: year out of range", t.UTC().Format(time.RFC3339))
}
