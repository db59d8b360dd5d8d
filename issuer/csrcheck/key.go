package csrcheck

import (
	"crypto"
	//lint:ignore SA1019 judging untrusted keys needs their raw form; DSA keys are named to refuse them
	"crypto/dsa" // deprecated, imported only to name DSA keys in a refusal
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"sync"

	"github.com/titanous/rocacheck"
)

// CheckPublicKey applies p's key rules to pub: RSA modulus length within
// [RSAMinBits, RSAMaxBits] and a multiple of 8, exponent 65537, no small
// prime factor, not factorable by Fermat's method in FermatRounds steps,
// without the ROCA fingerprint (CVE-2017-15361), not on p.WeakKeys;
// ECDSA on an allowed curve with a valid point. Everything else is refused
// as unsupported. A refusal is an *Error; any other error means p is invalid.
func CheckPublicKey(pub crypto.PublicKey, p Policy) error {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("csrcheck: checking public key: %w", err)
	}
	_, err := p.checkKey(pub)
	return err
}

// checkKey applies the key rules of a defaulted, valid p and names the key.
func (p Policy) checkKey(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return p.checkRSA(k)
	case *ecdsa.PublicKey:
		return p.checkECDSA(k)
	case ed25519.PublicKey:
		return "", refuse(UnsupportedKey, "Ed25519 keys are not accepted; use ECDSA P-256 or P-384, or RSA %d–%d (BR §6.1.5)", p.RSAMinBits, p.RSAMaxBits)
	case *dsa.PublicKey:
		return "", refuse(UnsupportedKey, "DSA keys are not accepted; use ECDSA P-256 or P-384, or RSA (BR §6.1.5)")
	case *ecdh.PublicKey:
		return "", refuse(UnsupportedKey, "key-agreement (ECDH/X25519) keys cannot sign; use ECDSA P-256 or P-384, or RSA (BR §6.1.5)")
	case nil:
		return "", refuse(UnsupportedKey, "the public key algorithm is not recognised; use ECDSA P-256 or P-384, or RSA (BR §6.1.5)")
	default:
		return "", refuse(UnsupportedKey, "%T keys are not accepted; use ECDSA P-256 or P-384, or RSA (BR §6.1.5)", pub)
	}
}

func (p Policy) checkRSA(k *rsa.PublicKey) (string, error) {
	if k.N == nil || k.N.Sign() <= 0 {
		return "", refuse(WeakKey, "the RSA modulus is not a positive number")
	}
	bits := k.N.BitLen()
	switch {
	case bits < p.RSAMinBits:
		return "", refuse(WeakKey, "the RSA key is %d bits; at least %d are required (BR §6.1.5)", bits, p.RSAMinBits)
	case bits > p.RSAMaxBits:
		return "", refuse(UnsupportedKey, "the RSA key is %d bits; at most %d are accepted", bits, p.RSAMaxBits)
	case bits%8 != 0:
		return "", refuse(UnsupportedKey, "the RSA modulus is %d bits, not a multiple of 8 (BR §6.1.5)", bits)
	case k.E != 65537:
		return "", refuse(UnsupportedKey, "the RSA public exponent is %d; only 65537 is accepted", k.E)
	case k.N.Bit(0) == 0:
		return "", refuse(WeakKey, "the RSA modulus is even")
	}
	if f := smallFactor(k.N); f != 0 {
		return "", refuse(WeakKey, "the RSA modulus is divisible by %d", f)
	}
	if r := fermatRound(k.N, p.FermatRounds); r != 0 {
		return "", refuse(WeakKey, "the RSA modulus was factored by Fermat's method at step %d: its two primes are too close together; generate a new key", r)
	}
	if rocacheck.IsWeak(k) {
		// BR §6.1.1.3 names ROCA among the weaknesses a CA must reject.
		return "", refuse(WeakKey, "the RSA key has the fingerprint of keys made by Infineon's flawed key generator (ROCA, CVE-2017-15361), which can be factored; generate a new key with other hardware or software")
	}
	if p.WeakKeys.Has(k) {
		return "", refuse(WeakKey, "the RSA key is on the list of keys made by Debian's broken OpenSSL random number generator (CVE-2008-0166, BR 6.1.1.3), which anyone can regenerate; generate a new key")
	}
	return fmt.Sprintf("rsa-%d", bits), nil
}

func (p Policy) checkECDSA(k *ecdsa.PublicKey) (string, error) {
	alg := curveAlg(k.Curve)
	if alg == "" || !slices.Contains(p.AllowedCurves, k.Curve) {
		return "", refuse(UnsupportedKey, "ECDSA keys on %s are not accepted; use %s", curveName(k.Curve), curveNames(p.AllowedCurves))
	}
	//lint:ignore SA1019 judging untrusted keys needs their raw form; DSA keys are named to refuse them
	if k.X == nil || k.Y == nil {
		return "", refuse(WeakKey, "the ECDSA public key has no point")
	}
	// ECDH runs crypto/ecdh's NewPublicKey, which refuses points off the
	// curve, out-of-range coordinates and the point at infinity.
	if _, err := k.ECDH(); err != nil {
		return "", refuse(WeakKey, "the ECDSA public key is not a valid point on %s", curveName(k.Curve))
	}
	return alg, nil
}

// curveAlg names the standard library's curves that BR §6.1.5 allows; ""
// for any other, including look-alike implementations of the same curve.
func curveAlg(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "ecdsa-p256"
	case elliptic.P384():
		return "ecdsa-p384"
	case elliptic.P521():
		return "ecdsa-p521"
	}
	return ""
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil || c.Params().Name == "" {
		return "an unnamed curve"
	}
	return c.Params().Name
}

func curveNames(cs []elliptic.Curve) string {
	s := ""
	for i, c := range cs {
		switch {
		case i == 0:
		case i == len(cs)-1:
			s += " or "
		default:
			s += ", "
		}
		s += curveName(c)
	}
	return s
}

// smallPrimesProduct is the product of the primes below 1000, computed once
// and never modified: a constant the language cannot spell.
var smallPrimesProduct = sync.OnceValue(func() *big.Int {
	prod := big.NewInt(1)
	for i := int64(2); i < 1000; i++ {
		if big.NewInt(i).ProbablyPrime(0) {
			prod.Mul(prod, big.NewInt(i))
		}
	}
	return prod
})

// smallFactor returns a prime below 1000 dividing n, or 0. One GCD with the
// product tests all 168 primes at the cost of a single division chain.
func smallFactor(n *big.Int) int64 {
	g := new(big.Int).GCD(nil, nil, n, smallPrimesProduct())
	if g.Cmp(big.NewInt(1)) == 0 {
		return 0
	}
	for i := int64(2); i < 1000; i++ {
		if new(big.Int).Mod(g, big.NewInt(i)).Sign() == 0 {
			return i
		}
	}
	return g.Int64() // unreachable: g > 1 divides the product
}

// fermatRound tries Fermat's factorisation of odd n for rounds steps and
// returns the 1-based step at which n = a² − b² = (a−b)(a+b) was found, or 0.
// Keys whose primes share their top half of bits (a broken generator, as in
// CVE-2022-26320) fall in the first steps. It follows Boulder's goodkey
// check, with a = ⌈√n⌉ exactly and b² updated incrementally.
func fermatRound(n *big.Int, rounds int) int {
	one := big.NewInt(1)
	a := new(big.Int).Sqrt(n)
	b2 := new(big.Int).Mul(a, a)
	if b2.Cmp(n) != 0 {
		a.Add(a, one)
		b2.Mul(a, a)
	}
	b2.Sub(b2, n) // b² = a² − n ≥ 0
	b, step := new(big.Int), new(big.Int)
	for round := 1; round <= rounds; round++ {
		if maybeSquare(b2) {
			b.Sqrt(b2)
			if b.Mul(b, b).Cmp(b2) == 0 {
				return round
			}
		}
		// (a+1)² − n = (a² − n) + 2a + 1
		step.Lsh(a, 1).Add(step, one)
		b2.Add(b2, step)
		a.Add(a, one)
	}
	return 0
}

// Bit r of qrN is set when r is a square modulo N.
const (
	qr64 = 0x0202021202030213
	qr63 = 0x0402483012450293
	qr17 = 0x1a317
	qr13 = 0x161b
	qr11 = 0x23b
)

// maybeSquare is a cheap filter before the square root, the residue test of
// GMP's mpz_perfect_square_p: a square is a square modulo 64, 63, 17, 13 and
// 11, which under 1% of other numbers are, so most Fermat steps skip Sqrt.
func maybeSquare(x *big.Int) bool {
	w := x.Bits()
	if len(w) == 0 {
		return true
	}
	if qr64>>(w[0]&63)&1 == 0 {
		return false
	}
	const m = 63 * 17 * 13 * 11
	var r uint64
	for i := len(w) - 1; i >= 0; i-- {
		if bits.UintSize == 64 {
			r = bits.Rem64(r, uint64(w[i]), m)
		} else {
			r = (r<<32 | uint64(w[i])) % m
		}
	}
	return qr63>>(r%63)&1 == 1 && qr17>>(r%17)&1 == 1 && qr13>>(r%13)&1 == 1 && qr11>>(r%11)&1 == 1
}
