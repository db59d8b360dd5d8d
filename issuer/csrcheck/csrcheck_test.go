package csrcheck

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheckAccepts(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	tests := []struct {
		name      string
		policy    Policy
		key       crypto.Signer
		tmpl      *x509.CertificateRequest
		wantNames []string
		wantAlg   string
	}{
		{
			name:      "P-256",
			key:       p256,
			tmpl:      dnsTemplate("example.com"),
			wantNames: []string{"example.com"},
			wantAlg:   "ecdsa-p256",
		},
		{
			name:      "P-384",
			key:       ecKey(t, elliptic.P384()),
			tmpl:      dnsTemplate("example.com"),
			wantNames: []string{"example.com"},
			wantAlg:   "ecdsa-p384",
		},
		{
			name:      "P-521 when the policy allows it",
			policy:    Policy{AllowedCurves: []elliptic.Curve{elliptic.P256(), elliptic.P521()}},
			key:       ecKey(t, elliptic.P521()),
			tmpl:      dnsTemplate("example.com"),
			wantNames: []string{"example.com"},
			wantAlg:   "ecdsa-p521",
		},
		{
			name:      "RSA-2048",
			key:       rsa2048(),
			tmpl:      dnsTemplate("example.com"),
			wantNames: []string{"example.com"},
			wantAlg:   "rsa-2048",
		},
		{
			name: "CN not among the SANs is added",
			key:  p256,
			tmpl: &x509.CertificateRequest{
				Subject:  pkix.Name{CommonName: "www.example.com"},
				DNSNames: []string{"example.com"},
			},
			wantNames: []string{"example.com", "www.example.com"},
			wantAlg:   "ecdsa-p256",
		},
		{
			name:      "CN only",
			key:       p256,
			tmpl:      &x509.CertificateRequest{Subject: pkix.Name{CommonName: "example.org"}},
			wantNames: []string{"example.org"},
			wantAlg:   "ecdsa-p256",
		},
		{
			name: "duplicates removed and names sorted",
			key:  p256,
			tmpl: &x509.CertificateRequest{
				Subject:  pkix.Name{CommonName: "b.example.com"},
				DNSNames: []string{"b.example.com", "*.example.com", "a.example.com", "a.example.com"},
			},
			wantNames: []string{"*.example.com", "a.example.com", "b.example.com"},
			wantAlg:   "ecdsa-p256",
		},
		{
			name:      "exactly MaxNames",
			policy:    Policy{MaxNames: 3},
			key:       p256,
			tmpl:      dnsTemplate("a.example.com", "b.example.com", "c.example.com", "c.example.com"),
			wantNames: []string{"a.example.com", "b.example.com", "c.example.com"},
			wantAlg:   "ecdsa-p256",
		},
		{
			name:      "IDNA A-label",
			key:       p256,
			tmpl:      dnsTemplate("xn--bcher-kva.de"),
			wantNames: []string{"xn--bcher-kva.de"},
			wantAlg:   "ecdsa-p256",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.Check(newCSR(t, tt.key, tt.tmpl))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if diff := cmp.Diff(tt.wantNames, got.Names); diff != "" {
				t.Errorf("Names (-want +got):\n%s", diff)
			}
			if got.KeyAlg != tt.wantAlg {
				t.Errorf("KeyAlg = %q, want %q", got.KeyAlg, tt.wantAlg)
			}
			if got.CSR == nil {
				t.Error("CSR is nil")
			}
		})
	}
}

// sanExtension builds a subjectAltName extension from raw GeneralNames.
func sanExtension(t testing.TB, add func(b *cryptobyte.Builder)) pkix.Extension {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, add)
	v, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
}

func TestCheckRefuses(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	valid := newCSR(t, p256, dnsTemplate("example.com"))
	tampered := append([]byte(nil), valid...)
	tampered[len(tampered)-1] ^= 0x01 // last octet of the signature

	otherName := sanExtension(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte("example.com")) })
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
		})
	})
	dirName := sanExtension(t, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		})
	})
	manyNames := make([]string, 101)
	for i := range manyNames {
		manyNames[i] = fmt.Sprintf("h%d.example.com", i)
	}

	tests := []struct {
		name    string
		policy  Policy
		der     func(t *testing.T) []byte
		kind    Kind
		phrases []string
	}{
		{
			name: "empty input",
			der:  func(*testing.T) []byte { return nil },
			kind: BadCSR, phrases: []string{"empty"},
		},
		{
			name: "garbage",
			der:  func(*testing.T) []byte { return []byte("not a CSR") },
			kind: BadCSR, phrases: []string{NotACSR},
		},
		{
			name: "PEM where DER is expected",
			der: func(*testing.T) []byte {
				return []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
			},
			kind: BadCSR, phrases: []string{"PEM"},
		},
		{
			name: "oversized",
			der:  func(*testing.T) []byte { return make([]byte, MaxInputSize+1) },
			kind: BadCSR, phrases: []string{"more than the 65536 allowed"},
		},
		{
			name: "trailing data",
			der:  func(*testing.T) []byte { return append(append([]byte(nil), valid...), 0) },
			kind: BadCSR, phrases: []string{"followed by 1 byte of other data"},
		},
		{
			name: "tampered signature",
			der:  func(*testing.T) []byte { return tampered },
			kind: BadSignature, phrases: []string{"signature does not verify"},
		},
		{
			name: "P-521 by default",
			der:  func(t *testing.T) []byte { return newCSR(t, ecKey(t, elliptic.P521()), dnsTemplate("example.com")) },
			kind: UnsupportedKey, phrases: []string{"P-521", "P-256 or P-384"},
		},
		{
			name: "P-224",
			der:  func(t *testing.T) []byte { return newCSR(t, ecKey(t, elliptic.P224()), dnsTemplate("example.com")) },
			kind: UnsupportedKey, phrases: []string{"P-224"},
		},
		{
			name: "Ed25519",
			der: func(t *testing.T) []byte {
				_, k, err := ed25519.GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return newCSR(t, k, dnsTemplate("example.com"))
			},
			kind: UnsupportedKey, phrases: []string{"Ed25519"},
		},
		{
			name: "RSA-1024",
			der: func(t *testing.T) []byte {
				k, err := rsa.GenerateKey(rand.Reader, 1024)
				if err != nil {
					t.Fatal(err)
				}
				return newCSR(t, k, dnsTemplate("example.com"))
			},
			kind: WeakKey, phrases: []string{"1024 bits", "at least 2048"},
		},
		{
			name:   "RSA-2048 when the policy requires 3072",
			policy: Policy{RSAMinBits: 3072},
			der:    func(t *testing.T) []byte { return newCSR(t, rsa2048(), dnsTemplate("example.com")) },
			kind:   WeakKey, phrases: []string{"2048 bits", "at least 3072"},
		},
		{
			name: "RSA-2048 e=3",
			der:  func(t *testing.T) []byte { return newCSR(t, e3Key(t), dnsTemplate("example.com")) },
			kind: UnsupportedKey, phrases: []string{"exponent is 3", "65537"},
		},
		{
			name: "RSA modulus with a small factor",
			der:  func(t *testing.T) []byte { return newCSR(t, smallFactorKey(t), dnsTemplate("example.com")) },
			kind: WeakKey, phrases: []string{"divisible by 997"},
		},
		{
			name: "RSA primes too close (Fermat)",
			der:  func(t *testing.T) []byte { return newCSR(t, closePrimesKey(t), dnsTemplate("example.com")) },
			kind: WeakKey, phrases: []string{"Fermat", "step 1:"},
		},
		{
			name: "IP SAN",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{DNSNames: []string{"example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}})
			},
			kind: BadName, phrases: []string{"IP address", "only DNS names"},
		},
		{
			name: "email SAN",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{DNSNames: []string{"example.com"}, EmailAddresses: []string{"a@example.com"}})
			},
			kind: BadName, phrases: []string{"email"},
		},
		{
			name: "URI SAN",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{DNSNames: []string{"example.com"}, URIs: []*url.URL{{Scheme: "https", Host: "example.com"}}})
			},
			kind: BadName, phrases: []string{"URI"},
		},
		{
			name: "otherName SAN, which x509 does not parse",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{otherName}})
			},
			kind: BadName, phrases: []string{"otherName"},
		},
		{
			name: "directoryName SAN",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{dirName}})
			},
			kind: BadName, phrases: []string{"directoryName"},
		},
		{
			name: "uppercase SAN",
			der:  func(t *testing.T) []byte { return newCSR(t, p256, dnsTemplate("Example.com")) },
			kind: BadName, phrases: []string{"subjectAltName", `"Example.com"`, "lowercase"},
		},
		{
			name: "uppercase CN",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "WWW.example.com"}, DNSNames: []string{"example.com"}})
			},
			kind: BadName, phrases: []string{"common name", "lowercase"},
		},
		{
			name: "CN that is not a DNS name",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Example Corp"}, DNSNames: []string{"example.com"}})
			},
			kind: BadName, phrases: []string{"common name", `"Example Corp"`},
		},
		{
			name: "two CNs",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{Subject: subjectWithCNs("a.example.com", "b.example.com"), DNSNames: []string{"a.example.com"}})
			},
			kind: BadName, phrases: []string{"2 common names"},
		},
		{
			name: "no names",
			der: func(t *testing.T) []byte {
				return newCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"Example"}}})
			},
			kind: BadName, phrases: []string{"no DNS name"},
		},
		{
			name: "internal name",
			der:  func(t *testing.T) []byte { return newCSR(t, p256, dnsTemplate("example.com", "db.corp")) },
			kind: BadName, phrases: []string{`"db.corp"`, "internal name"},
		},
		{
			name: "too many names",
			der:  func(t *testing.T) []byte { return newCSR(t, p256, dnsTemplate(manyNames...)) },
			kind: TooManyNames, phrases: []string{"101 distinct names", "at most 100"},
		},
		{
			name:   "wildcard when the policy forbids them",
			policy: Policy{ForbidWildcards: true},
			der:    func(t *testing.T) []byte { return newCSR(t, p256, dnsTemplate("example.com", "*.example.com")) },
			kind:   BadName, phrases: []string{`"*.example.com"`, "wildcard"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.Check(tt.der(t))
			if err == nil {
				t.Fatalf("Check accepted: names %v, key %s", got.Names, got.KeyAlg)
			}
			wantRefusal(t, err, tt.kind, tt.phrases...)
		})
	}
}

func TestCheckInvalidPolicyIsNotARefusal(t *testing.T) {
	der := newCSR(t, ecKey(t, elliptic.P256()), dnsTemplate("example.com"))
	_, err := Policy{RSAMinBits: 1024}.Check(der)
	if err == nil {
		t.Fatal("Check with an invalid policy succeeded")
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("invalid policy reported as a refusal (%v): it is the server's fault", e.Kind)
	}
	if !strings.HasPrefix(err.Error(), "csrcheck: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

// TestRefusalsAreBounded checks that a refusal quotes a bounded, escaped
// snippet of hostile input, never the whole of it.
func TestRefusalsAreBounded(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	long := strings.Repeat("a", 5000) + "\x1b[31m.example.com"
	tests := []struct {
		name string
		err  func() error
	}{
		{"CheckName", func() error { return CheckName(long) }},
		{"CN in a CSR", func() error {
			_, err := Policy{}.Check(newCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: long}}))
			return err
		}},
		{"CheckName with control characters", func() error { return CheckName("\x00\x1b[2J.example.com") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v; want *Error", err)
			}
			if len(e.Detail) > 300 {
				t.Errorf("Detail is %d bytes: %.100q…", len(e.Detail), e.Detail)
			}
			if strings.ContainsAny(e.Detail, "\x00\x1b") {
				t.Errorf("Detail carries control characters: %q", e.Detail)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr string // "" for valid
	}{
		{name: "zero value", p: Policy{}},
		{name: "explicit defaults", p: Policy{RSAMinBits: 2048, RSAMaxBits: 4096, AllowedCurves: []elliptic.Curve{elliptic.P256(), elliptic.P384()}, FermatRounds: 100, MaxNames: 100}},
		{name: "P-521 allowed", p: Policy{AllowedCurves: []elliptic.Curve{elliptic.P521()}}},
		{name: "RSA 3072 only", p: Policy{RSAMinBits: 3072, RSAMaxBits: 3072}},
		{name: "RSA below BR minimum", p: Policy{RSAMinBits: 1024}, wantErr: "below 2048"},
		{name: "RSA not multiple of 8", p: Policy{RSAMaxBits: 4097}, wantErr: "multiples of 8"},
		{name: "RSA max below min", p: Policy{RSAMinBits: 3072, RSAMaxBits: 2048}, wantErr: "below RSAMinBits"},
		{name: "RSA min above default max", p: Policy{RSAMinBits: 6144}, wantErr: "below RSAMinBits"},
		{name: "RSA max too large", p: Policy{RSAMaxBits: 16384}, wantErr: "above 8192"},
		{name: "P-224", p: Policy{AllowedCurves: []elliptic.Curve{elliptic.P224()}}, wantErr: "AllowedCurves[0]"},
		{name: "look-alike curve", p: Policy{AllowedCurves: []elliptic.Curve{elliptic.P256(), elliptic.P256().Params()}}, wantErr: "AllowedCurves[1]"},
		{name: "nil curve", p: Policy{AllowedCurves: []elliptic.Curve{nil}}, wantErr: "AllowedCurves[0]"},
		{name: "negative Fermat rounds", p: Policy{FermatRounds: -1}, wantErr: "FermatRounds"},
		{name: "huge Fermat rounds", p: Policy{FermatRounds: 1 << 30}, wantErr: "FermatRounds"},
		{name: "negative MaxNames", p: Policy{MaxNames: -1}, wantErr: "MaxNames"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	got := []string{BadCSR.String(), BadSignature.String(), WeakKey.String(), UnsupportedKey.String(), BadName.String(), TooManyNames.String(), Kind(0).String()}
	want := []string{"badCSR", "badSignature", "weakKey", "unsupportedKey", "badName", "tooManyNames", "kind(0)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Kind strings (-want +got):\n%s", diff)
	}
	if k := KindOf(fmt.Errorf("wrapped: %w", refuse(WeakKey, "x"))); k != WeakKey {
		t.Errorf("KindOf(wrapped WeakKey) = %v", k)
	}
	if k := KindOf(errors.New("other")); k != 0 {
		t.Errorf("KindOf(plain error) = %v, want 0", k)
	}
}

func BenchmarkCheck(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa-2048", rsa2048()},
		{"ecdsa-p256", ecKey(b, elliptic.P256())},
	} {
		der := newCSR(b, bc.key, &x509.CertificateRequest{
			Subject:  pkix.Name{CommonName: "www.example.com"},
			DNSNames: []string{"example.com", "www.example.com", "*.example.net"},
		})
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (Policy{}).Check(der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
