// Package crlpub is what the CRL generator tells the rest of the plant after
// it has published a CRL (RFC 5280 §5; CCADB "JSON array of partitioned
// CRLs"): the CRL itself with the metadata an origin needs to serve it
// (numbers, times, the URL it answers), and the Publisher interface that the
// origin, cache purgers and the directory writer implement.
//
// It also defines the on-disk layout shared by DirWriter (written by crlgen)
// and the origin's directory source (read by origin), so that the two never
// disagree on a file name:
//
//	DIR/<issuer-id>.cer           the issuer's certificate, DER
//	DIR/<issuer-id>/<shard>.crl   a shard CRL, DER
//	DIR/<issuer-id>/full.crl      an unpartitioned CRL (the root's), DER
//	DIR/<issuer-id>/crls.json     the CCADB JSON array of the issuer's CRL URLs
//
// Every file is replaced by an atomic rename, so a reader sees the old or the
// new bytes, never a mix.
//
// It is a leaf: it imports the standard library and internal/issuerid only,
// so that the stateless origin can import it (internal/deptest) without
// reaching the generator, the store or issuer/. Anyone may import it.
package crlpub

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/shard"
)

// CRL is one published CRL. Its byte slices and ShardURLs are shared between
// all publishers and must not be modified.
type CRL struct {
	Issuer issuerid.ID
	// Shard is the shard index, or shard.Full.
	Shard int
	// URL is the distribution point the CRL answers: byte-identical to its
	// IssuingDistributionPoint and to its certificates' CRL distribution
	// point.
	URL    string
	Number int64
	// ThisUpdate and NextUpdate are the CRL's own fields (UTC, seconds).
	ThisUpdate, NextUpdate time.Time
	// NextPublication is when the generator will publish this shard again
	// at the latest, barring revocations (which publish it sooner and purge
	// caches). The origin tunes Cache-Control to it.
	NextPublication time.Time
	DER             []byte
	SHA256          [sha256.Size]byte
	// Entries is the number of revoked certificates listed; -1 when not
	// known (a Replayed CRL is not parsed again).
	Entries int
	// ShardURLs is the issuer's complete CCADB JSON array as of this
	// publication: every shard URL, or the full CRL's URL for the root.
	ShardURLs []string
	// Replayed is set when the generator re-announces an already stored CRL
	// (at start, so that a fresh origin has every CRL). Nothing changed, so
	// purgers ignore it.
	Replayed bool
}

// Publisher is told about each CRL after the store has accepted it. Calls
// come from the generator's loop, one at a time per generator; an
// implementation must return quickly (queue slow work) and must not modify
// c. An error is logged and counted; the publication stands.
type Publisher interface {
	Published(ctx context.Context, c CRL) error
}

// FileName is the name of a CRL inside its issuer's directory and URL path:
// "<shard>.crl" or "full.crl".
func FileName(s int) string {
	if s == shard.Full {
		return "full.crl"
	}
	return strconv.Itoa(s) + ".crl"
}

// Path is the URL path (and the path relative to a DirWriter's directory)
// of a CRL: "/<issuer-id>/<shard>.crl" or "/<issuer-id>/full.crl".
func Path(issuer issuerid.ID, s int) string {
	return "/" + string(issuer) + "/" + FileName(s)
}

// URL is a CRL's distribution point under base (no trailing slash):
// base + Path. Certificates carry exactly this URL, and the CRL's
// issuing distribution point repeats it.
func URL(base string, issuer issuerid.ID, s int) string {
	return base + Path(issuer, s)
}

// ListName is the CCADB JSON array's name inside an issuer's directory.
const ListName = "crls.json"

// CertName is the file name of an issuer's certificate: "<issuer-id>.cer".
func CertName(issuer issuerid.ID) string { return string(issuer) + ".cer" }
