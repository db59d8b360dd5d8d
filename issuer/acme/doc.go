// Package acme is Trustline's ACME server (RFC 8555): the protocol layer
// that standard clients (certbot, lego, cert-manager) speak, on the api
// role under /acme/. It drives the same accounts, validations, orders and
// review queue as the REST API and the portal; it holds no CA state of its
// own beyond what the store keeps.
//
// This package is built in layers, each usable and tested on its own:
//
//   - problems (problem.go): the RFC 8555 §6.7 error types as RFC 7807
//     documents, with subproblems (§6.7.1);
//   - nonces (nonce.go): anti-replay nonces (§6.5) that any api instance
//     can check, sealed with a key all instances share and redeemed once
//     through the store's expiring counters;
//   - request authentication (jws.go): the §6.2 rules for a JWS request
//     body (flattened JSON, one signature, no unprotected header, no
//     unencoded payload, alg/nonce/url and exactly one of jwk and kid in
//     the protected header, an asymmetric algorithm that matches the key),
//     §6.4's url check, and the key checks an account key must pass.
//
// Signatures and JWK handling come from github.com/go-jose/go-jose/v4;
// this package adds only what RFC 8555 says on top of JOSE.
//
// Who may import it: cmd/trustline (wiring) and tests. It imports the
// issuer services, never the other way round.
package acme
