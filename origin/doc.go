// Package origin is the CDN origin for Trustline's CRLs, the CCADB JSON array
// of each issuer's shard URLs, and the issuer certificates named in AIA
// caIssuers. It serves from memory with ETag, Last-Modified, Cache-Control
// tuned to the next publication, conditional requests, HEAD and Range.
//
// It is stateless and imports no database driver, no PKCS#11 and nothing
// from issuer/ (see internal/deptest).
package origin
