// Package responder is Trustline's OCSP responder logic (RFC 6960, the
// lightweight profile of RFC 5019 / RFC 9919, RFC 8954 for nonces),
// independent of any HTTP server: given the DER of an OCSPRequest it
// finds the issuer by name and key hash, looks the response up in a
// bounded in-process L1 and then in the response cache (ocspcache: memory
// or Redis), and returns an Answer carrying the pre-signed response and
// the header values RFC 5019 §6 asks for. responder/server adapts it to
// fasthttp; responder/floor is the no-parsing baseline it is measured
// against.
//
// Policy, in one place:
//   - unparseable requests, and requests with more than one CertID (RFC
//     9919 §2.1.1 allows one; RFC 6960 §4.2.2.3 would have us answer all
//     of them, which a pre-signed response cannot), get malformedRequest;
//   - an unknown issuer or serial gets unauthorized (RFC 9919 §2.2.3,
//     DESIGN invariant 2); neither is cacheable;
//   - a response is never served at or after its nextUpdate, and the L1
//     keeps none past its refresh point;
//   - a request with a nonce gets the pre-signed response (RFC 8954 §2.1);
//   - CertIDs hashed with SHA-1, SHA-256, SHA-384 or SHA-512 are answered
//     with a response echoing that algorithm; the pre-signed algorithms
//     come from the cache, the others are signed on first request through
//     a LiveSigner and cached;
//   - when the cache fails (Redis down) or is incomplete (being rebuilt),
//     the responder serves from L1, signs live within a bounded budget
//     when it has a LiveSigner, and otherwise answers tryLater: never an
//     expired response, never a storm of errors.
//
// It is stateless and scales out behind a CDN. Who may import it: cmd/
// and the responder's own subpackages, and tests anywhere. It imports no
// database driver, no PKCS#11 and nothing from issuer/ (internal/deptest
// checks): live signing goes through the LiveSigner interface declared
// here and injected by cmd/.
package responder
