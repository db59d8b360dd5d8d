package csrcheck

import (
	"crypto"
	//lint:ignore SA1019 builds deliberately invalid keys
	"crypto/dsa" // deprecated, used only to show DSA keys are refused
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// oddModulus returns a random odd number of exactly bits bits with no
// prime factor below 1000: enough of an RSA modulus for the key rules,
// without the cost of generating primes.
func oddModulus(t testing.TB, bits int) *big.Int {
	t.Helper()
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		if err != nil {
			t.Fatal(err)
		}
		n.SetBit(n, bits-1, 1)
		n.SetBit(n, 0, 1)
		if smallFactor(n) == 0 {
			return n
		}
	}
}

// withFactor returns a bits-bit number f·m, m free of factors below 1000.
func withFactor(t testing.TB, f int64, bits int) *big.Int {
	t.Helper()
	for {
		n := new(big.Int).Mul(big.NewInt(f), oddModulus(t, bits-big.NewInt(f).BitLen()+1))
		if n.BitLen() == bits {
			return n
		}
	}
}

func TestCheckPublicKey(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	//lint:ignore SA1019 builds deliberately invalid keys
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	//lint:ignore SA1019 builds deliberately invalid keys
	identity := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(0), Y: big.NewInt(0)}
	outOfRange := &ecdsa.PublicKey{Curve: elliptic.P256(),
		//lint:ignore SA1019 builds deliberately invalid keys
		X: new(big.Int).Add(p256.X, elliptic.P256().Params().P), Y: p256.Y}
	//lint:ignore SA1019 builds deliberately invalid keys
	lookAlike := &ecdsa.PublicKey{Curve: elliptic.P256().Params(), X: p256.X, Y: p256.Y}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	even := oddModulus(t, 2048)
	even.SetBit(even, 0, 0)

	tests := []struct {
		name    string
		policy  Policy
		pub     crypto.PublicKey
		kind    Kind // 0: accepted
		phrases []string
	}{
		{name: "RSA-2048", pub: &rsa.PublicKey{N: oddModulus(t, 2048), E: 65537}},
		{name: "RSA-3072", pub: &rsa.PublicKey{N: oddModulus(t, 3072), E: 65537}},
		{name: "RSA-4096", pub: &rsa.PublicKey{N: oddModulus(t, 4096), E: 65537}},
		{name: "RSA-2040", pub: &rsa.PublicKey{N: oddModulus(t, 2040), E: 65537}, kind: WeakKey, phrases: []string{"2040 bits"}},
		{name: "RSA-4104", pub: &rsa.PublicKey{N: oddModulus(t, 4104), E: 65537}, kind: UnsupportedKey, phrases: []string{"at most 4096"}},
		{name: "RSA-3072 above a 2048 maximum", policy: Policy{RSAMaxBits: 2048}, pub: &rsa.PublicKey{N: oddModulus(t, 3072), E: 65537}, kind: UnsupportedKey, phrases: []string{"at most 2048"}},
		{name: "RSA-2049", pub: &rsa.PublicKey{N: oddModulus(t, 2049), E: 65537}, kind: UnsupportedKey, phrases: []string{"multiple of 8"}},
		{name: "RSA e=3", pub: &rsa.PublicKey{N: oddModulus(t, 2048), E: 3}, kind: UnsupportedKey, phrases: []string{"exponent is 3"}},
		{name: "RSA e=65539", pub: &rsa.PublicKey{N: oddModulus(t, 2048), E: 65539}, kind: UnsupportedKey, phrases: []string{"65537"}},
		{name: "RSA even modulus", pub: &rsa.PublicKey{N: even, E: 65537}, kind: WeakKey, phrases: []string{"even"}},
		{name: "RSA nil modulus", pub: &rsa.PublicKey{E: 65537}, kind: WeakKey, phrases: []string{"not a positive"}},
		{name: "RSA modulus with factor 7", pub: &rsa.PublicKey{N: withFactor(t, 7, 2048), E: 65537}, kind: WeakKey, phrases: []string{"divisible by 7"}},
		{name: "P-256", pub: &p256.PublicKey},
		{name: "P-384", pub: &ecKey(t, elliptic.P384()).PublicKey},
		{name: "P-521", pub: &ecKey(t, elliptic.P521()).PublicKey, kind: UnsupportedKey, phrases: []string{"P-521", "use P-256 or P-384"}},
		{name: "P-256 when only P-384 is allowed", policy: Policy{AllowedCurves: []elliptic.Curve{elliptic.P384()}}, pub: &p256.PublicKey, kind: UnsupportedKey, phrases: []string{"use P-384"}},
		{name: "P-256 look-alike curve implementation", pub: lookAlike, kind: UnsupportedKey},
		{name: "point off the curve", pub: offCurve, kind: WeakKey, phrases: []string{"not a valid point on P-256"}},
		{name: "point at infinity", pub: identity, kind: WeakKey, phrases: []string{"not a valid point"}},
		{name: "coordinate out of range", pub: outOfRange, kind: WeakKey, phrases: []string{"not a valid point"}},
		{name: "no point", pub: &ecdsa.PublicKey{Curve: elliptic.P256()}, kind: WeakKey, phrases: []string{"no point"}},
		{name: "Ed25519", pub: edPub, kind: UnsupportedKey, phrases: []string{"Ed25519"}},
		{name: "DSA", pub: &dsa.PublicKey{}, kind: UnsupportedKey, phrases: []string{"DSA"}},
		{name: "X25519", pub: x25519.PublicKey(), kind: UnsupportedKey, phrases: []string{"cannot sign"}},
		{name: "unrecognised algorithm", pub: nil, kind: UnsupportedKey, phrases: []string{"not recognised"}},
		{name: "some other type", pub: "a key", kind: UnsupportedKey, phrases: []string{"string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPublicKey(tt.pub, tt.policy)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("CheckPublicKey: %v", err)
				}
				return
			}
			wantRefusal(t, err, tt.kind, tt.phrases...)
		})
	}
}

func TestCheckPublicKeyInvalidPolicy(t *testing.T) {
	err := CheckPublicKey(&ecKey(t, elliptic.P256()).PublicKey, Policy{FermatRounds: -5})
	if err == nil || KindOf(err) != 0 {
		t.Fatalf("CheckPublicKey with an invalid policy = %v; want a non-refusal error", err)
	}
}

// TestRawRSASigner checks the test helper itself: with an ordinary key its
// CSRs pass, so the refusals of hand-built keys are about the keys.
func TestRawRSASigner(t *testing.T) {
	k := rsa2048()
	s := rawRSAKey(t, k.Primes[0], k.Primes[1], 65537)
	got, err := Policy{}.Check(newCSR(t, s, dnsTemplate("example.com")))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got.KeyAlg != "rsa-2048" {
		t.Errorf("KeyAlg = %q", got.KeyAlg)
	}
}

func TestFermatRound(t *testing.T) {
	tests := []struct {
		name   string
		n      int64
		rounds int
		want   int
	}{
		{name: "twin primes 101·103", n: 101 * 103, rounds: 1, want: 1},
		{name: "perfect square 7·7", n: 49, rounds: 1, want: 1},
		{name: "11·23 needs two steps", n: 11 * 23, rounds: 2, want: 2},
		{name: "11·23 not in one step", n: 11 * 23, rounds: 1, want: 0},
		{name: "prime 10007", n: 10007, rounds: 100, want: 0},
		{name: "prime 10007 splits as 1·10007 eventually", n: 10007, rounds: 5000, want: 5004 - 101 + 1},
		{name: "no rounds", n: 101 * 103, rounds: 0, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fermatRound(big.NewInt(tt.n), tt.rounds); got != tt.want {
				t.Errorf("fermatRound(%d, %d) = %d, want %d", tt.n, tt.rounds, got, tt.want)
			}
		})
	}
}

// TestFermatRoundLaterStep uses 1024-bit primes about 2^516 apart, which
// Fermat's method splits after some tens of steps: the step must be the
// first a that works, and the split must be the real one.
func TestFermatRoundLaterStep(t *testing.T) {
	p := prime(t, 1024, nil)
	q := nextPrime(new(big.Int).Add(p, new(big.Int).Lsh(big.NewInt(1), 516)))
	n := new(big.Int).Mul(p, q)
	r := fermatRound(n, DefaultFermatRounds)
	if r < 2 {
		t.Fatalf("fermatRound = %d; want a later step", r)
	}
	t.Logf("split at step %d", r)
	if got := fermatRound(n, r-1); got != 0 {
		t.Errorf("fermatRound with %d rounds = %d, want 0", r-1, got)
	}
	// a at step r is ⌈√n⌉ + r − 1 and must equal (p+q)/2.
	a := new(big.Int).Sqrt(n)
	a.Add(a, big.NewInt(int64(r))) // n is not a square: ⌈√n⌉ = ⌊√n⌋ + 1
	if want := new(big.Int).Rsh(new(big.Int).Add(p, q), 1); a.Cmp(want) != 0 {
		t.Errorf("step %d has a = %v, want (p+q)/2 = %v", r, a, want)
	}
}

// TestFermatRoundMatchesNaive compares the filtered, incremental search
// with the plain definition on every odd number below 20000.
func TestFermatRoundMatchesNaive(t *testing.T) {
	naive := func(n int64, rounds int) int {
		a := int64(0)
		for a*a < n {
			a++
		}
		for r := 1; r <= rounds; r++ {
			b2 := a*a - n
			b := int64(0)
			for b*b < b2 {
				b++
			}
			if b*b == b2 {
				return r
			}
			a++
		}
		return 0
	}
	for n := int64(1); n < 20000; n += 2 {
		if got, want := fermatRound(big.NewInt(n), 50), naive(n, 50); got != want {
			t.Fatalf("fermatRound(%d) = %d, naive %d", n, got, want)
		}
	}
}

func TestMaybeSquare(t *testing.T) {
	for _, m := range []struct {
		n    uint64
		mask uint64
	}{{64, qr64}, {63, qr63}, {17, qr17}, {13, qr13}, {11, qr11}} {
		var want uint64
		for x := range m.n {
			want |= 1 << (x * x % m.n)
		}
		if m.mask != want {
			t.Errorf("residue mask mod %d = %#x, want %#x", m.n, m.mask, want)
		}
	}
	// No false negatives, on one-word and multi-word numbers.
	for i := int64(0); i < 5000; i++ {
		if sq := big.NewInt(i * i); !maybeSquare(sq) {
			t.Fatalf("maybeSquare(%d²) = false", i)
		}
	}
	passed := 0
	for range 2000 {
		r := oddModulus(t, 1024)
		sq := new(big.Int).Mul(r, r)
		if !maybeSquare(sq) {
			t.Fatalf("maybeSquare(r²) = false for r = %x", r)
		}
		if maybeSquare(oddModulus(t, 2048)) {
			passed++
		}
	}
	// The filter is worth having only if it rejects nearly everything else:
	// random odd numbers pass at 1/4 · 16/63 · 9/17 · 7/13 · 6/11 ≈ 1%.
	if passed > 60 {
		t.Errorf("maybeSquare passed %d of 2000 non-squares", passed)
	}
}

func TestSmallFactor(t *testing.T) {
	primes := 0
	for i := int64(2); i < 1000; i++ {
		if !big.NewInt(i).ProbablyPrime(0) {
			continue
		}
		primes++
		n := new(big.Int).Mul(big.NewInt(i), big.NewInt(1009)) // 1009: the first prime above 1000
		if got := smallFactor(n); got != i {
			t.Errorf("smallFactor(%d·1009) = %d", i, got)
		}
	}
	if primes != 168 {
		t.Errorf("%d primes below 1000, want 168", primes)
	}
	for _, n := range []int64{1, 1009, 1009 * 1013} {
		if got := smallFactor(big.NewInt(n)); got != 0 {
			t.Errorf("smallFactor(%d) = %d, want 0", n, got)
		}
	}
}

func BenchmarkCheckPublicKeyRSA2048(b *testing.B) {
	pub := &rsa2048().PublicKey
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckPublicKey(pub, Policy{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWeakRSA splits the RSA-2048 key check into its two costs.
func BenchmarkWeakRSA(b *testing.B) {
	n := rsa2048().N
	b.Run("smallFactor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			smallFactor(n)
		}
	})
	b.Run("fermat-100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fermatRound(n, DefaultFermatRounds)
		}
	})
}

// rocaPrime returns a prime of bits bits of the form k·M + (65537^a mod M),
// M the product of the small primes ROCA's fingerprint looks at: the
// structure of the primes Infineon's flawed generator made
// (CVE-2017-15361), which the fingerprint recognises in their product.
func rocaPrime(t *testing.T, bits int) *big.Int {
	t.Helper()
	m := big.NewInt(1)
	for _, p := range []int64{11, 13, 17, 19, 37, 53, 61, 71, 73, 79, 97, 103, 107, 109, 127, 151, 157} {
		m.Mul(m, big.NewInt(p))
	}
	// k in [lo, hi): p in [1.5·2^(bits-1), 2^bits), so that the product of
	// two has exactly 2·bits bits.
	lo := new(big.Int).Lsh(big.NewInt(3), uint(bits-2))
	lo.Div(lo, m).Add(lo, big.NewInt(1))
	hi := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	hi.Div(hi, m).Sub(hi, big.NewInt(1))
	span := new(big.Int).Sub(hi, lo)
	for range 100_000 {
		a, _ := rand.Int(rand.Reader, big.NewInt(1<<20))
		base := new(big.Int).Exp(big.NewInt(65537), a, m)
		k, _ := rand.Int(rand.Reader, span)
		k.Add(k, lo)
		p := new(big.Int).Add(new(big.Int).Mul(k, m), base)
		if p.ProbablyPrime(20) {
			return p
		}
	}
	t.Fatal("no ROCA-shaped prime found")
	return nil
}

// TestROCAKeyRefused: BR §6.1.1.3 names ROCA; a key with its fingerprint
// is refused as weak, saying why, while an ordinary key of the same size
// passes.
func TestROCAKeyRefused(t *testing.T) {
	n := new(big.Int).Mul(rocaPrime(t, 1024), rocaPrime(t, 1024))
	if n.BitLen() != 2048 {
		t.Fatalf("modulus of %d bits", n.BitLen())
	}
	err := CheckPublicKey(&rsa.PublicKey{N: n, E: 65537}, Policy{})
	var e *Error
	if !errors.As(err, &e) || e.Kind != WeakKey || !strings.Contains(err.Error(), "ROCA") {
		t.Fatalf("ROCA key: %v, want a weak-key refusal naming ROCA", err)
	}
	good, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPublicKey(&good.PublicKey, Policy{}); err != nil {
		t.Errorf("an ordinary RSA-2048 key: %v", err)
	}
}
