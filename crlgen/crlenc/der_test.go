package crlenc

import (
	"fmt"
	"testing"

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
			got := appendHeader(nil, tagSequence, n)
			if diff := cmp.Diff(want[:len(want)-n], got); diff != "" {
				t.Errorf("header (-cryptobyte +ours):\n%s", diff)
			}
			if tlvLen(n) != len(want) {
				t.Errorf("tlvLen(%d) = %d, want %d", n, tlvLen(n), len(want))
			}
		})
	}
}
