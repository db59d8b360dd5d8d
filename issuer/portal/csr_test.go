package portal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/csrcheck"
)

// TestCSRInputForms sends the Certificates Wizard a CSR in each form a
// subscriber might have, pasted and uploaded: garbage gets one plain
// sentence, never the ASN.1 decoder's account of it, and a good CSR in
// either encoding is issued.
func TestCSRInputForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn(t, e.account(t, "carol@example.com", store.RoleSubscriber))
	acct := e.accountByEmail(t, "carol@example.com")
	b.validate(t, "example.com")

	rng := mrand.New(mrand.NewPCG(3, 4))
	random := make([]byte, 400)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	random[0] = 0xa7
	// A DER CSR whose last byte is white space in ASCII, which trimming
	// the upload used to cut off.
	var trailingSpace []byte
	for range 2000 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if d := csrDER(t, k, "example.com"); bytes.ContainsAny(d[len(d)-1:], " \t\r\n\v\f") {
			trailingSpace = d
			break
		}
	}
	if trailingSpace == nil {
		t.Fatal("no DER CSR ending in a white-space byte in 2000 tries")
	}
	good := csrPEM(t, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der := csrDER(t, k, "example.com")

	const notACSR = "Not a PEM or DER certificate request."
	refused := []struct {
		name   string
		pasted string
		file   []byte
		want   string
	}{
		{name: "pasted text", pasted: "please give me a certificate", want: notACSR},
		{name: "pasted base64 without PEM lines", pasted: strings.Join(strings.Split(good, "\n")[1:4], "\n"), want: notACSR},
		{name: "pasted PEM cut short", pasted: good[:len(good)/2], want: "Not a PEM or DER certificate request: no complete PEM block"},
		{name: "uploaded random bytes", file: random, want: notACSR},
		{name: "uploaded random bytes that start like DER", file: append([]byte{0x30, 0x82, 0x01, 0x00}, random...), want: notACSR},
		{name: "uploaded text", file: []byte("this is not a CSR\n"), want: notACSR},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			p := b.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {tc.pasted}}, tc.file)
			wantStatus(t, tc.name, p, http.StatusBadRequest)
			wantContains(t, tc.name, p, tc.want, `action="/orders"`)
			if strings.Contains(p.body, "asn1") || strings.Contains(p.body, "structure error") {
				t.Errorf("the page shows the decoder's internals:\n%s", excerpt(p.body))
			}
		})
	}
	if n := e.orderCount(t, acct); n != 0 {
		t.Fatalf("%d orders created by garbage", n)
	}

	accepted := []struct {
		name   string
		pasted string
		file   []byte
	}{
		{name: "uploaded DER", file: der},
		{name: "uploaded DER ending in a white-space byte", file: trailingSpace},
		{name: "uploaded PEM", file: []byte(csrPEM(t, "example.com"))},
		{name: "pasted openssl req -text output", pasted: "Certificate Request:\n    Data:\n        Version: 1 (0x0)\n" + csrPEM(t, "example.com")},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			p := b.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {tc.pasted}}, tc.file)
			wantStatus(t, tc.name, p, http.StatusSeeOther)
			wantContains(t, tc.name, b.follow(t, p), "Your certificate is issued")
		})
	}
}

// TestCSRNamesReadsEitherForm: the wizard's name preview reads PEM and DER
// alike, and reports garbage as unparsed rather than guessing.
func TestCSRNamesReadsEitherForm(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der := csrDER(t, k, "www.example.com", "example.com")
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"DER", der, []string{"www.example.com", "example.com"}},
		{"PEM", []byte(csrPEM(t, "example.com")), []string{"example.com"}},
		{"text", []byte("hello"), nil},
		{"random", []byte{0x30, 0x82, 0xff, 0x00, 0x01}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := csrNames(tt.in)
			if ok != (tt.want != nil) || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("csrNames = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
	if _, err := csrcheck.Decode([]byte("hello")); err == nil || err.Error() != csrcheck.NotACSR {
		t.Errorf("csrcheck.Decode(hello) = %v, want %q", err, csrcheck.NotACSR)
	}
}
