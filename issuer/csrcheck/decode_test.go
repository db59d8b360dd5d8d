package csrcheck

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDecodeThenCheck runs input through the path every caller takes
// (Decode, then Check): a CSR in either form passes, and input that is no
// CSR at all gets NotACSR, never the ASN.1 decoder's structure dump.
func TestDecodeThenCheck(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	der := newCSR(t, key, dnsTemplate("example.com"))
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "example.com"}}, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	random := func(n int, first byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[0] = first
		return b
	}

	tests := []struct {
		name   string
		in     []byte
		phrase string // "" when accepted
		exact  bool   // the Detail is phrase and nothing more
	}{
		{name: "DER", in: der},
		{name: "PEM", in: csrPEM},
		{name: "PEM after openssl req -text", in: append([]byte("Certificate Request:\n    Data:\n        Version: 1 (0x0)\n"), csrPEM...)},
		{name: "PEM with CRLF and surrounding blank lines", in: append(append([]byte("\r\n\r\n"), bytes.ReplaceAll(csrPEM, []byte("\n"), []byte("\r\n"))...), "\r\n"...)},

		{name: "random bytes", in: random(300, 0x9c), phrase: NotACSR, exact: true},
		{name: "random bytes starting like DER", in: random(300, 0x30), phrase: NotACSR, exact: true},
		{name: "a SEQUENCE of garbage", in: append([]byte{0x30, 0x03}, 0x02, 0x01, 0x05), phrase: NotACSR, exact: true},
		{name: "plain text", in: []byte("hello, here is my certificate request"), phrase: NotACSR, exact: true},
		{name: "text starting with 0", in: []byte("0xdeadbeef"), phrase: NotACSR, exact: true},
		{name: "base64 without the PEM lines", in: []byte(strings.Join(strings.Split(string(csrPEM), "\n")[1:5], "\n")), phrase: NotACSR, exact: true},
		{name: "PEM cut short", in: csrPEM[:len(csrPEM)/2], phrase: NotACSR + ": no complete PEM block"},
		{name: "PEM around garbage", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("garbage")}), phrase: NotACSR, exact: true},
		{name: "PEM around random bytes", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: random(200, 0x30)}), phrase: NotACSR, exact: true},

		{name: "CSR-shaped, garbage inside", in: []byte{0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00}, phrase: "the CSR is malformed: its contents do not follow the PKCS #10 structure"},
		{name: "whitespace only", in: []byte(" \n\t"), phrase: "empty"},
		{name: "a certificate in DER", in: certDER, phrase: "a certificate, not a certificate request"},
		{name: "DER with trailing bytes", in: append(append([]byte(nil), der...), "extra"...), phrase: "followed by 5 bytes"},
		{name: "a private key", in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), phrase: "never the private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			var req Request
			if err == nil {
				req, err = Policy{}.Check(got)
			}
			if tt.phrase == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if diff := cmp.Diff([]string{"example.com"}, req.Names); diff != "" {
					t.Errorf("Names (-want +got):\n%s", diff)
				}
				return
			}
			wantRefusal(t, err, BadCSR, tt.phrase)
			if d := err.Error(); tt.exact && d != tt.phrase {
				t.Errorf("Detail = %q, want exactly %q", d, tt.phrase)
			}
			if d := err.Error(); strings.Contains(d, "asn1") || strings.Contains(d, "{") {
				t.Errorf("Detail %q shows the decoder's internals", d)
			}
		})
	}
}
