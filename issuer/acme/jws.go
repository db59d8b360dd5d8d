package acme

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// MaxBodySize bounds an ACME request body. The largest legitimate one is a
// finalize carrying an RSA-4096 CSR with many names, a few KiB once
// base64url-encoded twice; a key change nests a whole JWS.
const MaxBodySize = 64 << 10

// algorithms are the JWS algorithms an account key may sign with: the
// asymmetric ones RFC 8555 §6.2 allows ("none" and MACs are refused) that
// ACME clients use.
func algorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}
}

// algorithmNames lists algorithms for a badSignatureAlgorithm problem.
func algorithmNames() []string {
	var s []string
	for _, a := range algorithms() {
		s = append(s, string(a))
	}
	return s
}

// Signed is a request body that has the form RFC 8555 §6.2 requires. Its
// signature is not yet checked: Verify does that, with the embedded key or
// the account's.
type Signed struct {
	jws *jose.JSONWebSignature
	// Alg, Nonce and URL are the protected header's fields.
	Alg, Nonce, URL string
	// Exactly one of JWK (the key itself: newAccount, revocation by the
	// certificate's key, the inner JWS of a key change) and KeyID (the
	// account URL) is set.
	JWK   *jose.JSONWebKey
	KeyID string
}

// ReadRequest reads an ACME POST body from r, at most MaxBodySize bytes,
// and parses it with ParseSigned. The body must be sent as
// application/jose+json (§6.2).
func ReadRequest(r *http.Request) (*Signed, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/jose+json" {
		return nil, &Problem{Type: Malformed, Status: http.StatusUnsupportedMediaType,
			Detail: "an ACME request body must be sent as Content-Type: application/jose+json"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		return nil, Problemf(Malformed, "reading the request body: %v", err)
	}
	if len(body) > MaxBodySize {
		return nil, &Problem{Type: Malformed, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the request body is larger than %d bytes", MaxBodySize)}
	}
	return ParseSigned(body)
}

// flattened is the JWS Flattened JSON Serialization (RFC 7515 §7.2.2),
// with the members that must be absent kept so that they can be refused.
type flattened struct {
	Protected  *string         `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  *string         `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

// ParseSigned checks that body is one JWS as RFC 8555 §6.2 allows and
// returns its protected header fields. Every failure is a *Problem:
// malformed, badSignatureAlgorithm (with the algorithms accepted), or
// badNonce for a missing or ill-formed nonce.
func ParseSigned(body []byte) (*Signed, error) { return parseSigned(body, true) }

// parseInner is ParseSigned for the inner JWS of a key change, which may
// omit the nonce (§7.3.5).
func parseInner(body []byte) (*Signed, error) { return parseSigned(body, false) }

func parseSigned(body []byte, needNonce bool) (*Signed, error) {
	var f flattened
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&f); err != nil {
		return nil, Problemf(Malformed, "the request body is not a JWS in the flattened JSON serialization: %v", err)
	}
	if dec.More() {
		return nil, Problemf(Malformed, "the request body holds more than one JSON value")
	}
	switch {
	case f.Signatures != nil:
		return nil, Problemf(Malformed, "the JWS must use the flattened JSON serialization with one signature, not the general one")
	case f.Header != nil:
		return nil, Problemf(Malformed, "the JWS must not have an unprotected header")
	case f.Protected == nil || f.Payload == nil || f.Signature == nil:
		return nil, Problemf(Malformed, "the JWS must have protected, payload and signature members")
	}
	if err := checkProtected(*f.Protected); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedJSON(string(body), algorithms())
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, &Problem{Type: BadSignatureAlgorithm, Algorithms: algorithmNames(),
				Detail: fmt.Sprintf("the JWS algorithm %q is not accepted", truncate(string(alg.Got), 32))}
		}
		return nil, Problemf(Malformed, "the JWS cannot be parsed: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, Problemf(Malformed, "the JWS must have exactly one signature")
	}
	h := jws.Signatures[0].Protected
	s := &Signed{jws: jws, Alg: h.Algorithm, Nonce: h.Nonce, JWK: h.JSONWebKey, KeyID: h.KeyID}
	switch {
	case s.JWK != nil && s.KeyID != "":
		return nil, Problemf(Malformed, "the JWS protected header must have either jwk or kid, not both")
	case s.JWK == nil && s.KeyID == "":
		return nil, Problemf(Malformed, "the JWS protected header must have jwk or kid")
	}
	u, ok := h.ExtraHeaders["url"].(string)
	if !ok || u == "" {
		return nil, Problemf(Malformed, "the JWS protected header must have a url, a string")
	}
	s.URL = u
	if s.Nonce == "" && needNonce {
		return nil, Problemf(BadNonce, "the JWS protected header has no nonce; get one from newNonce")
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(s.Nonce); err != nil && s.Nonce != "" {
		return nil, Problemf(BadNonce, "the nonce is not base64url without padding")
	}
	if s.JWK != nil {
		if err := CheckKey(s.JWK); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkProtected refuses protected header members that change how the JWS
// is read: "b64" (the unencoded payload option, RFC 7797, which §6.2
// forbids) and "crit" (no extension is understood here). It also makes
// sure the nonce, url and kid members, where present, are strings, which
// JOSE decoding would otherwise drop silently.
func checkProtected(protected string) error {
	raw, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return Problemf(Malformed, "the JWS protected header is not base64url without padding")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		return Problemf(Malformed, "the JWS protected header is not a JSON object")
	}
	if _, ok := h["b64"]; ok {
		return Problemf(Malformed, "the JWS must not use the unencoded payload option (b64)")
	}
	if _, ok := h["crit"]; ok {
		return Problemf(Malformed, "the JWS protected header must not have crit: no extension is supported")
	}
	for _, name := range []string{"alg", "nonce", "url", "kid"} {
		v, ok := h[name]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return Problemf(Malformed, "the JWS protected header's %s must be a string", name)
		}
	}
	return nil
}

// CheckKey refuses account keys Trustline does not accept (badPublicKey):
// RSA under 2048 or over 8192 bits or with an even or tiny exponent,
// elliptic curves other than P-256, P-384 and P-521, and anything but
// Ed25519 among the rest.
func CheckKey(k *jose.JSONWebKey) error {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		bits := pub.N.BitLen()
		if bits < 2048 || bits > 8192 {
			return Problemf(BadPublicKey, "an RSA account key must have 2048 to 8192 bits, not %d", bits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return Problemf(BadPublicKey, "the RSA account key's public exponent %d is not acceptable", pub.E)
		}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return Problemf(BadPublicKey, "an EC account key must be on P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
	default:
		return Problemf(BadPublicKey, "the account key must be RSA, EC (P-256, P-384, P-521) or Ed25519")
	}
	return nil
}

// CheckURL is §6.4: the url in the protected header must be the URL the
// request was sent to, else the request is refused as unauthorized.
func (s *Signed) CheckURL(requestURL string) error {
	if s.URL != requestURL {
		return Problemf(Unauthorized, "the JWS url %q is not the URL this request was sent to, %q", truncate(s.URL, 200), requestURL)
	}
	return nil
}

// Verify checks the signature with key (the embedded jwk or the account's
// key) and returns the payload: empty for a POST-as-GET (§6.3).
func (s *Signed) Verify(key *jose.JSONWebKey) ([]byte, error) {
	if key == nil {
		return nil, Problemf(Malformed, "no key to verify the JWS with")
	}
	if !algFits(s.Alg, key.Key) {
		return nil, &Problem{Type: BadSignatureAlgorithm, Algorithms: algorithmNames(),
			Detail: fmt.Sprintf("the JWS algorithm %s does not fit the account key's type", s.Alg)}
	}
	payload, err := s.jws.Verify(key)
	if err != nil {
		return nil, Problemf(Malformed, "the JWS signature does not verify")
	}
	if payload == nil {
		payload = []byte{}
	}
	return payload, nil
}

// algFits reports whether alg is the algorithm for key's type and size.
func algFits(alg string, key any) bool {
	switch pub := key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS256)
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return alg == string(jose.ES256)
		case elliptic.P384():
			return alg == string(jose.ES384)
		case elliptic.P521():
			return alg == string(jose.ES512)
		}
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// truncate cuts s to at most n bytes for a message, on a character
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
