package shard

import (
	"crypto/rand"
	"testing"

	"github.com/trustline/trustline/internal/serial"
)

func TestForIsStableAndInRange(t *testing.T) {
	s := serial.MustParse("7f0102030405060708090a0b0c0d0e0f10")
	for _, n := range []int{1, 2, 16, 128, Max} {
		got := For(s, n)
		if int(got) >= n {
			t.Errorf("For(_, %d) = %d out of range", n, got)
		}
		if again := For(s, n); again != got {
			t.Errorf("For not deterministic: %d then %d", got, again)
		}
	}
	if got := For(serial.MustParse("05"), 4); got != 1 {
		t.Errorf("For(05, 4) = %d, want 1", got)
	}
}

func TestForSpreads(t *testing.T) {
	const n, draws = 8, 8000
	var counts [n]int
	for i := 0; i < draws; i++ {
		b := make([]byte, 17)
		rand.Read(b)
		b[0] = 0x42
		counts[For(serial.MustParse(hexOf(b)), n)]++
	}
	for i, c := range counts {
		if c < draws/n/2 {
			t.Errorf("shard %d got %d of %d draws", i, c, draws)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestParse(t *testing.T) {
	for _, s := range []string{"0", "7", "4095"} {
		i, err := Parse(s)
		if err != nil || i.String() != s {
			t.Errorf("Parse(%q) = %v, %v", s, i, err)
		}
	}
	for _, s := range []string{"", "-1", "07", "4096", "x", "1.crl"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if ValidCount(0) == nil || ValidCount(Max+1) == nil || ValidCount(16) != nil {
		t.Error("ValidCount wrong")
	}
}
