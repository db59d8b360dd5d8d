package csrcheck

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary bytes, DER and PEM, to Decode and Check:
// neither may panic, every refusal must be an *Error with a bounded
// Detail, and whatever is accepted must satisfy the rules Check promises.
// Time is bounded by construction (input ≤ 64 KiB, RSA ≤ 4096 bits and
// 100 Fermat steps); a slow input shows up as a fuzzer hang.
func FuzzCheck(f *testing.F) {
	p256 := ecKey(f, elliptic.P256())
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{
		newCSR(f, p256, dnsTemplate("example.com", "*.example.com")),
		newCSR(f, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "www.example.com"}, IPAddresses: []net.IP{net.IPv4(192, 0, 2, 1)}}),
		newCSR(f, ecKey(f, elliptic.P384()), dnsTemplate("Example.com")),
		newCSR(f, ed, dnsTemplate("example.com")),
		newCSR(f, rsa2048(), dnsTemplate("example.com")),
		{},
		{0x30, 0x80},
		[]byte("hello"),
		{0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00},
	}
	for _, der := range seeds {
		f.Add(der)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		der, err := Decode(in)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		req, err := Policy{}.Check(der)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		switch {
		case req.CSR == nil:
			t.Fatal("accepted without a CSR")
		case len(req.Names) == 0 || len(req.Names) > DefaultMaxNames:
			t.Fatalf("accepted with %d names", len(req.Names))
		case !slices.IsSorted(req.Names) || len(slices.Compact(slices.Clone(req.Names))) != len(req.Names):
			t.Fatalf("names not sorted and unique: %q", req.Names)
		case !strings.HasPrefix(req.KeyAlg, "rsa-") && req.KeyAlg != "ecdsa-p256" && req.KeyAlg != "ecdsa-p384":
			t.Fatalf("accepted key %q", req.KeyAlg)
		}
		for _, n := range req.Names {
			if err := CheckName(n); err != nil {
				t.Fatalf("accepted name %q that CheckName refuses: %v", n, err)
			}
		}
	})
}

func requireRefusal(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is not a refusal: %v (%T)", err, err)
	}
	if e.Kind == 0 || e.Detail == "" || len(e.Detail) > 400 {
		t.Fatalf("refusal of kind %v with a %d-byte Detail: %.200q", e.Kind, len(e.Detail), e.Detail)
	}
	// The ASN.1 decoder's own messages dump Go struct tags at the reader.
	if strings.Contains(e.Detail, "asn1:") || strings.Contains(e.Detail, "{optional") {
		t.Fatalf("refusal shows the decoder's internals: %.200q", e.Detail)
	}
}

// FuzzCheckName: no panic; anything accepted is lowercase, at most 253
// bytes, has at least two labels and passes again unchanged.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{
		"example.com", "*.example.com", "xn--bcher-kva.de", "foo.github.io", "co.uk", "*.co.uk",
		"Example.com", "192.0.2.1", "::1", "foo.local", "a..b", "-a.com", "ab--c.com", "xn--zz.com",
		"*", "*.", ".", "", "foo.onion", "www.ck", "foo.ck", strings.Repeat("a.", 130) + "com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckName(name)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		switch {
		case strings.ToLower(name) != name:
			t.Fatalf("accepted %q, which is not lowercase", name)
		case len(name) > 253:
			t.Fatalf("accepted a %d-byte name", len(name))
		case strings.Count(name, ".") < 1:
			t.Fatalf("accepted single-label %q", name)
		case strings.HasSuffix(name, "."):
			t.Fatalf("accepted %q with a trailing dot", name)
		case strings.Contains(name[1:], "*"):
			t.Fatalf("accepted %q with '*' after the first character", name)
		}
		for i := range len(name) {
			if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '*') {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}
