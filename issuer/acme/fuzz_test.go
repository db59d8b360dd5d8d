package acme

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/issuer/csrcheck"
)

// certIDSerial is the serial half of a certificate identifier.
func certIDSerial(sn serial.Serial) string {
	b := sn.Bytes()
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

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

// FuzzParseCertID: renewal-info paths and replaces come from anyone.
// parseCertID refuses with a problem or returns a serial whose identifier
// it parses back to the same key id and serial.
func FuzzParseCertID(f *testing.F) {
	for _, s := range []string{"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "x", ".", "AA.AA", "AA.AIA", "AA.gA", "AQ.AACA", "a.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		aki, sn, err := parseCertID(id)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Type != Malformed {
				t.Fatalf("parseCertID(%q): %v is not a malformed problem", id, err)
			}
			return
		}
		if len(aki) == 0 || sn == "" {
			t.Fatalf("parseCertID(%q) = %x, %q", id, aki, sn)
		}
		// The identifier of a certificate with that key id and serial parses
		// to the same.
		again := base64.RawURLEncoding.EncodeToString(aki) + "." + certIDSerial(sn)
		aki2, sn2, err := parseCertID(again)
		if err != nil || !bytes.Equal(aki, aki2) || sn != sn2 {
			t.Fatalf("parseCertID(%q) = %x %s, but its re-encoding %q gives %x %s %v", id, aki, sn, again, aki2, sn2, err)
		}
	})
}

// FuzzOrderNames: newOrder's identifiers. Accepted names are lowercase,
// distinct, dns, and pass the CSR policy's name check.
func FuzzOrderNames(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com", "EXAMPLE.com.", "a..b", "-x-.com", "xn--mnchen-3ya.de", "192.0.2.1", "*.*.a.com"} {
		f.Add("dns", s, "dns", "www."+s)
	}
	f.Fuzz(func(t *testing.T, t1, v1, t2, v2 string) {
		names, err := orderNames([]Identifier{{Type: t1, Value: v1}, {Type: t2, Value: v2}})
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Detail == "" {
				t.Fatalf("orderNames: %v is not a problem with a detail", err)
			}
			return
		}
		if t1 != "dns" || t2 != "dns" || len(names) == 0 || len(names) > 2 || (len(names) == 2 && names[0] == names[1]) {
			t.Fatalf("orderNames(%q %q, %q %q) = %q", t1, v1, t2, v2, names)
		}
		for _, n := range names {
			if n != asciiLower(n) || csrcheck.CheckName(n) != nil {
				t.Fatalf("accepted name %q", n)
			}
		}
	})
}

// FuzzContacts: account contacts. Accepted ones are mailto: with one plain
// address each, and accepted again as stored.
func FuzzContacts(f *testing.F) {
	for _, s := range []string{"mailto:a@example.com", "mailto:a@example.com?subject=x", "tel:+1", "mailto:", "mailto:A <a@b.c>", "MAILTO:a@b.c", "mailto:a@b.c,d@e.f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		out, email, err := checkContacts([]string{c})
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || (p.Type != InvalidContact && p.Type != UnsupportedContact) {
				t.Fatalf("checkContacts(%q): %v", c, err)
			}
			return
		}
		if len(out) != 1 || !strings.HasPrefix(out[0], "mailto:") || out[0] != "mailto:"+email || strings.ContainsAny(email, ",?") {
			t.Fatalf("checkContacts(%q) = %q, %q", c, out, email)
		}
		again, _, err := checkContacts(out)
		if err != nil || again[0] != out[0] {
			t.Fatalf("the stored contact %q is refused or changed: %q %v", out[0], again, err)
		}
	})
}
