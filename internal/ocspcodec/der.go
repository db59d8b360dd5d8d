package ocspcodec

import "time"

// The few DER encoders the response needs, written out so that encoding
// appends into the caller's buffer without reflection or allocation.

// hdrLen is the length of the tag and length octets of a DER element with
// n octets of content (X.690 §8.1.3, definite form, minimal).
func hdrLen(n int) int {
	switch {
	case n < 0x80:
		return 2
	case n < 0x100:
		return 3
	case n < 0x10000:
		return 4
	case n < 0x1000000:
		return 5
	}
	return 6
}

// appendHdr appends the tag and length octets of an element with n
// octets of content.
func appendHdr(b []byte, tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, tag, byte(n))
	case n < 0x100:
		return append(b, tag, 0x81, byte(n))
	case n < 0x10000:
		return append(b, tag, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, tag, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, tag, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendElement appends a whole element with the given content.
func appendElement(b []byte, tag byte, content []byte) []byte {
	return append(appendHdr(b, tag, len(content)), content...)
}

// genTimeLen is the length of a GeneralizedTime element as appendGenTime
// writes it.
const genTimeLen = 2 + 15

// appendGenTime appends t as a DER GeneralizedTime YYYYMMDDHHMMSSZ (RFC
// 5280 §4.1.2.5.2: UTC, seconds, no fraction). The caller has checked
// that t's UTC year is within 1..9999.
func appendGenTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, 0x18, 15,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10))
	for _, v := range [...]int{int(month), day, hour, minute, sec} {
		b = append(b, byte('0'+v/10), byte('0'+v%10))
	}
	return append(b, 'Z')
}
