package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/trustline/trustline/issuer/csrcheck"
)

// TestGarbageCSR: an order whose csr is not a certificate request in any
// form gets a 400 whose detail says so in plain words; the ASN.1 decoder's
// account of the bytes never reaches the subscriber.
func TestGarbageCSR(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csrPEM(t, k, "example.com")

	rng := mrand.New(mrand.NewPCG(5, 6))
	random := make([]byte, 300)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	tests := []struct {
		name   string
		csr    string
		detail string
		exact  bool
	}{
		{name: "plain text", csr: "hello", detail: csrcheck.NotACSR, exact: true},
		{name: "random bytes", csr: string(random), detail: csrcheck.NotACSR, exact: true},
		{name: "random bytes as base64", csr: base64.StdEncoding.EncodeToString(random), detail: csrcheck.NotACSR, exact: true},
		{name: "text starting with a zero", csr: "0123456789", detail: csrcheck.NotACSR, exact: true},
		{name: "PEM around garbage", csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", detail: csrcheck.NotACSR, exact: true},
		{name: "PEM around random bytes", csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: append([]byte{0x30}, random...)})), detail: csrcheck.NotACSR, exact: true},
		{name: "PEM without its END line", csr: strings.Split(good, "-----END")[0], detail: csrcheck.NotACSR + ": no complete PEM block"},
		{name: "a certificate", csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), detail: `PEM block of type "CERTIFICATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": tt.csr, "profile": "dv"})
			detail, _ := out["detail"].(string)
			if code != 400 || !strings.Contains(detail, tt.detail) || (tt.exact && detail != tt.detail) {
				t.Fatalf("POST /api/v1/orders = %d, detail %q; want 400 with %q", code, detail, tt.detail)
			}
			if strings.Contains(detail, "asn1") || strings.Contains(detail, "{") {
				t.Errorf("detail shows the decoder's internals: %q", detail)
			}
		})
	}
}
