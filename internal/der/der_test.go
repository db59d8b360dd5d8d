package der

import (
	"encoding/asn1"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestHeaderLengths checks the hand-written length fields against
// cryptobyte's at every boundary of the length encoding.
func TestHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<24 - 1, 1 << 24} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			content := make([]byte, n)
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(content) })
			want, err := b.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			got := AppendHeader(nil, TagSequence, n)
			if diff := cmp.Diff(want[:len(want)-n], got); diff != "" {
				t.Errorf("header (-cryptobyte +ours):\n%s", diff)
			}
			if ElementLen(n) != len(want) {
				t.Errorf("ElementLen(%d) = %d, want %d", n, ElementLen(n), len(want))
			}
			if HeaderLen(n) != len(got) {
				t.Errorf("HeaderLen(%d) = %d, want %d", n, HeaderLen(n), len(got))
			}
		})
	}
}

// TestHeaderLengthOutOfRange: a length the header cannot carry in four
// octets must not be written truncated.
func TestHeaderLengthOutOfRange(t *testing.T) {
	var max32 uint32 = math.MaxUint32
	top := int(max32) // a variable, so that this compiles where int has 32 bits
	if got := AppendHeader(nil, TagSequence, top); len(got) != 6 || got[1] != 0x84 {
		t.Errorf("AppendHeader(2³²-1) = %x", got)
	}
	bad := []int{-1}
	if top+1 > 0 { // not where int has 32 bits
		bad = append(bad, top+1)
	}
	for _, n := range bad {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendHeader(%d) did not panic", n)
				}
			}()
			AppendHeader(nil, TagSequence, n)
		})
	}
}

func TestElement(t *testing.T) {
	got := Element(TagSequence, []byte{TagBoolean, 1, 0xff}, nil, Element(TagOctetString))
	want := []byte{0x30, 0x05, 0x01, 0x01, 0xff, 0x04, 0x00}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Element (-want +got):\n%s", diff)
	}
	if cap(got) != len(got) {
		t.Errorf("cap %d, len %d: want one allocation of the exact size", cap(got), len(got))
	}
}

func TestUnsignedInteger(t *testing.T) {
	tests := []struct {
		mag  []byte
		want []byte
	}{
		{nil, []byte{0x02, 0x01, 0x00}},
		{[]byte{0x00}, []byte{0x02, 0x01, 0x00}},
		{[]byte{0x7f}, []byte{0x02, 0x01, 0x7f}},
		{[]byte{0x80}, []byte{0x02, 0x02, 0x00, 0x80}},
		{[]byte{0x8f, 0x00, 0x11}, []byte{0x02, 0x04, 0x00, 0x8f, 0x00, 0x11}},
	}
	for _, tt := range tests {
		got := AppendUnsignedInteger([]byte("head"), tt.mag)
		if diff := cmp.Diff(append([]byte("head"), tt.want...), got); diff != "" {
			t.Errorf("AppendUnsignedInteger(%x) (-want +got):\n%s", tt.mag, diff)
		}
		if n := UnsignedIntegerLen(tt.mag); n != len(tt.want) {
			t.Errorf("UnsignedIntegerLen(%x) = %d, want %d", tt.mag, n, len(tt.want))
		}
	}
}

func TestTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 3, 14, 15, 9, 26, 999_999_999, time.UTC), "\x17\x0d260314150926Z"},
		{time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), "\x17\x0d500101000000Z"},
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), "\x17\x0d491231235959Z"},
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), "\x18\x0f20500101000000Z"},
		{time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), "\x18\x0f19491231235959Z"},
		// Local times are written in UTC, which may change the year.
		{time.Date(2050, 1, 1, 0, 30, 0, 0, time.FixedZone("+1", 3600)), "\x17\x0d491231233000Z"},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), "\x18\x0f00000101000000Z"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "\x18\x0f99991231235959Z"},
	}
	for _, tt := range tests {
		t.Run(tt.t.String(), func(t *testing.T) {
			if got := string(AppendTime(nil, tt.t)); got != tt.want {
				t.Errorf("AppendTime = %q, want %q", got, tt.want)
			}
			if n, ok := TimeLen(tt.t); !ok || n != len(tt.want) {
				t.Errorf("TimeLen = %d, %v; want %d, true", n, ok, len(tt.want))
			}
			buf := make([]byte, GeneralizedTimeLen)
			if n := PutTime(buf, tt.t); string(buf[:n]) != tt.want {
				t.Errorf("PutTime = %q, want %q", buf[:n], tt.want)
			}
		})
	}
	for _, y := range []int{-1, 10000} {
		if n, ok := TimeLen(time.Date(y, 6, 1, 0, 0, 0, 0, time.UTC)); ok {
			t.Errorf("TimeLen(year %d) = %d, true; want false", y, n)
		}
	}
	got := string(AppendGeneralizedTime([]byte("x"), time.Date(2026, 2, 27, 9, 30, 15, 5, time.FixedZone("+1", 3600))))
	if want := "x\x18\x0f20260227083015Z"; got != want {
		t.Errorf("AppendGeneralizedTime = %q, want %q", got, want)
	}
}

// Fuzz tests: the output must be byte for byte what encoding/asn1 writes
// for the same value.

// FuzzElement compares headers and elements with encoding/asn1's OCTET
// STRING and SEQUENCE, for contents of every length up to 2¹⁷ (which
// crosses the one-, two- and three-octet length forms).
func FuzzElement(f *testing.F) {
	for _, n := range []uint32{0, 1, 127, 128, 255, 256, 65535, 65536} {
		f.Add(n, []byte{0xde, 0xad})
	}
	f.Fuzz(func(t *testing.T, n uint32, seed []byte) {
		content := make([]byte, n%(1<<17+1))
		for i := range content {
			if len(seed) > 0 {
				content[i] = seed[i%len(seed)]
			}
		}
		want, err := asn1.Marshal(content) // OCTET STRING
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendElement(nil, TagOctetString, content); !equal(got, want) {
			t.Errorf("OCTET STRING of %d octets: %x…, encoding/asn1 %x…", len(content), head(got), head(want))
		}
		want, err = asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: content})
		if err != nil {
			t.Fatal(err)
		}
		if got := Element(TagSequence, content[:len(content)/2], content[len(content)/2:]); !equal(got, want) {
			t.Errorf("SEQUENCE of %d octets: %x…, encoding/asn1 %x…", len(content), head(got), head(want))
		}
		if ElementLen(len(content)) != len(want) || HeaderLen(len(content)) != len(want)-len(content) {
			t.Errorf("ElementLen(%d) = %d, HeaderLen = %d; encoding/asn1 wrote %d octets",
				len(content), ElementLen(len(content)), HeaderLen(len(content)), len(want))
		}
	})
}

// FuzzUnsignedInteger compares INTEGERs with encoding/asn1's for a
// big.Int of the same magnitude.
func FuzzUnsignedInteger(f *testing.F) {
	for _, s := range [][]byte{nil, {0}, {0x7f}, {0x80}, {0x00, 0x80}, {0xff, 0xff}, make([]byte, 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, mag []byte) {
		v := new(big.Int).SetBytes(mag)
		mag = v.Bytes() // minimal, as the callers guarantee
		want, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendUnsignedInteger(nil, mag); !equal(got, want) {
			t.Errorf("AppendUnsignedInteger(%x) = %x, encoding/asn1 %x", mag, got, want)
		}
		if n := UnsignedIntegerLen(mag); n != len(want) {
			t.Errorf("UnsignedIntegerLen(%x) = %d, encoding/asn1 wrote %d octets", mag, n, len(want))
		}
	})
}

// FuzzTime compares times with encoding/asn1's, which picks UTCTime or
// GeneralizedTime by the same rule, and GeneralizedTime with its
// "generalized" form. encoding/asn1 is given the time in UTC; ours gets it
// in a fuzzed zone, and must convert it.
func FuzzTime(f *testing.F) {
	for _, t := range []time.Time{
		time.Date(2026, 3, 14, 15, 9, 26, 5, time.UTC),
		time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		f.Add(t.Unix(), int64(t.Nanosecond()), int32(0))
		f.Add(t.Unix(), int64(0), int32(-3600))
	}
	lo := time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		if sec < lo || sec > hi {
			sec = lo + int64(uint64(sec)%uint64(hi-lo))
		}
		utc := time.Unix(sec, nsec%1e9).UTC()
		local := utc.In(time.FixedZone("z", int(offset%(24*3600))))

		want, err := asn1.Marshal(utc)
		n, ok := TimeLen(local)
		if ok != (err == nil) {
			t.Fatalf("%v: TimeLen ok %v, encoding/asn1 error %v", utc, ok, err)
		}
		if !ok {
			return
		}
		if got := AppendTime(nil, local); !equal(got, want) || n != len(want) {
			t.Errorf("%v: AppendTime = %q (TimeLen %d), encoding/asn1 %q", utc, got, n, want)
		}
		buf := make([]byte, n)
		if m := PutTime(buf, local); m != n || !equal(buf, want) {
			t.Errorf("%v: PutTime = %q, %d; encoding/asn1 %q", utc, buf, m, want)
		}
		want, err = asn1.MarshalWithParams(utc, "generalized")
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendGeneralizedTime(nil, local); !equal(got, want) || len(got) != GeneralizedTimeLen {
			t.Errorf("%v: AppendGeneralizedTime = %q, encoding/asn1 %q", utc, got, want)
		}
	})
}

func equal(a, b []byte) bool { return string(a) == string(b) }

// head shortens long encodings in failure messages.
func head(b []byte) []byte { return b[:min(len(b), 8)] }
