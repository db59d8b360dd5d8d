package crlgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/crlgen/crlenc"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
)

func cryptoRand() io.Reader { return rand.Reader }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sha256Sum(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

// built is a signed CRL and what it was meant to say.
type built struct {
	der                    []byte
	sha256                 [sha256.Size]byte
	number                 int64
	thisUpdate, nextUpdate time.Time
	entries                int
	idp                    string // "" for a full CRL
}

// maxFutureRevocation bounds how far a revocation date may lie ahead of this
// generator's clock. Beyond it one of the two clocks is badly wrong, and
// dating the CRL after it would carry the error into every later CRL
// (thisUpdate never goes back).
const maxFutureRevocation = 24 * time.Hour

// build signs the next CRL of shard s (or the full CRL) on top of prev.
func (g *Generator) build(ctx context.Context, is *issuerState, s int, prev store.CRL) (built, error) {
	now := g.now().UTC()
	thisUpdate := now.Truncate(time.Second)
	if prev.Number > 0 {
		// Never backwards, even after a clock step, and strictly forwards so
		// a shard's Last-Modified orders its CRLs.
		thisUpdate = later(thisUpdate, prev.ThisUpdate.UTC().Truncate(time.Second).Add(time.Second))
	}
	// Keep entries until one CRL after expiry: drop only what had expired
	// when the previous CRL was made. A first CRL keeps one period's worth.
	cutoff := thisUpdate.Add(-g.cfg.Period)
	if prev.Number > 0 {
		cutoff = prev.ThisUpdate
	}
	q := store.ShardQuery{Issuer: is.ID, RevokedOnly: true, NotAfterAfter: cutoff}
	if s != shard.Full {
		q.Shard = shard.Index(s)
	}
	// Collected once: crlenc reads the entries twice and they must not
	// change in between, which a second store scan could not promise.
	var entries []crlenc.Entry
	var latest time.Time
	err := g.st.ScanShard(ctx, q, func(c store.CertSummary) error {
		entries = append(entries, crlenc.Entry{Serial: c.Serial, RevokedAt: c.RevokedAt, Reason: c.Reason})
		latest = later(latest, c.RevokedAt)
		return nil
	})
	if err != nil {
		g.m.errors.WithLabelValues("store").Inc()
		return built{}, fmt.Errorf("crlgen: scanning %s: %w", label(is.ID, s), err)
	}
	if latest.After(now.Add(maxFutureRevocation)) {
		return built{}, fmt.Errorf("crlgen: %s: a certificate is revoked at %s, more than %v after this generator's clock (%s)",
			label(is.ID, s), latest.UTC().Format(time.RFC3339), maxFutureRevocation, now.Format(time.RFC3339))
	}
	// A CRL cannot predate a revocation it lists (RFC 5280 §5.1.2.6); with
	// skew between the revoking and the generating host it may have to be
	// dated a little ahead.
	thisUpdate = later(thisUpdate, latest.UTC().Truncate(time.Second))
	validity := g.cfg.Validity
	if s == shard.Full {
		validity = g.cfg.FullValidity
	}
	nextUpdate := thisUpdate.Add(validity)
	number := max(prev.Number+1, thisUpdate.UnixNano())
	b := built{number: number, thisUpdate: thisUpdate, nextUpdate: nextUpdate, entries: len(entries)}
	if s != shard.Full {
		b.idp = g.crlURL(is.ID, s)
	}
	der, err := crlenc.Encode(ctx, crlenc.Params{
		Issuer: is.Cert, Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, IDPURI: b.idp,
	}, slices.Values(entries), is.Signer, g.rand)
	if err != nil {
		return built{}, fmt.Errorf("crlgen: encoding %s: %w", label(is.ID, s), err)
	}
	b.der, b.sha256 = der, sha256.Sum256(der)
	return b, nil
}

// checkFailure is a publication check that failed; check names it in the
// failure metric.
type checkFailure struct {
	check string
	err   error
}

func (f *checkFailure) Error() string { return "crlgen: check " + f.check + ": " + f.err.Error() }
func (f *checkFailure) Unwrap() error { return f.err }

func failed(check string, format string, args ...any) error {
	return &checkFailure{check: check, err: fmt.Errorf(format, args...)}
}

// check decides whether b may be published on top of prev: it must parse,
// verify under the issuer's certificate, lint clean, and say exactly what
// was meant (number above prev's, times, entry count, IDP). It reads the
// DER as a relying party would, independently of the encoder.
func (g *Generator) check(is *issuerState, s int, prev store.CRL, b built) error {
	rl, err := x509.ParseRevocationList(b.der)
	if err != nil {
		return failed("parse", "%v", err)
	}
	if err := rl.CheckSignatureFrom(is.Cert); err != nil {
		return failed("signature", "%v", err)
	}
	lint, most := g.lint, maxValidity
	if s == shard.Full {
		lint, most = g.caLint, maxFullValidity
	}
	if err := lint.CRL(b.der); err != nil {
		return failed("lint", "%v", err)
	}
	switch {
	case rl.Number == nil || !rl.Number.IsInt64() || rl.Number.Int64() != b.number:
		return failed("number", "CRL number %v, meant %d", rl.Number, b.number)
	case b.number <= prev.Number:
		return failed("number", "CRL number %d does not exceed the stored %d", b.number, prev.Number)
	}
	switch {
	case !rl.ThisUpdate.Equal(b.thisUpdate) || !rl.NextUpdate.Equal(b.nextUpdate):
		return failed("times", "thisUpdate %s nextUpdate %s, meant %s and %s", rl.ThisUpdate, rl.NextUpdate, b.thisUpdate, b.nextUpdate)
	case rl.NextUpdate.Sub(rl.ThisUpdate) > most:
		return failed("times", "nextUpdate is %v after thisUpdate, more than %v (BR §4.9.7)", rl.NextUpdate.Sub(rl.ThisUpdate), most)
	case prev.Number > 0 && rl.ThisUpdate.Before(prev.ThisUpdate.Truncate(time.Second)):
		return failed("times", "thisUpdate %s is before the stored CRL's %s", rl.ThisUpdate, prev.ThisUpdate)
	}
	if len(rl.RevokedCertificateEntries) != b.entries {
		return failed("entries", "%d entries, meant %d", len(rl.RevokedCertificateEntries), b.entries)
	}
	if err := checkIDP(rl, b.idp); err != nil {
		return err
	}
	return nil
}

var oidIDP = asn1.ObjectIdentifier{2, 5, 29, 28}

// checkIDP wants, for a shard, exactly one critical issuingDistributionPoint
// of the form crlenc writes: fullName holding the one URI, byte for byte,
// and onlyContainsUserCerts TRUE, nothing else; for a full CRL, none.
func checkIDP(rl *x509.RevocationList, want string) error {
	var found [][]byte
	critical := true
	for _, e := range rl.Extensions {
		if e.Id.Equal(oidIDP) {
			found = append(found, e.Value)
			critical = critical && e.Critical
		}
	}
	if want == "" {
		if len(found) != 0 {
			return failed("idp", "a full CRL carries an issuingDistributionPoint")
		}
		return nil
	}
	if len(found) != 1 {
		return failed("idp", "%d issuingDistributionPoint extensions, want 1", len(found))
	}
	if !critical {
		return failed("idp", "issuingDistributionPoint is not critical (RFC 5280 §5.2.5)")
	}
	uri, userOnly, err := parseIDP(found[0])
	if err != nil {
		return failed("idp", "%v", err)
	}
	if !bytes.Equal(uri, []byte(want)) {
		return failed("idp", "issuingDistributionPoint names %q, the certificates name %q", uri, want)
	}
	if !userOnly {
		return failed("idp", "issuingDistributionPoint lacks onlyContainsUserCerts")
	}
	return nil
}

// parseIDP reads IssuingDistributionPoint ::= SEQUENCE { distributionPoint
// [0] { fullName [0] { uniformResourceIdentifier [6] } }, onlyContainsUserCerts
// [1] BOOLEAN } and refuses anything more.
func parseIDP(der []byte) (uri []byte, userOnly bool, err error) {
	in := cryptobyte.String(der)
	var seq, dpName, fullName, name cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, false, errors.New("issuingDistributionPoint is not one SEQUENCE")
	}
	if !seq.ReadASN1(&dpName, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!dpName.ReadASN1(&fullName, cbasn1.Tag(0).Constructed().ContextSpecific()) || !dpName.Empty() ||
		!fullName.ReadASN1(&name, cbasn1.Tag(6).ContextSpecific()) || !fullName.Empty() {
		return nil, false, errors.New("issuingDistributionPoint has no fullName of exactly one URI")
	}
	if seq.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific()) {
		var b cryptobyte.String
		if !seq.ReadASN1(&b, cbasn1.Tag(1).ContextSpecific()) || len(b) != 1 || b[0] != 0xff {
			return nil, false, errors.New("issuingDistributionPoint onlyContainsUserCerts is not a DER TRUE")
		}
		userOnly = true
	}
	if !seq.Empty() {
		return nil, false, errors.New("issuingDistributionPoint has fields beyond onlyContainsUserCerts")
	}
	return name, userOnly, nil
}
