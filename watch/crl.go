package watch

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
)

// CRLCheck checks CRLs as relying parties receive them. It parses what it
// fetches itself, sharing no code with the CRL generator it checks.
type CRLCheck struct {
	HTTP *http.Client     // nil: a client with a 30 s timeout
	Now  func() time.Time // nil: time.Now
	// RevocationDelay is how long after a revocation its shard must list
	// it everywhere (the generator's revocation delay, plus a CDN's TTL).
	RevocationDelay time.Duration
	// Skew tolerated between this clock and the signer's; 0 means 5 min.
	Skew time.Duration
	// Observe, if set, learns of every CRL that parsed and verified.
	Observe func(Observation)
}

const (
	// MaxCRLValidity is BR 4.9.7's longest interval between thisUpdate
	// and nextUpdate of a CRL for subscriber certificates.
	MaxCRLValidity = 10 * 24 * time.Hour
	// MaxCRLAge is BR 4.9.7's longest time between two CRLs.
	MaxCRLAge = 7 * 24 * time.Hour
)

var (
	oidIDP        = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}
)

// CRLSubject is one shard as the store has it.
type CRLSubject struct {
	Issuer *x509.Certificate
	// IDP is the distribution point the shard's certificates name: its
	// issuingDistributionPoint must be exactly this URL, whichever URL
	// (CDN or origin) it is fetched from.
	IDP string
	// Revoked are the store's revoked certificates of the shard, expired
	// ones included (a CRL may keep those).
	Revoked []store.CertSummary
	// LastNumber is the highest CRL number seen before at this URL; nil
	// if none. (A CDN may hold an older CRL than its origin: numbers are
	// compared per URL.)
	LastNumber *big.Int
}

// Check fetches the CRL at url and returns its number (nil if it could
// not be read) and what disagrees.
func (c *CRLCheck) Check(ctx context.Context, url string, s CRLSubject) (*big.Int, []Finding) {
	c.defaults()
	f := func(k Kind, ev Evidence, serial, format string, args ...any) Finding {
		return Finding{Kind: k, Object: "crl", URL: url, Serial: serial, Detail: fmt.Sprintf(format, args...), Fetched: ev}
	}
	ev, err := fetch(ctx, c.HTTP, url, c.Now)
	if err != nil {
		return nil, []Finding{f(Unreachable, ev, "", "%v", err)}
	}
	if ev.Status != http.StatusOK {
		return nil, []Finding{f(Unreachable, ev, "", "HTTP %d", ev.Status)}
	}
	crl, err := x509.ParseRevocationList(ev.Body)
	if err != nil {
		return nil, []Finding{f(Malformed, ev, "", "%v", err)}
	}
	if err := crl.CheckSignatureFrom(s.Issuer); err != nil {
		return nil, []Finding{f(BadSignature, ev, "", "%v", err)}
	}
	var out []Finding
	now := ev.At
	if c.Observe != nil {
		c.Observe(Observation{Object: "crl", URL: url, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate, At: now})
	}
	if s.LastNumber != nil && crl.Number.Cmp(s.LastNumber) < 0 {
		out = append(out, f(NumberBackwards, ev, "", "CRL number %s after %s was seen", crl.Number, s.LastNumber))
	}
	switch {
	case !now.Before(crl.NextUpdate):
		out = append(out, f(Expired, ev, "", "nextUpdate %s has passed (fetched %s)", stamp(crl.NextUpdate), stamp(now)))
	case crl.ThisUpdate.After(now.Add(c.Skew)):
		out = append(out, f(NotYetValid, ev, "", "thisUpdate %s is in the future", stamp(crl.ThisUpdate)))
	}
	if v := crl.NextUpdate.Sub(crl.ThisUpdate); v > MaxCRLValidity {
		out = append(out, f(ValidityTooLong, ev, "", "valid %v, more than BR 4.9.7's 10 days", v))
	}
	if age := now.Sub(crl.ThisUpdate); age > MaxCRLAge {
		out = append(out, f(Stale, ev, "", "thisUpdate %s is %v old; BR 4.9.7 wants a new CRL every 7 days", stamp(crl.ThisUpdate), age.Round(time.Minute)))
	}
	if until, ok := cacheUntil(ev.Header, now); ok && until.After(crl.NextUpdate.Add(c.Skew)) {
		out = append(out, f(CacheOutlives, ev, "", "caches may keep it until %s, past its nextUpdate %s", stamp(until), stamp(crl.NextUpdate)))
	}
	if got, err := idpOf(crl); err != nil {
		out = append(out, f(WrongIDP, ev, "", "%v", err))
	} else if got != s.IDP {
		out = append(out, f(WrongIDP, ev, "", "issuingDistributionPoint %q; the certificates name %q", got, s.IDP))
	}
	out = append(out, c.entries(crl, s, ev, f)...)
	return crl.Number, out
}

// entries compares the CRL's entries with the store's revocations.
func (c *CRLCheck) entries(crl *x509.RevocationList, s CRLSubject, ev Evidence, f func(Kind, Evidence, string, string, ...any) Finding) []Finding {
	var out []Finding
	want := map[string]store.CertSummary{}
	for _, r := range s.Revoked {
		want[r.Serial.String()] = r
	}
	listed := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		sn := fmt.Sprintf("%x", e.SerialNumber)
		if len(sn)%2 == 1 {
			sn = "0" + sn
		}
		listed[sn] = true
		r, ok := want[sn]
		if !ok {
			out = append(out, f(StatusMismatch, ev, sn, "listed, but not revoked in the store"))
			continue
		}
		rs, encoded, err := reasonOf(e)
		switch {
		case err != nil:
			out = append(out, f(Malformed, ev, sn, "%v", err))
		case encoded && !allowedOnCRL(rs):
			out = append(out, f(BadReason, ev, sn, "reason %s is not allowed on a subscriber CRL (BR 7.2.2)", rs))
		case rs != r.Reason:
			out = append(out, f(ReasonMismatch, ev, sn, "reason %s, the store says %s", rs, r.Reason))
		}
		if !e.RevocationTime.Equal(r.RevokedAt.Truncate(time.Second)) {
			out = append(out, f(TimeMismatch, ev, sn, "revoked at %s, the store says %s", stamp(e.RevocationTime), stamp(r.RevokedAt)))
		}
	}
	for sn, r := range want {
		// Expired certificates may leave the CRL; a revocation newer than
		// the promised delay need not be on it yet.
		if listed[sn] || !r.NotAfter.After(crl.ThisUpdate) || ev.At.Sub(r.RevokedAt) < c.RevocationDelay {
			continue
		}
		out = append(out, f(MissingEntry, ev, sn, "revoked in the store since %s (%v ago), not listed (thisUpdate %s)",
			stamp(r.RevokedAt), ev.At.Sub(r.RevokedAt).Round(time.Second), stamp(crl.ThisUpdate)))
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Compare(string(a.Kind)+a.Serial, string(b.Kind)+b.Serial)
	})
	return out
}

// reasonOf reads an entry's reasonCode: encoded is false when the entry
// has none (unspecified, which BR 7.2.2 wants left out).
func reasonOf(e x509.RevocationListEntry) (reason.Reason, bool, error) {
	for _, x := range e.Extensions {
		if !x.Id.Equal(oidReasonCode) {
			continue
		}
		var v asn1.Enumerated
		if rest, err := asn1.Unmarshal(x.Value, &v); err != nil || len(rest) > 0 {
			return 0, true, fmt.Errorf("reasonCode does not parse: %v", err)
		}
		return reason.Reason(v), true, nil
	}
	return reason.Unspecified, false, nil
}

// allowedOnCRL is BR 7.2.2's list for subscriber CRL entries; unspecified
// is allowed only by leaving reasonCode out.
func allowedOnCRL(r reason.Reason) bool {
	switch r {
	case reason.KeyCompromise, reason.AffiliationChanged, reason.Superseded, reason.CessationOfOperation, reason.PrivilegeWithdrawn:
		return true
	}
	return false
}

// idpOf reads the CRL's issuingDistributionPoint: its one fullName URI.
func idpOf(crl *x509.RevocationList) (string, error) {
	for _, x := range crl.Extensions {
		if !x.Id.Equal(oidIDP) {
			continue
		}
		in := cryptobyte.String(x.Value)
		var seq, dp, full, uri cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) ||
			!seq.ReadASN1(&dp, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
			!dp.ReadASN1(&full, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
			!full.ReadASN1(&uri, cbasn1.Tag(6).ContextSpecific()) || !full.Empty() {
			return "", errors.New("issuingDistributionPoint has no fullName of one URI")
		}
		return string(uri), nil
	}
	return "", errors.New("no issuingDistributionPoint")
}

// CheckIndex fetches an issuer's crls.json at url and reports the shard
// URLs in want it does not list.
func (c *CRLCheck) CheckIndex(ctx context.Context, url string, want []string) []Finding {
	c.defaults()
	f := func(k Kind, ev Evidence, format string, args ...any) Finding {
		return Finding{Kind: k, Object: "crl", URL: url, Detail: fmt.Sprintf(format, args...), Fetched: ev}
	}
	ev, err := fetch(ctx, c.HTTP, url, c.Now)
	if err != nil {
		return []Finding{f(Unreachable, ev, "%v", err)}
	}
	if ev.Status != http.StatusOK {
		return []Finding{f(Unreachable, ev, "HTTP %d", ev.Status)}
	}
	var listed []string
	if err := json.Unmarshal(ev.Body, &listed); err != nil {
		return []Finding{f(Malformed, ev, "crls.json is not a list of URLs: %v", err)}
	}
	var out []Finding
	for _, w := range want {
		if !slices.Contains(listed, w) {
			out = append(out, f(MissingShard, ev, "does not list %s", w))
		}
	}
	return out
}

func (c *CRLCheck) defaults() {
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Skew == 0 {
		c.Skew = 5 * time.Minute
	}
}
