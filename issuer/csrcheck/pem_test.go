package csrcheck

import (
	"bytes"
	"crypto/elliptic"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodePEM(t *testing.T) {
	der := newCSR(t, ecKey(t, elliptic.P256()), dnsTemplate("example.com"))
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})
	withHeaders := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der})
	legacy := pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: der})

	tests := []struct {
		name   string
		in     []byte
		phrase string // "" when accepted
	}{
		{name: "one block", in: csrPEM},
		{name: "CRLF line endings", in: bytes.ReplaceAll(csrPEM, []byte("\n"), []byte("\r\n"))},
		{name: "text around the block", in: append(append([]byte("Certificate Request:\n    Data: ...\n"), csrPEM...), "\ntrailing words\n"...)},
		{name: "empty", in: nil, phrase: "no complete PEM block"},
		{name: "DER", in: der, phrase: "no complete PEM block"},
		{name: "two CSRs", in: append(append([]byte(nil), csrPEM...), csrPEM...), phrase: "more than one"},
		{name: "CSR and private key", in: append(append([]byte(nil), csrPEM...), keyPEM...), phrase: "never the private key"},
		{name: "private key only", in: keyPEM, phrase: "private key"},
		{name: "certificate", in: certPEM, phrase: `"CERTIFICATE"`},
		{name: "legacy label", in: legacy, phrase: `"NEW CERTIFICATE REQUEST"`},
		{name: "headers", in: withHeaders, phrase: "headers"},
		{name: "oversized", in: append(bytes.Repeat([]byte(" "), MaxInputSize), csrPEM...), phrase: "more than the 65536 allowed"},
		{name: "truncated", in: csrPEM[:len(csrPEM)/2], phrase: "no complete PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePEM(tt.in)
			if tt.phrase != "" {
				wantRefusal(t, err, BadCSR, tt.phrase)
				return
			}
			if err != nil {
				t.Fatalf("DecodePEM: %v", err)
			}
			if diff := cmp.Diff(der, got); diff != "" {
				t.Errorf("DER (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodePEMThenCheck(t *testing.T) {
	der := newCSR(t, ecKey(t, elliptic.P384()), dnsTemplate("www.example.org", "example.org"))
	in := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	got, err := DecodePEM(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := Policy{}.Check(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"example.org", "www.example.org"}, req.Names); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if strings.Join(req.CSR.DNSNames, ",") != "www.example.org,example.org" {
		t.Errorf("CSR.DNSNames = %v, want the CSR's own order", req.CSR.DNSNames)
	}
}
