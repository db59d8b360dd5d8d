// Package ocspcodec is Trustline's OCSP wire codec: it parses OCSPRequests
// (RFC 6960 §4.1), decodes the base64 path of GET requests (RFC 6960
// Appendix A.1, RFC 9919 §5), and encodes signed BasicOCSPResponses and the
// unsigned error responses (RFC 6960 §4.2) in the shape the lightweight
// profile asks for (RFC 9919, which obsoletes RFC 5019): one SingleResponse,
// ResponderID byKey, no nonce (RFC 8954 §2.1 lets pre-signed responses omit
// it).
//
// Parsing is on the responder's hot path and does not allocate; encoding is
// on the pre-signing pipeline's path and costs little more than the
// signature itself.
//
// This is a leaf package: it imports the standard library, golang.org/x/crypto,
// Trustline's vocabulary packages (internal/status, internal/reason) and its
// DER writer (internal/der) only.
// The responder, the pre-signing pipeline and their tests may import it; it
// must never import issuer/..., pgx or pkcs11 (deps_test.go checks).
package ocspcodec
