package serial

import (
	"errors"
	"math/big"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Serial
		wantErr bool
	}{
		{in: "01", want: "01"},
		{in: "7F00AB", want: "7f00ab"},
		{in: "0a", want: "0a"},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "zz", wantErr: true},
		{in: "00", wantErr: true},
		{in: "0001", wantErr: true},
		{in: "0102030405060708090a0b0c0d0e0f1011121314", want: "0102030405060708090a0b0c0d0e0f1011121314"},
		{in: "0102030405060708090a0b0c0d0e0f101112131415", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if !got.Valid() {
				t.Errorf("%q.Valid() = false", got)
			}
		})
	}
}

func TestBigIntRoundTrip(t *testing.T) {
	n, _ := new(big.Int).SetString("7f0102030405060708090a0b0c0d0e0f10", 16)
	s, err := FromBigInt(n)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "7f0102030405060708090a0b0c0d0e0f10" {
		t.Errorf("String() = %s", s)
	}
	if s.BigInt().Cmp(n) != 0 {
		t.Errorf("BigInt() = %v, want %v", s.BigInt(), n)
	}
	for _, bad := range []*big.Int{nil, big.NewInt(0), big.NewInt(-5)} {
		if _, err := FromBigInt(bad); err == nil {
			t.Errorf("FromBigInt(%v) succeeded", bad)
		}
	}
}

func TestValidRejectsUppercase(t *testing.T) {
	if Serial("0A").Valid() {
		t.Error("uppercase serial reported valid")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"01", "ff", "00", "", "0102"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil || again != s {
			t.Fatalf("canonical form %q does not round-trip: %q, %v", s, again, err)
		}
		if s.BigInt().Sign() <= 0 || len(s.Bytes()) > MaxOctets {
			t.Fatalf("accepted %q out of range", s)
		}
	})
}
