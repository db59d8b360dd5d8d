package ocspcache

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

func TestValueRoundTrip(t *testing.T) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, st := range []status.Status{status.Good, status.Revoked, status.Unknown} {
		t.Run(st.String(), func(t *testing.T) {
			e := Entry{DER: []byte{0x30, 0x03, 0x0a, 0x01, 0x00}, Status: st, ThisUpdate: this,
				NextUpdate: this.Add(72 * time.Hour), RefreshAt: this.Add(36 * time.Hour)}
			got, err := decodeValue(string(appendValue(nil, &e)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeValueRefuses(t *testing.T) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	good := Entry{DER: []byte{0x30, 0x00}, Status: status.Good, ThisUpdate: this, NextUpdate: this.Add(time.Hour), RefreshAt: this}
	v := string(appendValue(nil, &good))
	backwards := good
	backwards.NextUpdate = this
	for _, tc := range []struct {
		name string
		v    string
		want error
	}{
		{"empty", "", errValueShort},
		{"header only", v[:valueHeader], errValueShort},
		{"version", "2" + v[1:], errValueVersion},
		{"status", v[:1] + "X" + v[2:], errValueStatus},
		{"times", string(appendValue(nil, &backwards)), errValueTimes},
		{"not DER", v[:valueHeader] + "\x04\x00", errValueDER},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeValue(tc.v); err != tc.want {
				t.Errorf("decodeValue = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecodeValue: values come from a shared Redis, so decoding must
// survive anything, and whatever decodes must re-encode to itself.
func FuzzDecodeValue(f *testing.F) {
	this := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	e := Entry{DER: []byte{0x30, 0x00}, Status: status.Revoked, ThisUpdate: this, NextUpdate: this.Add(time.Hour), RefreshAt: this}
	f.Add(string(appendValue(nil, &e)))
	f.Add("1G")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := decodeValue(v)
		if err != nil {
			return
		}
		if re := string(appendValue(nil, &got)); re != v {
			t.Errorf("re-encoding differs:\n got %q\nwant %q", re, v)
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	for _, s := range []State{{Epoch: "abc", Seq: 0}, {Epoch: "0123abcd", Complete: true, Seq: 1 << 40}} {
		got, err := decodeState(encodeState(s))
		if err != nil || got != s {
			t.Errorf("state %+v round trip: %+v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "v1 a 2 3", "v2 a 1 3", "v1 a 1 x", "v1 a 1"} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%q) succeeded", bad)
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
