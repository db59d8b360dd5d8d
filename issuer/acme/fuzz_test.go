package acme

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzParseSigned: every ACME request body is untrusted. ParseSigned either
// refuses it with an ACME problem or returns the header fields §6.2
// requires, and Verify on what it returns refuses with a problem or
// yields the payload; nothing panics.
func FuzzParseSigned(f *testing.F) {
	k := ecKey(f, elliptic.P256())
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	jwk := jwkJSON(f, k.Public())
	hdr := `{"alg":"ES256","nonce":"` + testNonce + `","url":"` + testURL + `"`
	for _, b := range [][]byte{
		sign(f, jose.ES256, k, "", nil, `{"termsOfServiceAgreed":true}`),
		sign(f, jose.ES256, k, "https://acme.example/acme/acct/1", nil, ``),
		sign(f, jose.RS256, rk, "https://acme.example/acme/acct/2", nil, `{}`),
		handMade(f, k, hdr+`,"jwk":`+jwk+`}`, `{}`, nil),
		handMade(f, k, hdr+`,"jwk":`+jwk+`,"b64":false,"crit":["b64"]}`, `{}`, nil),
		handMade(f, k, hdr+`,"kid":"x","jwk":`+jwk+`}`, `{}`, nil),
		handMade(f, k, `{"alg":"none","nonce":7,"url":[],"kid":"x"}`, `{}`, nil),
		handMade(f, k, hdr+`,"kid":"x"}`, `{}`, map[string]any{"header": map[string]any{"nonce": "x"}}),
		[]byte(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`),
		[]byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`{"protected":"","payload":"","signature":""}`),
	} {
		f.Add(b)
	}
	verifyWith := &jose.JSONWebKey{Key: k.Public()}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSigned(body)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Type == "" || p.Detail == "" {
				t.Fatalf("ParseSigned: %v is not an ACME problem with a detail", err)
			}
			return
		}
		if (s.JWK == nil) == (s.KeyID == "") {
			t.Fatalf("accepted with jwk %v and kid %q: want exactly one", s.JWK != nil, s.KeyID)
		}
		if s.URL == "" {
			t.Fatal("accepted without a url")
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(s.Nonce); err != nil || s.Nonce == "" {
			t.Fatalf("accepted nonce %q", s.Nonce)
		}
		if !slices.Contains(algorithms(), jose.SignatureAlgorithm(s.Alg)) {
			t.Fatalf("accepted algorithm %q", s.Alg)
		}
		key := verifyWith
		if s.JWK != nil {
			if CheckKey(s.JWK) != nil {
				t.Fatal("accepted an embedded key CheckKey refuses")
			}
			key = s.JWK
		}
		payload, err := s.Verify(key)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Verify: %v is not an ACME problem", err)
			}
			return
		}
		if payload == nil {
			t.Fatal("a verified JWS with a nil payload (POST-as-GET must be empty, not nil)")
		}
	})
}
