package ocspcodec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// getVector's standard base64 holds '+', '/' and '=': "MAD7/+A=".
var getVector = []byte{0x30, 0x00, 0xfb, 0xff, 0xe0}

func TestDecodeGET(t *testing.T) {
	if got := base64.StdEncoding.EncodeToString(getVector); got != "MAD7/+A=" {
		t.Fatalf("test vector encodes as %q", got)
	}
	der := readTestdata(t, "req-sha256-nonce.der")
	std := base64.StdEncoding.EncodeToString(der)
	tests := []struct {
		name string
		uri  string
		want []byte
	}{
		{"standard", "/MAD7/+A=", getVector},
		{"no padding", "/MAD7/+A", getVector},
		{"URL-safe", "/MAD7_-A=", getVector},
		{"URL-safe no padding", "/MAD7_-A", getVector},
		{"mixed alphabets", "/MAD7_+A", getVector},
		{"percent-encoded", "/MAD7%2F%2BA%3D", getVector},
		{"percent-encoded lowercase", "/MAD7%2f%2bA%3d", getVector},
		{"percent-encoded letters", "/%4DAD7/+A=", getVector},
		{"plus as space", "/MAD7/ A=", getVector},
		{"plus as %20", "/MAD7/%20A=", getVector},
		{"double leading slash", "//MAD7/+A=", getVector},
		{"many leading slashes", "////MAD7/+A=", getVector},
		{"query ignored", "/MAD7/+A=?x=1", getVector},
		{"empty query", "/MAD7/+A=?", getVector},
		{"no leading slash", "MAD7/+A=", getVector},
		{"two-pad group", "/MA==", []byte{0x30}},
		{"two-pad group unpadded", "/MA", []byte{0x30}},
		{"real request", "/" + std, der},
		{"real request URL-safe", "/" + base64.RawURLEncoding.EncodeToString(der), der},
		{"real request escaped", "/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std), der},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			got, err := DecodeGET([]byte(tt.uri), prefix)
			if err != nil {
				t.Fatalf("DecodeGET(%q): %v", tt.uri, err)
			}
			if !bytes.HasPrefix(got, []byte("keep")) {
				t.Fatalf("dst prefix lost: %q", got)
			}
			if diff := cmp.Diff(tt.want, got[4:]); diff != "" {
				t.Errorf("DecodeGET(%q) mismatch (-want +got):\n%s", tt.uri, diff)
			}
		})
	}
}

func TestDecodeGETRejects(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want error
	}{
		{"empty", "", errGETEmpty},
		{"slash only", "/", errGETEmpty},
		{"query only", "/?MAD7", errGETEmpty},
		{"padding only", "/==", errGETPadding},
		{"four pads", "/MAD7====", errGETPadding},
		{"three pads", "/MA===", errGETPadding},
		{"one pad where two are needed", "/MA=", errGETPadding},
		{"data after padding", "/MA==MA==", errGETPadding},
		{"single character group", "/MAD7M", errGETLength},
		{"star", "/MAD7*+A=", errGETChar},
		{"dot", "/MAD7.+A=", errGETChar},
		{"fragment", "/MAD7/+A=#x", errGETPadding},
		{"fragment unpadded", "/MAD7/+A#x", errGETChar},
		{"double percent-encoding", "/MAD7/%252BA", errGETChar},
		{"truncated percent", "/MAD7/+A%3", errGETPercent},
		{"bad percent hex", "/MAD7/+A%G0", errGETPercent},
		{"percent-encoded NUL", "/MAD7/+A%00", errGETChar},
		{"percent-encoded query", "/MAD7%3F", errGETChar},
		{"not a SEQUENCE", "/AAAA", errGETNotDER},
		{"slash data after stripped slashes", "//%2Fw==", errGETNotDER},
		{"URL-safe slash first", "/_w", errGETNotDER},
		{"too long", "/" + strings.Repeat("A", MaxGETLen), errGETTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, 2, 64)
			got, err := DecodeGET([]byte(tt.uri), dst)
			if err != tt.want {
				t.Fatalf("DecodeGET(%q) = %x, %v; want %v", tt.uri, got, err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error does not match ErrMalformed")
			}
			if len(got) != 2 {
				t.Errorf("dst changed on error: %x", got)
			}
		})
	}
	t.Run("longest accepted", func(t *testing.T) {
		uri := "/MA" + strings.Repeat("A", MaxGETLen-3)
		if _, err := DecodeGET([]byte(uri), nil); err != nil {
			t.Errorf("DecodeGET of %d octets: %v", len(uri), err)
		}
	})
}

func TestDecodeGETAllocs(t *testing.T) {
	der := readTestdata(t, "req-sha256-nonce.der")
	uri := []byte("/" + strings.NewReplacer("+", "%2B", "/", "%2F").Replace(base64.StdEncoding.EncodeToString(der)))
	dst := make([]byte, 0, len(uri))
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = DecodeGET(uri, dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeGET allocates %v times per run, want 0", allocs)
	}
}

// FuzzDecodeGET checks DecodeGET never panics, and that whatever it
// decodes survives a round trip through standard base64.
func FuzzDecodeGET(f *testing.F) {
	for _, s := range []string{"/MAD7/+A=", "//MAD7_-A", "/MAD7%2F%2bA%3D?x", "/MAD7/ A=", "/MA%3d%3D", "/%", "/MA==MA", ""} {
		f.Add([]byte(s))
	}
	for _, seed := range requestSeeds(f) {
		f.Add([]byte("/" + base64.StdEncoding.EncodeToString(seed)))
	}
	f.Fuzz(func(t *testing.T, uri []byte) {
		got, err := DecodeGET(uri, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if len(got) != 0 {
				t.Fatalf("output %x with error", got)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("DecodeGET(%q) accepted with empty output", uri)
		}
		// The standard form can be longer than an input that left out the
		// padding or the leading slash (both accepted): the round trip
		// takes the first form within MaxGETLen, which the input's own
		// length guarantees.
		var enc string
		for _, e := range []string{"/" + base64.StdEncoding.EncodeToString(got), "/" + base64.RawStdEncoding.EncodeToString(got), base64.RawStdEncoding.EncodeToString(got)} {
			if enc = e; len(e) <= MaxGETLen {
				break
			}
		}
		again, err := DecodeGET([]byte(enc), nil)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("round trip of %q: %x then %x, %v", uri, got, again, err)
		}
		// Where the input is plain standard base64, agree with encoding/base64.
		path, _, _ := bytes.Cut(uri, []byte("?"))
		path = bytes.TrimLeft(path, "/")
		if bytes.IndexFunc(path, func(r rune) bool { return r == '-' || r == '_' || r == '%' || r == ' ' }) < 0 {
			want, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(string(path), "="))
			if err == nil && !bytes.Equal(want, got) {
				t.Fatalf("DecodeGET(%q) = %x, encoding/base64 %x", uri, got, want)
			}
		}
	})
}

func BenchmarkDecodeGET(b *testing.B) {
	der := readTestdata(b, "req-sha256-nonce.der")
	std := base64.StdEncoding.EncodeToString(der)
	for _, bc := range []struct{ name, uri string }{
		{"standard", "/" + std},
		{"percent-encoded", "/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			uri := []byte(bc.uri)
			dst := make([]byte, 0, len(uri))
			b.ReportAllocs()
			b.SetBytes(int64(len(uri)))
			for b.Loop() {
				var err error
				if dst, err = DecodeGET(uri, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
