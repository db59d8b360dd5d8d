package watch

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// OCSPCheck checks OCSP responses as relying parties receive them.
type OCSPCheck struct {
	HTTP *http.Client     // nil: a client with a 10 s timeout
	Now  func() time.Time // nil: time.Now
	// RevocationDelay is how long after a revocation every URL must
	// answer revoked (what the plant promises: the pre-signer writes at
	// once, a CDN purge follows); before it, good is no finding yet.
	RevocationDelay time.Duration
	// CacheSlack is how far past half its validity a response may be
	// when it is fetched (a CDN may hold a response that long after the
	// pre-signer replaced it); 0 means 1 hour.
	CacheSlack time.Duration
	// Skew tolerated between this clock and the signer's; 0 means 5 min.
	Skew time.Duration
	// Observe, if set, learns of every response that parsed and verified.
	Observe func(Observation)
}

// Observation is what was learnt of one object that parsed and verified,
// findings or not: how old it was when fetched.
type Observation struct {
	Object                 string // "ocsp" or "crl"
	URL                    string
	ThisUpdate, NextUpdate time.Time
	At                     time.Time // fetched
}

// MaxOCSPValidity is BR 4.9.10's longest interval between thisUpdate and
// nextUpdate of a subscriber certificate's response.
const MaxOCSPValidity = 10 * 24 * time.Hour

// OCSPSubject is a certificate as the store has it, with its issuer.
type OCSPSubject struct {
	Cert   store.CertSummary
	Issuer *x509.Certificate
}

// Check fetches the response for s from the OCSP URL base (the CDN's or a
// responder's, ending in "/") by GET (RFC 5019) and returns what
// disagrees. No findings means all is well.
func (c *OCSPCheck) Check(ctx context.Context, base string, s OCSPSubject) []Finding {
	c.defaults()
	f := func(k Kind, ev Evidence, format string, args ...any) Finding {
		return Finding{Kind: k, Object: "ocsp", URL: base, Serial: s.Cert.Serial.String(), Issuer: string(s.Cert.IssuerID), Detail: fmt.Sprintf(format, args...), Fetched: ev}
	}
	sn, ok := new(big.Int).SetString(s.Cert.Serial.String(), 16)
	if !ok {
		return []Finding{f(Malformed, Evidence{}, "the store's serial %q is not hexadecimal", s.Cert.Serial)}
	}
	req, err := request(s.Issuer, sn)
	if err != nil {
		return []Finding{f(Malformed, Evidence{}, "building the request: %v", err)}
	}
	u := strings.TrimSuffix(base, "/") + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(req))
	ev, err := fetch(ctx, c.HTTP, u, c.Now)
	if err != nil {
		return []Finding{f(Unreachable, ev, "%v", err)}
	}
	if ev.Status != http.StatusOK {
		return []Finding{f(Unreachable, ev, "HTTP %d", ev.Status)}
	}
	resp, err := ocsp.ParseResponse(ev.Body, s.Issuer)
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return []Finding{f(ErrorStatus, ev, "the responder answered %s", re.Status)}
	}
	if err != nil {
		// x/crypto/ocsp says "bad OCSP signature" or "bad signature on
		// embedded certificate" for a response that parses but does not
		// verify against the issuer.
		k := Malformed
		if strings.Contains(err.Error(), "signature") {
			k = BadSignature
		}
		return []Finding{f(k, ev, "%v", err)}
	}
	var out []Finding
	if resp.SerialNumber.Cmp(sn) != 0 {
		return []Finding{f(WrongSubject, ev, "the response is about serial %x", resp.SerialNumber)}
	}
	now := ev.At
	if c.Observe != nil {
		c.Observe(Observation{Object: "ocsp", URL: base, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate, At: now})
	}
	switch {
	case !now.Before(resp.NextUpdate):
		out = append(out, f(Expired, ev, "nextUpdate %s has passed (fetched %s)", stamp(resp.NextUpdate), stamp(now)))
	case resp.ThisUpdate.After(now.Add(c.Skew)):
		out = append(out, f(NotYetValid, ev, "thisUpdate %s is in the future (fetched %s)", stamp(resp.ThisUpdate), stamp(now)))
	}
	validity := resp.NextUpdate.Sub(resp.ThisUpdate)
	if validity > MaxOCSPValidity {
		out = append(out, f(ValidityTooLong, ev, "valid %v, more than BR 4.9.10's 10 days", validity))
	}
	// BR 4.9.10: a response valid 16 hours or more is replaced before half
	// its validity has run.
	if validity >= 16*time.Hour && now.After(resp.ThisUpdate.Add(validity/2+c.CacheSlack)) {
		out = append(out, f(Stale, ev, "thisUpdate %s: more than half of its %v validity (and %v of caching) ago", stamp(resp.ThisUpdate), validity, c.CacheSlack))
	}
	if until, ok := cacheUntil(ev.Header, now); ok && until.After(resp.NextUpdate.Add(c.Skew)) {
		out = append(out, f(CacheOutlives, ev, "caches may keep it until %s, past its nextUpdate %s (Cache-Control %q, Expires %q)",
			stamp(until), stamp(resp.NextUpdate), ev.Header.Get("Cache-Control"), ev.Header.Get("Expires")))
	}
	out = append(out, c.compare(s.Cert, resp, ev, f)...)
	return out
}

// compare checks the response's status against the store's.
func (c *OCSPCheck) compare(want store.CertSummary, resp *ocsp.Response, ev Evidence, f func(Kind, Evidence, string, ...any) Finding) []Finding {
	switch {
	case want.Status == status.Revoked && resp.Status == ocsp.Good:
		if ev.At.Sub(want.RevokedAt) < c.RevocationDelay {
			return nil // still within the promised delay
		}
		return []Finding{f(StatusMismatch, ev, "good, but revoked in the store since %s (%v ago; the promise is %v)",
			stamp(want.RevokedAt), ev.At.Sub(want.RevokedAt).Round(time.Second), c.RevocationDelay)}
	case want.Status == status.Good && resp.Status != ocsp.Good:
		return []Finding{f(StatusMismatch, ev, "%s, but good in the store", statusName(resp.Status))}
	case want.Status == status.Revoked && resp.Status == ocsp.Revoked:
		var out []Finding
		if got := reason.Reason(resp.RevocationReason); got != want.Reason && !(want.Reason == reason.Unspecified && got == 0) {
			out = append(out, f(ReasonMismatch, ev, "reason %s, the store says %s", got, want.Reason))
		}
		// Both to the second: OCSP's GeneralizedTime carries no fraction.
		if !resp.RevokedAt.Equal(want.RevokedAt.Truncate(time.Second)) {
			out = append(out, f(TimeMismatch, ev, "revoked at %s, the store says %s", stamp(resp.RevokedAt), stamp(want.RevokedAt)))
		}
		return out
	case resp.Status == ocsp.Unknown:
		return []Finding{f(StatusMismatch, ev, "unknown, but the store has the certificate (%s)", want.Status)}
	}
	return nil
}

// request is the DER OCSP request for serial sn of issuer, SHA-1 CertID
// (what RFC 5019 clients send).
func request(issuer *x509.Certificate, sn *big.Int) ([]byte, error) {
	tmpl := &x509.Certificate{SerialNumber: sn, Issuer: issuer.Subject, RawIssuer: issuer.RawSubject}
	return ocsp.CreateRequest(tmpl, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
}

func (c *OCSPCheck) defaults() {
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CacheSlack == 0 {
		c.CacheSlack = time.Hour
	}
	if c.Skew == 0 {
		c.Skew = 5 * time.Minute
	}
}

func statusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
