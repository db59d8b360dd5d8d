// Package origin is the CDN origin for Trustline's CRLs (RFC 5280 §5, BR
// §4.9.7), the CCADB JSON array of each issuer's CRL URLs, and the issuer
// certificates named in AIA caIssuers (RFC 5280 §4.2.2.1). It serves from
// memory, over net/http, with the HTTP semantics a CDN relies on (RFC 9110,
// RFC 9111):
//
//	GET|HEAD /<issuer-id>/<shard>.crl   application/pkix-crl
//	GET|HEAD /<issuer-id>/full.crl      application/pkix-crl
//	GET|HEAD /<issuer-id>/crls.json     application/json (CCADB JSON array)
//	GET|HEAD /<issuer-id>.cer           application/pkix-cert (DER)
//
// with a strong ETag (a SHA-256 prefix of the bytes, so every origin
// instance agrees), Last-Modified (a CRL's thisUpdate, which crlgen makes
// strictly increasing per shard), Cache-Control public with max-age up to
// the CRL's next scheduled publication and a bounded stale-if-error, Expires
// at the same instant, and never anything that lets a cache keep a CRL past
// its nextUpdate. Conditional requests (304), HEAD and byte ranges (206)
// come from http.ServeContent (an empty suffix range made 416 first, which
// ServeContent gets wrong), which evaluates the RFC 9110 §13.2.2
// precondition order, compares If-None-Match weakly and If-Range strongly.
// Paths are parsed strictly: anything but the four forms above, including
// percent-encoded bytes, is 404.
//
// Content arrives two ways: pushed in process (Server implements
// crlpub.Publisher, for `trustline dev`), or read from a directory that
// crlgen's crlpub.DirWriter fills (Server.WatchDir, for production origins
// that share or sync that directory). A CRL is only ever replaced by one
// with a higher number, and never removed.
//
// Cache purges after a publication live in origin/purge.
//
// It is stateless and imports no database driver, no PKCS#11, nothing from
// issuer/ and not crlgen itself, only its leaf crlgen/crlpub (enforced by
// internal/deptest). cmd/ wires it.
package origin
