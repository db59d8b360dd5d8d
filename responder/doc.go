// Package responder is Trustline's OCSP responder (RFC 6960, RFC 5019/9919):
// a fasthttp server answering GET and POST from pre-signed responses held in
// an in-process L1 in front of the response cache (memory or Redis).
//
// It is stateless and scales out behind a CDN. It imports no database
// driver, no PKCS#11 and nothing from issuer/ (see internal/deptest).
package responder
