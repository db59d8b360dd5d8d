// Package ct is Certificate Transparency (RFC 6962) for the signing path:
// which logs a certificate goes to, getting Signed Certificate Timestamps
// for its precertificate, and embedding them in the final certificate.
//
// The flow, driven by issuer.CA: the CA signs a precertificate (the
// final certificate's TBS with the critical poison extension, OIDPoison)
// and stores it under the certificate's serial, so that OCSP and CRLs
// cover the serial from then on; Submitter.SCTs sends it to every log
// whose temporal interval holds its notAfter, in parallel, checks each
// SCT's signature against that log's key, and returns as soon as the
// Policy is met (so many SCTs from so many distinct operators, modelled on
// Chrome's CT policy), leaving the slower submissions to finish on their
// own; the CA embeds
// the SCT list (Result.Extension) in the final certificate, signs it, and
// Submitter.LogFinal sends the final certificate to the logs in the
// background.
//
// Logs come from a log list in the v3 JSON format that Chrome publishes
// (ParseLogList), both RFC 6962 logs and static-ct-api ("tiled") logs,
// whose submission API is RFC 6962's. Each log has its own deadline per
// submission (retries of 429 and 503 answers included), a circuit breaker
// (github.com/sony/gobreaker) that stops sending to a log that keeps
// failing until a cool-down has passed, and Prometheus metrics
// (trustline_ct_*). A log that is slow or down costs nothing while the
// others can still meet the policy; when they cannot, SCTs fails with a
// *PolicyError naming each log's failure, and the CA signs nothing more.
//
// The CT types, the client and SCT verification are
// github.com/google/certificate-transparency-go's.
package ct
