package csrcheck

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// newCSR signs tmpl with key and returns the DER.
func newCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("creating CSR: %v", err)
	}
	return der
}

// dnsTemplate is a CSR template naming names in the SAN extension only.
func dnsTemplate(names ...string) *x509.CertificateRequest {
	return &x509.CertificateRequest{DNSNames: names}
}

// wantRefusal fails t unless err is an *Error of kind whose Detail
// contains every one of phrases.
func wantRefusal(t *testing.T, err error, kind Kind, phrases ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T); want *Error of kind %v", err, err, kind)
	}
	if e.Kind != kind {
		t.Errorf("Kind = %v (%q); want %v", e.Kind, e.Detail, kind)
	}
	for _, p := range phrases {
		if !strings.Contains(e.Detail, p) {
			t.Errorf("Detail %q does not mention %q", e.Detail, p)
		}
	}
}

// rawRSASigner signs PKCS #1 v1.5 / SHA-256 with textbook arithmetic, so
// that tests can make CSRs with keys crypto/rsa would refuse to use: e = 3,
// a modulus with a small factor, primes too close together.
type rawRSASigner struct {
	pub *rsa.PublicKey
	d   *big.Int
}

func (s rawRSASigner) Public() crypto.PublicKey { return s.pub }

func (s rawRSASigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != sha256.Size {
		return nil, fmt.Errorf("rawRSASigner: only SHA-256, got %v", opts.HashFunc())
	}
	// EMSA-PKCS1-v1_5 (RFC 8017 §9.2) with SHA-256's DigestInfo prefix.
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	k := (s.pub.N.BitLen() + 7) / 8
	em := make([]byte, k)
	em[1] = 0x01
	tLen := len(prefix) + len(digest)
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(digest):], digest)
	sig := new(big.Int).Exp(new(big.Int).SetBytes(em), s.d, s.pub.N)
	return sig.FillBytes(make([]byte, k)), nil
}

// rawRSAKey builds a signer for modulus p·q and exponent e.
func rawRSAKey(t testing.TB, p, q *big.Int, e int) rawRSASigner {
	t.Helper()
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(p, one)
	qm1 := new(big.Int).Sub(q, one)
	g := new(big.Int).GCD(nil, nil, pm1, qm1)
	lambda := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), g)
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), lambda)
	if d == nil {
		t.Fatalf("e = %d is not invertible mod λ(n)", e)
	}
	return rawRSASigner{pub: &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e}, d: d}
}

// prime returns a random prime of bits bits for which keep is true.
func prime(t testing.TB, bits int, keep func(*big.Int) bool) *big.Int {
	t.Helper()
	for {
		p, err := rand.Prime(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		if keep == nil || keep(p) {
			return p
		}
	}
}

func nextPrime(x *big.Int) *big.Int {
	p := new(big.Int).Set(x)
	p.SetBit(p, 0, 1)
	for !p.ProbablyPrime(20) {
		p.Add(p, big.NewInt(2))
	}
	return p
}

// coprimeTo65537 keeps primes p with gcd(65537, p−1) = 1.
func coprimeTo65537(p *big.Int) bool {
	return new(big.Int).Mod(new(big.Int).Sub(p, big.NewInt(1)), big.NewInt(65537)).Sign() != 0
}

// e3Key is a 2048-bit RSA key with public exponent 3.
func e3Key(t testing.TB) rawRSASigner {
	keep := func(p *big.Int) bool { return new(big.Int).Mod(p, big.NewInt(3)).Int64() == 2 }
	return rawRSAKey(t, prime(t, 1024, keep), prime(t, 1024, keep), 3)
}

// smallFactorKey is a 2048-bit modulus 997·Q with Q prime.
func smallFactorKey(t testing.TB) rawRSASigner {
	for {
		q := prime(t, 2038, coprimeTo65537)
		k := rawRSAKey(t, big.NewInt(997), q, 65537)
		if k.pub.N.BitLen() == 2048 {
			return k
		}
	}
}

// closePrimesKey is a 2048-bit modulus whose primes differ by about 2^500:
// Fermat's method splits it in its first step.
func closePrimesKey(t testing.TB) rawRSASigner {
	p := prime(t, 1024, coprimeTo65537)
	for d := new(big.Int).Lsh(big.NewInt(1), 500); ; d.Add(d, big.NewInt(2)) {
		q := nextPrime(new(big.Int).Add(p, d))
		if coprimeTo65537(q) {
			return rawRSAKey(t, p, q, 65537)
		}
		d.Sub(q, p)
	}
}

// rsa2048 is generated once per test binary: the slowest fixture.
var rsa2048 = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// subjectWithCNs returns a subject carrying the common names given.
func subjectWithCNs(cns ...string) pkix.Name {
	var n pkix.Name
	for _, cn := range cns {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: []int{2, 5, 4, 3}, Value: cn})
	}
	return n
}
