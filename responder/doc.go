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
// The tiers are sources (the source interface: a parsed request in, a
// rendered response or an error out), each wrapping the next, so that
// behaviour grows by adding a wrapper rather than fields and branches.
// New assembles them in this order:
//
//  1. l1Source, the in-process L1: first because a hit is the hot path
//     (a map read under a shard's read lock, no allocation), and because
//     it sees everything the tiers below return and keeps it until its
//     refresh point; it subscribes to the cache's evictions, so that a
//     revocation drops its copy at once. When the eviction feed may have
//     lost messages (Redis restarted), its copies become unconfirmed: each
//     is looked up below again, and served as it is only while nothing
//     below can answer. Absent when L1Entries is 0.
//  2. cacheSource, the response cache (ocspcache): a pre-signed response
//     costs a lookup where a live one costs a signature. Once the cache
//     is complete (State, re-read at most once per StateTTL) a miss
//     proves the certificate unknown and ends the chain. After a failure
//     its breaker keeps the chain off the cache for Cooldown, then lets
//     one request at a time probe it until one succeeds. It comes
//     before coalescing so that lookups are neither serialised per key
//     nor hidden from the lookup metrics.
//  3. liveOutcomes counts and logs each request's live signing outcome:
//     above coalescing, so that every request sharing a signature is
//     counted, as trustline_ocsp_live_signing_total always has.
//  4. coalescer (singleflight): concurrent requests for one key share one
//     signature. Above the budget, so that they take one slot, not one
//     each.
//  5. budget, LiveSigning slots: beyond them a request is answered
//     tryLater at once rather than queued behind a stalled HSM.
//  6. liveSource signs through the LiveSigner within SignTimeout and
//     writes the response back to the cache unless the breaker (shared
//     with cacheSource) is open; inside the budget, so that the write is
//     part of the slot it holds.
//
// Without a LiveSigner or a LiveSigning budget, tiers 3 to 6 are replaced
// by one that answers tryLater.
//
// It is stateless and scales out behind a CDN. Who may import it: cmd/
// and the responder's own subpackages, and tests anywhere. It imports no
// database driver, no PKCS#11 and nothing from issuer/ (internal/deptest
// checks): live signing goes through the LiveSigner interface declared
// here and injected by cmd/.
package responder
