// Package perspective is a remote network perspective for Multi-Perspective
// Issuance Corroboration (BR §3.2.2.9): the server of the `trustline
// perspective` role, which repeats dns-txt, http-token and CAA checks from
// its own network position through its own resolver, and the Client the
// primary perspective (the api role) asks several of them with.
//
// The channel is HTTPS (TLS 1.3) authenticated both ways by pinned keys,
// as BR §3.2.2.9 asks ("an authenticated and encrypted channel"): each
// perspective and each primary has one key (ECDSA P-256, a keyfile), its
// certificate is self-signed and worthless, and each side accepts only the
// public keys it is configured with. The perspective also signs every
// answer (a Statement) with its key, so the evidence stored with a
// validation or an order can be checked later against the perspective's
// key without trusting the CA's database.
//
// A perspective keeps no state and caches nothing between checks (BR
// §3.2.2.9: results from one perspective must not be reused by another);
// its resolver should be its own, in its own RIR region.
package perspective

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/issuer/mpic"
)

// CheckPath is where a perspective takes checks (POST, JSON Request).
const CheckPath = "/v1/check"

// SignatureHeader carries the base64 signature of the Statement that is
// the answer's body.
const SignatureHeader = "Trustline-Statement-Signature"

// maxBody bounds a request and an answer.
const maxBody = 64 << 10

// signingContext starts what a perspective signs, so that its signature
// means nothing anywhere else.
const signingContext = "trustline perspective statement v1\n"

// Request is what the primary sends.
type Request struct {
	Check mpic.Check `json:"check"`
	// Nonce is fresh randomness the Statement echoes, so an old answer
	// cannot be replayed for a new check.
	Nonce string `json:"nonce"`
}

// Statement is a perspective's signed answer.
type Statement struct {
	Perspective string     `json:"perspective"`
	RIR         string     `json:"rir,omitempty"`
	Check       mpic.Check `json:"check"`
	Nonce       string     `json:"nonce"`
	At          time.Time  `json:"at"`
	// Passed: the random value was found (dns-txt, http-token), or CAA
	// permits this CA to issue (caa).
	Passed   bool           `json:"passed"`
	Detail   string         `json:"detail,omitempty"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// sign signs body with key.
func sign(key crypto.Signer, body []byte) ([]byte, error) {
	d := digest(body)
	return key.Sign(rand.Reader, d[:], crypto.SHA256)
}

// Verify checks a signature a perspective made over a statement's body
// with the key pub (a PKIX public key, as configured).
func Verify(pub crypto.PublicKey, body, sig []byte) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("perspective: %T keys are not used", pub)
	}
	d := digest(body)
	if !ecdsa.VerifyASN1(k, d[:], sig) {
		return errors.New("perspective: the statement's signature does not verify")
	}
	return nil
}

func digest(body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(signingContext))
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// EncodeKey is the form a public key takes in configuration: base64 of
// its PKIX (SubjectPublicKeyInfo) DER.
func EncodeKey(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("perspective: encoding public key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// DecodeKey reads a key EncodeKey wrote. Only ECDSA P-256 keys are used.
func DecodeKey(s string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("perspective: a public key is base64 of its PKIX DER")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("perspective: parsing public key: %w", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve.Params().Name != "P-256" {
		return nil, errors.New("perspective: want an ECDSA P-256 public key")
	}
	return k, nil
}

// decodeStatement parses an answer's body strictly.
func decodeStatement(body []byte) (Statement, error) {
	var s Statement
	if err := json.Unmarshal(body, &s); err != nil {
		return Statement{}, fmt.Errorf("perspective: the statement is not JSON: %w", err)
	}
	return s, nil
}
