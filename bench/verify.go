package bench

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/status"
)

// clockSkew is how far in the future a response's thisUpdate may be
// before the bench calls it wrong: responders backdate, they never
// postdate by more than clock drift.
const clockSkew = 5 * time.Minute

// verifyOCSP checks a DER OCSPResponse as a relying party would, against
// what the store says, so that a fast wrong answer never counts as a
// success:
//   - a known certificate gets a successful response signed by its
//     issuer or by a responder certificate the issuer signed, about the
//     asked serial, with the asked CertID hash algorithm, with the
//     store's status, thisUpdate not in the future and nextUpdate not past;
//   - a never-issued serial gets "unauthorized" (RFC 9919 §2.2.3) or a
//     signed "unknown" (or "revoked", RFC 6960 §2.2) — never "good"
//     (DESIGN invariant 2).
func verifyOCSP(e *expect, body []byte, now time.Time) error {
	resp, err := ocsp.ParseResponseForCert(body, &x509.Certificate{SerialNumber: e.sn}, e.issuer.Cert)
	if re, ok := errors.AsType[ocsp.ResponseError](err); ok {
		if e.unknown && re.Status == ocsp.Unauthorized {
			return nil
		}
		return fail("ocsp_"+responseStatusName(re.Status), fmt.Errorf("serial %x: %w", e.sn, err))
	}
	if err != nil {
		return fail("verify", fmt.Errorf("serial %x: %w", e.sn, err))
	}
	if resp.IssuerHash != e.hash {
		return fail("hash", fmt.Errorf("serial %x: asked with %v, answered with %v", e.sn, e.hash, resp.IssuerHash))
	}
	if e.unknown {
		if resp.Status == ocsp.Good {
			return fail("good_for_unknown", fmt.Errorf("never-issued serial %x answered good", e.sn))
		}
	} else if got := statusOf(resp.Status); got != e.status {
		return fail("status", fmt.Errorf("serial %x: answered %v, the store says %v", e.sn, got, e.status))
	}
	switch {
	case resp.NextUpdate.IsZero():
		return fail("stale", fmt.Errorf("serial %x: no nextUpdate", e.sn))
	case !now.Before(resp.NextUpdate):
		return fail("stale", fmt.Errorf("serial %x: nextUpdate %v is past", e.sn, resp.NextUpdate))
	case resp.ThisUpdate.After(now.Add(clockSkew)):
		return fail("stale", fmt.Errorf("serial %x: thisUpdate %v is in the future", e.sn, resp.ThisUpdate))
	}
	return nil
}

func statusOf(s int) status.Status {
	switch s {
	case ocsp.Good:
		return status.Good
	case ocsp.Revoked:
		return status.Revoked
	}
	return status.Unknown
}

// responseStatusName is the RFC 6960 name of a responseStatus, in the
// form errors_by_kind uses.
func responseStatusName(s ocsp.ResponseStatus) string {
	return strings.ReplaceAll(strings.ToLower(s.String()), " ", "_")
}
