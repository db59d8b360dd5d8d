// Package bench is Trustline's load-benchmark suite: the `trustline bench`
// scenarios (ocsp, crl, issue, presign, floor), the standard suite behind
// `make bench`, and the peer comparison behind `make bench-peers`.
// docs/bench.md is its user guide.
//
// What it loads, and what it checks answers against:
//   - OCSP responders (RFC 6960 §4.1 requests, GET per Appendix A.1 and
//     POST; RFC 8954 nonces), with closed- or open-loop load; a sample of
//     answers is verified as a relying party would (signature, serial,
//     status from the store, CertID hash, nextUpdate; RFC 9919 §2.2.3
//     unauthorized for never-issued serials);
//   - the CRL origin, as a fleet of CDN edges revalidating with
//     If-None-Match / If-Modified-Since (RFC 9110 §13), each new CRL
//     verified (RFC 5280 §5: signature, nextUpdate, CRL number), and a
//     mass-revocation storm written to the store;
//   - DV issuance through the API; the OCSP response signer.
//
// Populate fills a store with real signed certificates for those loads
// (`trustline bench populate`): it takes the CA as a LoadSigner and the
// store's bulk path (store.BulkLoader), so that signing stays in issuer/.
//
// Open-loop runs schedule requests at a fixed rate and time a request that
// had to wait for a free connection from its scheduled send time, so that
// a stalled target shows its queueing delay instead of hiding it
// (coordinated omission). Latencies go into HDR histograms (1 µs–60 s,
// three significant digits). Results are a human summary, JSON (fields in
// Run) and a Markdown report with PNG plots.
//
// Who may import it: cmd/trustline only, which dispatches the
// subcommands to the Run* functions and to Populate. It reads the store
// through internal/store and its adapters and loads DIR's file keys (to
// sign the responses the floor server and cfssl serve); it never imports
// issuer/... (a test checks; only the populate test, which signs with a
// real CA, imports issuer/issuertest): issuance it reaches through the
// API, and certificates come from the binary's `bench populate`.
package bench
