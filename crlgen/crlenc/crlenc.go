// Package crlenc encodes and signs X.509 v2 CRLs (RFC 5280 §5) as DER, in the
// profile of the CA/Browser Forum Baseline Requirements §7.2.2: extensions
// authorityKeyIdentifier (keyIdentifier only), cRLNumber and, for a shard, a
// critical issuingDistributionPoint; reasonCode only for the reasons the BR
// allow, never unspecified.
//
// It is built for CRLs of millions of entries: the entries are streamed twice
// (once to size, once to write) into a single output buffer, so a CRL costs
// about its own size in memory, where x509.CreateRevocationList costs 26 times
// that. The TBSCertList it writes is byte-identical to the standard library's
// for the same input.
//
// It is a pure encoder (no I/O, no clock). crlgen imports it; nothing outside
// crlgen/ should. It imports only the standard library and internal leaves.
package crlenc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"net/url"
	"time"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
)

// Entry is one revokedCertificates element.
type Entry struct {
	Serial serial.Serial
	// RevokedAt is encoded in UTC with seconds precision.
	RevokedAt time.Time
	// Reason unspecified is encoded as no reasonCode (BR §7.2.2).
	Reason reason.Reason
}

// Params are the CRL fields other than the entries.
type Params struct {
	// Issuer supplies the CRL's issuer Name (RawSubject, byte for byte) and
	// the authorityKeyIdentifier (SubjectKeyId). It must have the cRLSign key
	// usage, and its public key must be the signer's.
	Issuer *x509.Certificate
	// Number is the cRLNumber: positive, at most 20 octets as a DER INTEGER
	// (RFC 5280 §5.2.3).
	Number *big.Int
	// ThisUpdate and NextUpdate are encoded in UTC with seconds precision;
	// NextUpdate must not be before ThisUpdate. The BR bound on the interval
	// (≤ 10 days for subscriber CRLs) is the caller's policy.
	ThisUpdate, NextUpdate time.Time
	// IDPURI, when set, adds a critical issuingDistributionPoint with this URI
	// as its fullName and onlyContainsUserCerts TRUE (a sharded subscriber
	// CRL; RFC 5280 §5.2.5). It must be byte-identical to the CRL
	// distribution point of the certificates the shard covers. Empty: no IDP
	// (a full CRL).
	IDPURI string
}

// Validate reports the first problem with p that would make Encode fail
// before reading any entry.
func (p Params) Validate() error {
	switch {
	case p.Issuer == nil:
		return errors.New("crlenc: no issuer certificate")
	case len(p.Issuer.RawSubject) == 0:
		// RawSubject is what relying parties match; re-encoding Subject could
		// change it.
		return errors.New("crlenc: issuer certificate has no raw subject (use a parsed certificate)")
	case len(p.Issuer.SubjectKeyId) == 0:
		return errors.New("crlenc: issuer certificate has no subject key identifier, needed for the authority key identifier")
	case p.Issuer.KeyUsage&x509.KeyUsageCRLSign == 0:
		return errors.New("crlenc: issuer certificate lacks the cRLSign key usage")
	case p.Number == nil || p.Number.Sign() <= 0:
		return errors.New("crlenc: CRL number must be positive")
	case p.Number.BitLen() > 8*maxNumberOctets-1:
		// The sign bit counts: 20 octets of DER INTEGER content.
		return fmt.Errorf("crlenc: CRL number longer than %d octets", maxNumberOctets)
	case p.ThisUpdate.IsZero():
		return errors.New("crlenc: thisUpdate not set")
	case p.NextUpdate.IsZero():
		// Optional in RFC 5280, required by BR §7.2.
		return errors.New("crlenc: nextUpdate not set")
	case p.NextUpdate.Before(p.ThisUpdate):
		return fmt.Errorf("crlenc: nextUpdate %s is before thisUpdate %s",
			p.NextUpdate.UTC().Format(time.RFC3339), p.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if _, ok := der.TimeLen(p.ThisUpdate); !ok {
		return fmt.Errorf("crlenc: thisUpdate: %w", errTimeRange(p.ThisUpdate))
	}
	if _, ok := der.TimeLen(p.NextUpdate); !ok {
		return fmt.Errorf("crlenc: nextUpdate: %w", errTimeRange(p.NextUpdate))
	}
	if p.IDPURI != "" {
		if err := checkURI(p.IDPURI); err != nil {
			return err
		}
	}
	return nil
}

const maxNumberOctets = 20

// maxTBS bounds the TBSCertList (1 GiB, twenty times a CRL of a million
// entries) well below what the length encoding here and a 32-bit int can
// express; a CRL that size is a bug upstream anyway.
const maxTBS = 1 << 30

// checkURI accepts what fits an IA5String uniformResourceIdentifier and names
// a fetchable location.
func checkURI(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("crlenc: IDP URI %q has a byte outside printable ASCII at %d", s, i)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("crlenc: parsing IDP URI: %w", err)
	}
	if !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("crlenc: IDP URI %q is not an absolute URI with a host", s)
	}
	return nil
}

// Encode returns the signed CRL as DER.
//
// It ranges over entries twice, a sizing pass then a writing pass, and both
// must yield the same sequence; a difference is reported as an error, never
// encoded. Entry order is kept. Entries are refused when their reason is not
// one BR §7.2.2 allows on any CRL (certificateHold, removeFromCRL,
// aACompromise, undefined codes) or, with an IDP (a subscriber CRL), one it
// does not allow for subscriber certificates (cACompromise), and when they
// were revoked after ThisUpdate (RFC 5280 §5.1.2.6). Duplicate serials are
// not detected: that would cost a set of every serial.
//
// The signature algorithm follows the signer's key: ECDSA P-256 →
// ecdsa-with-SHA256, P-384 → ecdsa-with-SHA384, RSA ≥ 2048 bits →
// sha256WithRSAEncryption. The signature is verified before Encode returns,
// so a faulty signer (or HSM) cannot publish a bad CRL.
//
// ctx is checked between passes and before signing; a signer that blocks
// cannot be interrupted through crypto.Signer.
func Encode(ctx context.Context, p Params, entries iter.Seq[Entry], signer crypto.Signer, rand io.Reader) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, errors.New("crlenc: no signer")
	}
	alg, err := sigAlgFor(signer.Public())
	if err != nil {
		return nil, err
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(p.Issuer.PublicKey) {
		return nil, errors.New("crlenc: signer's public key is not the issuer certificate's")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crlenc: %w", err)
	}

	enc := newEntryEncoder(p)
	count, revokedLen, err := sizeEntries(enc, entries)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crlenc: %w", err)
	}

	head := tbsHead(p, alg.id)
	exts := crlExtensions(p)
	tbsContent := len(head) + len(exts)
	if count > 0 {
		tbsContent += der.ElementLen(revokedLen)
	}
	if tbsContent > maxTBS {
		return nil, fmt.Errorf("crlenc: %d entries make a CRL of more than %d bytes", count, maxTBS)
	}
	tbsLen := der.ElementLen(tbsContent)
	// The outer header is sized for the longest signature; the real one may be
	// a byte shorter, and then the CRL starts a byte later in buf (no copy).
	maxOuter := tbsLen + len(alg.id) + der.ElementLen(1+alg.maxSig)
	hdrMax := der.ElementLen(maxOuter) - maxOuter

	buf := make([]byte, hdrMax, hdrMax+maxOuter)
	buf = der.AppendHeader(buf, der.TagSequence, tbsContent)
	buf = append(buf, head...)
	if count > 0 {
		buf = der.AppendHeader(buf, der.TagSequence, revokedLen)
		if buf, err = appendEntries(enc, buf, entries, count, revokedLen); err != nil {
			return nil, err
		}
	}
	buf = append(buf, exts...)
	if len(buf) != hdrMax+tbsLen {
		// Not reachable unless the sizes above disagree with the writers.
		return nil, fmt.Errorf("crlenc: internal error: TBSCertList is %d bytes, sized %d", len(buf)-hdrMax, tbsLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crlenc: %w", err)
	}

	sig, err := alg.sign(signer, rand, buf[hdrMax:])
	if err != nil {
		return nil, err
	}
	if len(sig) > alg.maxSig {
		return nil, fmt.Errorf("crlenc: signer returned a %d-byte signature, longer than %d", len(sig), alg.maxSig)
	}
	buf = append(buf, alg.id...)
	buf = der.AppendHeader(buf, der.TagBitString, 1+len(sig))
	buf = append(buf, 0) // no unused bits
	buf = append(buf, sig...)

	outer := len(buf) - hdrMax
	start := hdrMax - (der.ElementLen(outer) - outer)
	der.AppendHeader(buf[start:start], der.TagSequence, outer) // in place, just before the TBSCertList
	return buf[start:len(buf):len(buf)], nil
}

// sizeEntries is the first pass: it validates every entry and returns their
// count and the length of their encodings.
func sizeEntries(enc *entryEncoder, entries iter.Seq[Entry]) (count, length int, err error) {
	for e := range entries {
		n, err := enc.size(e)
		if err != nil {
			return 0, 0, fmt.Errorf("crlenc: entry %d: %w", count, err)
		}
		count++
		length += n
		if length > maxTBS {
			return 0, 0, fmt.Errorf("crlenc: more than %d bytes of entries after %d entries", maxTBS, count)
		}
	}
	return count, length, nil
}

// appendEntries is the second pass. It re-validates each entry and stops as
// soon as the sequence departs from the first pass's sizes, so a changed
// sequence can neither overrun the buffer nor be signed.
func appendEntries(enc *entryEncoder, buf []byte, entries iter.Seq[Entry], count, length int) ([]byte, error) {
	errChanged := errors.New("crlenc: entries yielded a different sequence on the second pass")
	end := len(buf) + length
	i := 0
	for e := range entries {
		n, err := enc.size(e)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", errChanged, i, err)
		}
		if len(buf)+n > end {
			return nil, errChanged
		}
		enc.put(buf[len(buf):len(buf)+n], e)
		buf = buf[:len(buf)+n]
		i++
	}
	if i != count || len(buf) != end {
		return nil, errChanged
	}
	return buf, nil
}

// checkReason applies BR §7.2.2. Subscriber CRLs (userOnly) take the
// subscriber set; full CRLs, which may list CA certificates, take the union
// of the subscriber and CA sets (cACompromise is only right for those).
func checkReason(r reason.Reason, userOnly bool) error {
	if r.AllowedForSubscriber() || (!userOnly && r.AllowedForCA()) {
		return nil
	}
	if userOnly && r.AllowedForCA() {
		return fmt.Errorf("reason %s is not allowed on a CRL of subscriber certificates (BR §7.2.2)", r)
	}
	return fmt.Errorf("reason %s is not allowed on a CRL (BR §7.2.2)", r)
}

// sigAlg is how one kind of key signs a CRL.
type sigAlg struct {
	hash   crypto.Hash
	id     []byte // DER AlgorithmIdentifier
	maxSig int    // longest signature, in bytes
	verify func(digest, sig []byte) bool
}

func sigAlgFor(pub crypto.PublicKey) (sigAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return sigAlg{
				hash: crypto.SHA256,
				// ecdsa-with-SHA256, no parameters (RFC 5758 §3.2).
				id:     []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02},
				maxSig: ecdsaMaxSig(32),
				verify: func(d, s []byte) bool { return ecdsa.VerifyASN1(k, d, s) },
			}, nil
		case elliptic.P384():
			return sigAlg{
				hash: crypto.SHA384,
				// ecdsa-with-SHA384, no parameters (RFC 5758 §3.2).
				id:     []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03},
				maxSig: ecdsaMaxSig(48),
				verify: func(d, s []byte) bool { return ecdsa.VerifyASN1(k, d, s) },
			}, nil
		}
		return sigAlg{}, fmt.Errorf("crlenc: unsupported ECDSA curve %s (P-256 and P-384 only)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return sigAlg{}, fmt.Errorf("crlenc: RSA key of %d bits, fewer than the 2048 BR §6.1.5 requires", k.N.BitLen())
		}
		return sigAlg{
			hash: crypto.SHA256,
			// sha256WithRSAEncryption with NULL parameters (RFC 4055 §5).
			id: []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
				0x05, 0x00},
			maxSig: k.Size(),
			verify: func(d, s []byte) bool { return rsa.VerifyPKCS1v15(k, crypto.SHA256, d, s) == nil },
		}, nil
	}
	return sigAlg{}, fmt.Errorf("crlenc: unsupported signer key type %T (ECDSA P-256/P-384 or RSA only)", pub)
}

// ecdsaMaxSig is the longest DER Ecdsa-Sig-Value for a curve whose scalars
// have n octets: two INTEGERs, each possibly with a leading zero octet.
func ecdsaMaxSig(n int) int { return der.ElementLen(2 * der.ElementLen(n+1)) }

// sign hashes tbs once and has the signer sign the digest, then checks the
// signature against the same digest.
func (a sigAlg) sign(signer crypto.Signer, rand io.Reader, tbs []byte) ([]byte, error) {
	h := a.hash.New()
	h.Write(tbs)
	digest := h.Sum(nil)
	sig, err := signer.Sign(rand, digest, a.hash)
	if err != nil {
		return nil, fmt.Errorf("crlenc: signing CRL: %w", err)
	}
	if !a.verify(digest, sig) {
		return nil, errors.New("crlenc: signer returned a signature that does not verify")
	}
	return sig, nil
}
