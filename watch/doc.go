// Package watch is the plant watching itself from the outside: it fetches
// what relying parties receive — OCSP responses through the public URL
// (the CDN) and from each responder, CRLs through the public CRL URL and
// from each origin — and checks them against the CA's own records and the
// Baseline Requirements' timing rules. Every disagreement is a Finding,
// kept with its evidence (the bytes fetched, the headers, the time).
//
// The checks are pure over what was fetched and what the store says:
// OCSPCheck.Check for one certificate at one URL (status, reason and
// revocation time agree with the store, a revocation older than the
// promised delay is revoked everywhere, nothing served past nextUpdate,
// validity within BR 4.9.10's 10 days and refreshed before half of it has
// run, Cache-Control and Expires not outliving nextUpdate, the signature
// verifying against the stored hierarchy); CRLCheck.Check for one shard at
// one URL (signature, thisUpdate and nextUpdate within BR 4.9.7 / 7.2,
// number never going back, issuingDistributionPoint naming the URL the
// certificates point to, only BR 7.2.2 reasons, every revocation older than
// the promised delay listed, caching headers). The `trustline watch` role
// samples certificates from the store and runs them on a schedule.
//
// It imports the store's records and the PKI's public parts; nothing in
// the CA imports it.
package watch
