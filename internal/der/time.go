package der

import "time"

// Lengths of the time elements this package writes, tag and length
// included: UTCTime YYMMDDHHMMSSZ and GeneralizedTime YYYYMMDDHHMMSSZ.
const (
	UTCTimeLen         = 2 + 13
	GeneralizedTimeLen = 2 + 15
)

// useUTCTime reports whether RFC 5280 §4.1.2.5 puts year in a UTCTime;
// other years take a GeneralizedTime, as in encoding/asn1.
func useUTCTime(year int) bool { return 1950 <= year && year < 2050 }

// TimeLen returns the length of t as an RFC 5280 Time element, and false
// if t's UTC year is outside 0 to 9999, which no Time can carry.
func TimeLen(t time.Time) (n int, ok bool) {
	y := t.UTC().Year()
	switch {
	case y < 0 || y > 9999:
		return 0, false
	case useUTCTime(y):
		return UTCTimeLen, true
	}
	return GeneralizedTimeLen, true
}

// AppendTime appends t as an RFC 5280 Time: in UTC, truncated to the
// second (RFC 5280 §5.1.2.4 and §4.1.2.5.2: no fractional seconds), a
// UTCTime for the years 1950 to 2049 and a GeneralizedTime otherwise.
// TimeLen must have accepted t.
func AppendTime(b []byte, t time.Time) []byte {
	var buf [GeneralizedTimeLen]byte
	return append(b, buf[:PutTime(buf[:], t)]...)
}

// PutTime writes what AppendTime appends into dst, which must have room
// for it, and returns its length. It is for encoders that write by index
// into a slice of known size, which is faster than appending.
func PutTime(dst []byte, t time.Time) int {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	d := dst[2:]
	if useUTCTime(year) {
		dst[0], dst[1] = TagUTCTime, UTCTimeLen-2
	} else {
		dst[0], dst[1] = TagGeneralizedTime, GeneralizedTimeLen-2
		put2(d, year/100)
		d = d[2:]
	}
	_ = d[12] // one bounds check for the rest
	put2(d[0:], year%100)
	put2(d[2:], int(month))
	put2(d[4:], day)
	put2(d[6:], hour)
	put2(d[8:], minute)
	put2(d[10:], sec)
	d[12] = 'Z'
	return 2 + int(dst[1])
}

// AppendGeneralizedTime appends t as a GeneralizedTime, whatever its year:
// in UTC, truncated to the second (RFC 5280 §4.1.2.5.2; RFC 6960 uses
// this form for every time in an OCSP response). t's UTC year must be
// within 0 to 9999.
func AppendGeneralizedTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	var d [GeneralizedTimeLen]byte
	d[0], d[1] = TagGeneralizedTime, GeneralizedTimeLen-2
	put2(d[2:], year/100)
	put2(d[4:], year%100)
	put2(d[6:], int(month))
	put2(d[8:], day)
	put2(d[10:], hour)
	put2(d[12:], minute)
	put2(d[14:], sec)
	d[16] = 'Z'
	return append(b, d[:]...)
}

func put2(dst []byte, v int) { dst[0], dst[1] = byte('0'+v/10), byte('0'+v%10) }
