package ocspcache

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// response returns a response in the shape ocspcodec.SplitCerts splits:
// tag in tbsResponseData, and certs (a [0] element) unless they are nil.
func response(tag string, certs []byte) []byte {
	body := slices.Concat(der.Element(der.TagSequence, []byte(tag)), []byte{0x30, 0x00}, []byte{0x03, 0x01, 0x00})
	return ocspcodec.JoinCerts(nil, body, certs)
}

var responderCerts = der.Element(0xa0, der.Element(der.TagSequence, der.Element(der.TagSequence, []byte("responder certificate"))))

func TestValueRoundTrip(t *testing.T) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		der       []byte
		version   byte
		wantCerts []byte
	}{
		{"unsplittable", []byte{0x30, 0x03, 0x0a, 0x01, 0x00}, valueV1, nil},
		{"delegated", response("tbs", responderCerts), valueV2, responderCerts},
		{"issuer-signed", response("tbs", nil), valueV2, nil},
	} {
		for _, st := range []status.Status{status.Good, status.Revoked, status.Unknown} {
			t.Run(tc.name+"/"+st.String(), func(t *testing.T) {
				e := Entry{DER: tc.der, Status: st, ThisUpdate: this,
					NextUpdate: this.Add(72 * time.Hour), RefreshAt: this.Add(36 * time.Hour)}
				v, certs := appendValue(nil, &e)
				if v[0] != tc.version || !bytes.Equal(certs, tc.wantCerts) {
					t.Fatalf("version %c, certs %x; want %c, %x", v[0], certs, tc.version, tc.wantCerts)
				}
				if tc.version == valueV2 && len(v) >= valueHeader+certsIDLen+len(tc.der) {
					t.Errorf("a split value takes %d bytes for a %d-byte response", len(v), len(tc.der))
				}
				sv, err := decodeValue(string(v))
				if err != nil {
					t.Fatal(err)
				}
				if sv.hasCerts != (certs != nil) || sv.hasCerts && sv.certs != idOf(certs) {
					t.Errorf("decoded certs id %v (has %v), want that of %x", sv.certs, sv.hasCerts, certs)
				}
				if diff := cmp.Diff(e, sv.entry(certs)); diff != "" {
					t.Errorf("round trip (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestDecodeValueRefuses(t *testing.T) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	good := Entry{DER: []byte{0x30, 0x00}, Status: status.Good, ThisUpdate: this, NextUpdate: this.Add(time.Hour), RefreshAt: this}
	v, _ := appendValue(nil, &good)
	split := good
	split.DER = response("x", responderCerts)
	v2, _ := appendValue(nil, &split)
	backwards := good
	backwards.NextUpdate = this
	vb, _ := appendValue(nil, &backwards)
	for _, tc := range []struct {
		name string
		v    string
		want error
	}{
		{"empty", "", errValueShort},
		{"header only", string(v[:valueHeader]), errValueShort},
		{"version 2 header only", string(v2[:valueHeader+certsIDLen]), errValueShort},
		{"version", "3" + string(v[1:]), errValueVersion},
		{"status", string(v[:1]) + "X" + string(v[2:]), errValueStatus},
		{"times", string(vb), errValueTimes},
		{"not DER", string(v[:valueHeader]) + "\x04\x00", errValueDER},
		{"version 2 not DER", string(v2[:valueHeader+certsIDLen]) + "\x04\x00", errValueDER},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeValue(tc.v); err != tc.want {
				t.Errorf("decodeValue = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecodeValue: values come from a shared Redis, so decoding must
// survive anything; whatever decodes yields a response of the length its
// parts make, and a version 1 value re-encodes to itself unless its
// response could have been split.
func FuzzDecodeValue(f *testing.F) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, d := range [][]byte{{0x30, 0x00}, response("t", responderCerts), response("t", nil)} {
		e := Entry{DER: d, Status: status.Revoked, ThisUpdate: this, NextUpdate: this.Add(time.Hour), RefreshAt: this}
		v, _ := appendValue(nil, &e)
		f.Add(string(v))
	}
	f.Add("1G")
	f.Fuzz(func(t *testing.T, v string) {
		sv, err := decodeValue(v)
		if err != nil {
			return
		}
		e := sv.entry(responderCerts)
		want := len(v) - valueHeader
		if sv.split {
			want = ocspcodec.JoinedLen(len(v)-valueHeader-certsIDLen, 0)
			if sv.hasCerts {
				want = ocspcodec.JoinedLen(len(v)-valueHeader-certsIDLen, len(responderCerts))
			}
		}
		if len(e.DER) != want {
			t.Fatalf("entry DER is %d bytes, want %d", len(e.DER), want)
		}
		if _, _, ok := ocspcodec.SplitCerts(e.DER); !sv.split && !ok {
			if re, _ := appendValue(nil, &e); string(re) != v {
				t.Errorf("re-encoding differs:\n got %q\nwant %q", re, v)
			}
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	for _, s := range []State{
		{Epoch: "abc", Seq: 0}, {Epoch: "0123abcd", Complete: true, Seq: 1 << 40},
		{Epoch: "e", Seq: 3, After: "5a01ff"}, {Epoch: "f", Seq: 4, RefreshFloor: 1796000000, After: "5a02"},
	} {
		got, err := decodeState(encodeState(s))
		if err != nil || got != s {
			t.Errorf("state %+v round trip: %+v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "v1 a 2 3", "v2 a 1 3", "v1 a 1 x", "v1 a 1", "v1 a 1 3 5a 6", "v2 a 1 3 5a", "v2 a 1 3 x -", "v2 a 1 3 7", "v1 a 1 3 -"} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%q) succeeded", bad)
		}
	}
	// The v1 form is still read.
	for v, want := range map[string]State{"v1 e 1 7": {Epoch: "e", Complete: true, Seq: 7}, "v1 e 0 7 5a01": {Epoch: "e", Seq: 7, After: "5a01"}} {
		if got, err := decodeState(v); err != nil || got != want {
			t.Errorf("decodeState(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
}

func TestKeys(t *testing.T) {
	k := Key("int-p256", "0badc0de", ocspcodec.SHA256)
	if k != "int-p256:0badc0de:2" {
		t.Errorf("Key = %q", k)
	}
	if got := string(AppendKey(nil, "int-p256", []byte{0x0b, 0xad, 0xc0, 0xde}, ocspcodec.SHA256)); got != k {
		t.Errorf("AppendKey = %q, want %q", got, k)
	}
	if p := prefixOf(k); p != EvictionPrefix("int-p256", "0badc0de") {
		t.Errorf("prefixOf = %q", p)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], "int-p256", []byte{1, 2, 3}, ocspcodec.SHA1) }); n != 0 {
		t.Errorf("AppendKey allocates %v times", n)
	}
}

// FuzzDecodeState: whatever a stored state holds (another process's
// write, a corrupted key), decodeState does not panic, and what it
// accepts re-encodes to a form that decodes to the same State.
func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{"v1 e 1 7", "v1 e 0 7 5a01", "v1 e 0 7 -", "v2 e 0 7 1796000000 5a01", "v2 e 1 7 0 -", "", "v2 a 1 3 x -"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		st, err := decodeState(v)
		if err != nil {
			return
		}
		again, err := decodeState(encodeState(st))
		if err != nil || again != st {
			t.Fatalf("%q decodes to %+v, which re-encodes to %q: %+v, %v", v, st, encodeState(st), again, err)
		}
	})
}
