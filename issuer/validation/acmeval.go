package validation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// The ACME challenge methods (RFC 8555 §8, RFC 8737). The ACME server
// starts them, when a client answers a challenge, with the key
// authorization (the authorization's token, ".", and the account key's
// RFC 7638 thumbprint); the REST API and the portal do not offer them.
// They record the same evidence, pass through the same remote
// perspectives and follow the same reuse rules as the other methods.
const (
	MethodACMEHTTP01    = "acme-http-01"     // BR §3.2.2.4.19 Agreed-Upon Change to Website – ACME
	MethodACMEDNS01     = "acme-dns-01"      // BR §3.2.2.4.7 DNS Change
	MethodACMETLSALPN01 = "acme-tls-alpn-01" // BR §3.2.2.4.20 TLS Using ALPN

	// ACMEChallengeLabel prefixes the domain to name dns-01's TXT record
	// (RFC 8555 §8.4).
	ACMEChallengeLabel = "_acme-challenge"
	// ACMEChallengePath is where http-01 fetches the key authorization
	// (RFC 8555 §8.3).
	ACMEChallengePath = "/.well-known/acme-challenge/"
)

// isACME reports whether method is one of the ACME challenge methods.
func isACME(method string) bool {
	return method == MethodACMEHTTP01 || method == MethodACMEDNS01 || method == MethodACMETLSALPN01
}

// minTokenLen is the shortest token accepted: 128 bits in base64url
// (RFC 8555 §8.1 asks at least that much entropy), as BR §1.6.1 asks 112
// bits of a Random Value.
const minTokenLen = 22

// SplitKeyAuthorization returns the token and the thumbprint of a key
// authorization, checking its form: two base64url strings joined by ".",
// the token at least 128 bits, the thumbprint a SHA-256 (RFC 8555 §8.1).
func SplitKeyAuthorization(keyAuth string) (token, thumbprint string, err error) {
	token, thumbprint, ok := strings.Cut(keyAuth, ".")
	switch {
	case !ok || len(token) < minTokenLen || len(token) > 128 || !base64url(token):
		return "", "", fmt.Errorf("validation: %q is not a key authorization: the token must be at least %d base64url characters", truncate(keyAuth, 64), minTokenLen)
	case len(thumbprint) != base64.RawURLEncoding.EncodedLen(sha256.Size) || !base64url(thumbprint):
		return "", "", fmt.Errorf("validation: %q is not a key authorization: the thumbprint must be a base64url SHA-256", truncate(keyAuth, 64))
	}
	return token, thumbprint, nil
}

func base64url(s string) bool {
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// KeyAuthorizationDigest is SHA-256 of a key authorization: base64url in
// dns-01's TXT record (RFC 8555 §8.4), the raw bytes in tls-alpn-01's
// acmeIdentifier extension (RFC 8737 §3).
func KeyAuthorizationDigest(keyAuth string) [sha256.Size]byte {
	return sha256.Sum256([]byte(keyAuth))
}

// StartACME records the validation an ACME client asked for by answering
// a challenge of method for domain. It is pending until ConfirmACME looks.
// The key authorization is stored as the validation's secret: it is
// public once the client publishes it.
func (v *Service) StartACME(ctx context.Context, acct store.Account, domain, method, keyAuth string) (store.Validation, error) {
	if !isACME(method) {
		return store.Validation{}, fmt.Errorf("validation: %q is not an ACME challenge method", method)
	}
	if v.dns == nil {
		return store.Validation{}, &fault.UnavailableError{Detail: "ACME challenges are not configured on this server (no DNS resolver)"}
	}
	token, _, err := SplitKeyAuthorization(keyAuth)
	if err != nil {
		return store.Validation{}, err
	}
	domain, err = NormalizeDomain(domain)
	if err != nil {
		return store.Validation{}, err
	}
	if err := v.admit(ctx, acct, domain); err != nil {
		return store.Validation{}, err
	}
	var contact string
	switch method {
	case MethodACMEHTTP01:
		contact = "http://" + domain + ACMEChallengePath + token
	case MethodACMEDNS01:
		contact = ACMEChallengeLabel + "." + domain
	default:
		contact = domain + ":" + strconv.Itoa(v.cfg.HTTPSPort)
	}
	now := v.now()
	val := store.Validation{
		ID: newID("val_"), AccountID: acct.ID, Domain: domain, Method: method, Contact: contact,
		Secret: []byte(keyAuth), Status: store.ValidationPending, CreatedAt: now, ExpiresAt: now.Add(v.cfg.ChallengeLifetime),
	}
	if err := v.store.CreateValidation(ctx, val); err != nil {
		return store.Validation{}, fmt.Errorf("validation: creating validation: %w", err)
	}
	v.metrics.ValidationStarted(method)
	return val, nil
}

// ConfirmACME makes the CA look for what an ACME validation's client
// published, from the primary perspective and then the remote ones, as
// Confirm does for dns-txt and http-token. A validation that is already
// valid is returned as it is.
func (v *Service) ConfirmACME(ctx context.Context, acct store.Account, id string) (store.Validation, error) {
	val, err := v.Get(ctx, acct, id)
	if err != nil {
		return store.Validation{}, err
	}
	if !isACME(val.Method) {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("validation %s is not an ACME challenge", id)}
	}
	return v.confirmPublished(ctx, acct, id)
}

// checkACME performs an ACME validation's primary check.
func (v *Service) checkACME(ctx context.Context, val store.Validation) (map[string]any, error) {
	keyAuth := string(val.Secret)
	var (
		ev  map[string]any
		err error
	)
	switch val.Method {
	case MethodACMEDNS01:
		ev, err = v.dns.check(ctx, val.Contact, dns01Value(keyAuth))
	case MethodACMEHTTP01:
		ev, err = v.web.checkKeyAuthorization(ctx, val.Contact, keyAuth)
	default:
		ev, err = v.alpn.check(ctx, val.Domain, keyAuth)
	}
	if err != nil {
		return nil, err
	}
	ev["acme_challenge"] = strings.TrimPrefix(val.Method, "acme-")
	return ev, nil
}

// dns01Value is the TXT record dns-01 looks for: the base64url SHA-256 of
// the key authorization (RFC 8555 §8.4).
func dns01Value(keyAuth string) string {
	d := KeyAuthorizationDigest(keyAuth)
	return base64.RawURLEncoding.EncodeToString(d[:])
}
