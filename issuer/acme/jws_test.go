package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

const testURL = "https://acme.example/acme/new-order"

// testNonce is a well-formed nonce; ParseSigned checks only its form.
var testNonce = base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))

// sign makes a flattened JWS the way ACME clients do, with go-jose.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, kid string, extra map[jose.HeaderKey]any, payload string) []byte {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"nonce": testNonce, "url": testURL}}
	for k, v := range extra {
		opts.ExtraHeaders[k] = v
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	} else {
		opts.EmbedJWK = true
	}
	s, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(obj.FullSerialize())
}

// handMade signs protected (JSON) and payload with an ES256 key and
// returns the flattened JWS with extra members merged in, for the forms
// no JOSE library would produce.
func handMade(t testing.TB, key *ecdsa.PrivateKey, protected, payload string, members map[string]any) []byte {
	t.Helper()
	p := base64.RawURLEncoding.EncodeToString([]byte(protected))
	pl := base64.RawURLEncoding.EncodeToString([]byte(payload))
	d := sha256.Sum256([]byte(p + "." + pl))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	m := map[string]any{"protected": p, "payload": pl, "signature": base64.RawURLEncoding.EncodeToString(sig)}
	for k, v := range members {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwkJSON(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wantProblem(t *testing.T, err error, typ ProblemType) *Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v, want a %s problem", err, typ)
	}
	if p.Type != typ {
		t.Fatalf("problem %s (%s), want %s", p.Type, p.Detail, typ)
	}
	return p
}

func TestParseSignedAccepts(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	ec384 := ecKey(t, elliptic.P384())
	ec521 := ecKey(t, elliptic.P521())
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		alg     jose.SignatureAlgorithm
		key     crypto.Signer
		kid     string
		payload string
	}{
		{"ES256 jwk", jose.ES256, ec, "", `{"termsOfServiceAgreed":true}`},
		{"ES384 kid", jose.ES384, ec384, "https://acme.example/acme/acct/1", `{}`},
		{"ES512 jwk", jose.ES512, ec521, "", `{}`},
		{"RS256 kid", jose.RS256, rk, "https://acme.example/acme/acct/2", `{"status":"deactivated"}`},
		{"EdDSA jwk", jose.EdDSA, ed, "", `{}`},
		{"POST-as-GET", jose.ES256, ec, "https://acme.example/acme/acct/1", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSigned(sign(t, tc.alg, tc.key, tc.kid, nil, tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg != string(tc.alg) || s.Nonce != testNonce || s.URL != testURL || s.KeyID != tc.kid || (s.JWK == nil) != (tc.kid != "") {
				t.Fatalf("header alg %q nonce %q url %q kid %q jwk %v", s.Alg, s.Nonce, s.URL, s.KeyID, s.JWK != nil)
			}
			if err := s.CheckURL(testURL); err != nil {
				t.Fatal(err)
			}
			wantProblem(t, s.CheckURL("https://acme.example/acme/new-account"), Unauthorized)
			key := &jose.JSONWebKey{Key: tc.key.Public()}
			if s.JWK != nil {
				key = s.JWK
			}
			payload, err := s.Verify(key)
			if err != nil {
				t.Fatal(err)
			}
			if string(payload) != tc.payload || payload == nil {
				t.Fatalf("payload %q, want %q", payload, tc.payload)
			}
			// Another key of the same type does not verify it.
			other := &jose.JSONWebKey{Key: ecKey(t, elliptic.P256()).Public()}
			if tc.alg == jose.ES256 {
				wantProblem(t, func() error { _, err := s.Verify(other); return err }(), Malformed)
			} else {
				wantProblem(t, func() error { _, err := s.Verify(other); return err }(), BadSignatureAlgorithm)
			}
		})
	}
}

func TestParseSignedRefuses(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	jwk := jwkJSON(t, k.Public())
	priv, err := json.Marshal(jose.JSONWebKey{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224 := ecKey(t, elliptic.P224())
	hdr := func(fields string) string {
		return `{"alg":"ES256","nonce":"` + testNonce + `","url":"` + testURL + `"` + fields + `}`
	}
	good := handMade(t, k, hdr(`,"jwk":`+jwk), `{}`, nil)
	if _, err := ParseSigned(good); err != nil {
		t.Fatalf("the hand-made JWS is refused: %v", err)
	}
	compact := func() []byte {
		var f map[string]string
		json.Unmarshal(good, &f)
		return []byte(f["protected"] + "." + f["payload"] + "." + f["signature"])
	}()
	for _, tc := range []struct {
		name string
		body []byte
		want ProblemType
	}{
		{"empty", nil, Malformed},
		{"not JSON", []byte("hello"), Malformed},
		{"compact serialization", compact, Malformed},
		{"two JSON values", append(append([]byte{}, good...), good...), Malformed},
		{"general serialization", []byte(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`), Malformed},
		{"unprotected header", handMade(t, k, hdr(`,"jwk":`+jwk), `{}`, map[string]any{"header": map[string]any{"kid": "x"}}), Malformed},
		{"no signature", handMade(t, k, hdr(`,"jwk":`+jwk), `{}`, map[string]any{"signature": nil}), Malformed},
		{"no payload (detached)", handMade(t, k, hdr(`,"jwk":`+jwk), `{}`, map[string]any{"payload": nil}), Malformed},
		{"protected not base64url", handMade(t, k, hdr(`,"jwk":`+jwk), `{}`, map[string]any{"protected": "e30="}), Malformed},
		{"protected not an object", handMade(t, k, `[]`, `{}`, nil), Malformed},
		{"unencoded payload", handMade(t, k, hdr(`,"jwk":`+jwk+`,"b64":false,"crit":["b64"]`), `{}`, nil), Malformed},
		{"crit", handMade(t, k, hdr(`,"jwk":`+jwk+`,"crit":["exp"],"exp":1`), `{}`, nil), Malformed},
		{"alg none", handMade(t, k, `{"alg":"none","nonce":"`+testNonce+`","url":"`+testURL+`","jwk":`+jwk+`}`, `{}`, nil), BadSignatureAlgorithm},
		{"alg HS256", handMade(t, k, `{"alg":"HS256","nonce":"`+testNonce+`","url":"`+testURL+`","kid":"x"}`, `{}`, nil), BadSignatureAlgorithm},
		{"alg missing", handMade(t, k, `{"nonce":"`+testNonce+`","url":"`+testURL+`","jwk":`+jwk+`}`, `{}`, nil), BadSignatureAlgorithm},
		{"jwk and kid", handMade(t, k, hdr(`,"jwk":`+jwk+`,"kid":"https://acme.example/acme/acct/1"`), `{}`, nil), Malformed},
		{"neither jwk nor kid", handMade(t, k, hdr(``), `{}`, nil), Malformed},
		{"kid not a string", handMade(t, k, hdr(`,"kid":1`), `{}`, nil), Malformed},
		{"no url", handMade(t, k, `{"alg":"ES256","nonce":"`+testNonce+`","jwk":`+jwk+`}`, `{}`, nil), Malformed},
		{"url not a string", handMade(t, k, `{"alg":"ES256","nonce":"`+testNonce+`","url":["`+testURL+`"],"jwk":`+jwk+`}`, `{}`, nil), Malformed},
		{"no nonce", handMade(t, k, `{"alg":"ES256","url":"`+testURL+`","jwk":`+jwk+`}`, `{}`, nil), BadNonce},
		{"nonce padded", handMade(t, k, `{"alg":"ES256","nonce":"`+testNonce+`==","url":"`+testURL+`","jwk":`+jwk+`}`, `{}`, nil), BadNonce},
		{"nonce not a string", handMade(t, k, `{"alg":"ES256","nonce":7,"url":"`+testURL+`","jwk":`+jwk+`}`, `{}`, nil), Malformed},
		{"private jwk", handMade(t, k, hdr(`,"jwk":`+string(priv)), `{}`, nil), Malformed},
		{"RSA-1024 jwk", sign(t, jose.RS256, small, "", nil, `{}`), BadPublicKey},
		{"P-224 jwk", handMade(t, k, hdr(`,"jwk":{"kty":"EC","crv":"P-224","x":"`+b64(p224.X.Bytes())+`","y":"`+b64(p224.Y.Bytes())+`"}`), `{}`, nil), Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSigned(tc.body)
			wantProblem(t, err, tc.want)
		})
	}
}

func TestVerifyRefusesAlgorithmKeyMismatch(t *testing.T) {
	// An ES384 header over a P-256 key is badSignatureAlgorithm.
	k := ecKey(t, elliptic.P256())
	body := handMade(t, k, `{"alg":"ES384","nonce":"`+testNonce+`","url":"`+testURL+`","kid":"https://acme.example/acme/acct/1"}`, `{}`, nil)
	s, err := ParseSigned(body)
	if err != nil {
		t.Fatal(err)
	}
	p := wantProblem(t, func() error { _, err := s.Verify(&jose.JSONWebKey{Key: k.Public()}); return err }(), BadSignatureAlgorithm)
	if len(p.Algorithms) == 0 || !strings.Contains(strings.Join(p.Algorithms, " "), "ES256") {
		t.Fatalf("badSignatureAlgorithm lists %v", p.Algorithms)
	}
	// A signature over other bytes does not verify.
	body = handMade(t, k, `{"alg":"ES256","nonce":"`+testNonce+`","url":"`+testURL+`","kid":"x"}`, `{}`, nil)
	var f map[string]string
	json.Unmarshal(body, &f)
	f["payload"] = base64.RawURLEncoding.EncodeToString([]byte(`{"x":1}`))
	body, _ = json.Marshal(f)
	if s, err = ParseSigned(body); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, func() error { _, err := s.Verify(&jose.JSONWebKey{Key: k.Public()}); return err }(), Malformed)
}

func TestCheckKey(t *testing.T) {
	e3, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	even := e3.PublicKey
	even.E = 65536
	for _, tc := range []struct {
		name string
		key  any
		ok   bool
	}{
		{"RSA-2048", &e3.PublicKey, true},
		{"RSA even exponent", &even, false},
		{"P-256", ecKey(t, elliptic.P256()).Public(), true},
		{"P-224", ecKey(t, elliptic.P224()).Public(), false},
		{"Ed25519", ed25519.PublicKey(make([]byte, 32)), true},
		{"bytes", []byte("secret"), false},
	} {
		err := CheckKey(&jose.JSONWebKey{Key: tc.key})
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckKey = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil {
			wantProblem(t, err, BadPublicKey)
		}
	}
}

func TestReadRequest(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	body := sign(t, jose.ES256, k, "", nil, `{}`)
	req := func(ct string, b []byte) *http.Request {
		r := httptest.NewRequest("POST", testURL, strings.NewReader(string(b)))
		r.Header.Set("Content-Type", ct)
		return r
	}
	if _, err := ReadRequest(req("application/jose+json", body)); err != nil {
		t.Fatal(err)
	}
	if p := wantProblem(t, func() error { _, err := ReadRequest(req("application/json", body)); return err }(), Malformed); p.HTTPStatus() != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong content type: status %d, want 415", p.HTTPStatus())
	}
	big := append([]byte(`{"protected":"`), make([]byte, MaxBodySize)...)
	if p := wantProblem(t, func() error { _, err := ReadRequest(req("application/jose+json", big)); return err }(), Malformed); p.HTTPStatus() != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d, want 413", p.HTTPStatus())
	}
}

func TestProblemJSON(t *testing.T) {
	p := &Problem{Type: RejectedIdentifier, Detail: "some names are refused", Subproblems: []*Problem{
		{Type: CAA, Detail: "CAA forbids issuance", Identifier: &Identifier{Type: "dns", Value: "a.example"}},
	}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"some names are refused","status":400,` +
		`"subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids issuance","identifier":{"type":"dns","value":"a.example"}}]}`
	if string(b) != want {
		t.Fatalf("problem JSON\n got %s\nwant %s", b, want)
	}
	if got := Problemf(Unauthorized, "x").HTTPStatus(); got != http.StatusForbidden {
		t.Fatalf("unauthorized: status %d, want 403", got)
	}
}
