package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// ACME Renewal Information (RFC 9773): when a client should renew a
// certificate. Normally in the last third of its lifetime (from two
// thirds to five sixths of the way), so that renewals spread out and a
// failed one has time to be retried; at once for a revoked certificate.

// ariRetryAfter is how long a client waits before asking again (§4.3).
const ariRetryAfter = 6 * time.Hour

// CertID is RFC 9773 §4.1's certificate identifier: the base64url
// keyIdentifier of the certificate's authority key identifier, ".", and
// the base64url DER content of its serial number.
func CertID(c *x509.Certificate) string {
	sn := c.SerialNumber.Bytes()
	if len(sn) > 0 && sn[0]&0x80 != 0 {
		sn = append([]byte{0}, sn...) // DER INTEGER content of a positive number
	}
	return base64.RawURLEncoding.EncodeToString(c.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(sn)
}

// parseCertID splits a certificate identifier into its authority key
// identifier and serial.
func parseCertID(id string) ([]byte, serial.Serial, error) {
	bad := Problemf(Malformed, "%q is not a certificate identifier (RFC 9773 §4.1)", truncate(id, 100))
	a, s, ok := strings.Cut(id, ".")
	if !ok {
		return nil, "", bad
	}
	aki, err1 := base64.RawURLEncoding.Strict().DecodeString(a)
	sn, err2 := base64.RawURLEncoding.Strict().DecodeString(s)
	if err1 != nil || err2 != nil || len(aki) == 0 || len(sn) == 0 {
		return nil, "", bad
	}
	if len(sn) > 1 && sn[0] == 0 && sn[1]&0x80 != 0 {
		sn = sn[1:]
	}
	n, err := serial.FromBytes(sn)
	if err != nil {
		return nil, "", bad
	}
	return aki, n, nil
}

// certByID finds the certificate a certificate identifier names.
func (s *Server) certByID(ctx context.Context, id string) (store.Certificate, *x509.Certificate, error) {
	aki, sn, err := parseCertID(id)
	if err != nil {
		return store.Certificate{}, nil, err
	}
	notFound := &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "this CA issued no certificate with that identifier"}
	c, err := s.d.Store.Certificate(ctx, sn)
	if errors.Is(err, store.ErrNotFound) {
		return store.Certificate{}, nil, notFound
	}
	if err != nil {
		return store.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return store.Certificate{}, nil, err
	}
	if !bytes.Equal(cert.AuthorityKeyId, aki) {
		return store.Certificate{}, nil, notFound
	}
	return c, cert, nil
}

// ariPlannedRetryAfter is the Retry-After while a revocation is planned:
// deadlines are a day or a few, and the plan may be cancelled.
const ariPlannedRetryAfter = time.Hour

// renewalWindow is the suggested window of a certificate, given the
// revocation planned for it (nil if none).
func renewalWindow(c store.Certificate, cert *x509.Certificate, plan *store.PlannedRevocation) (start, end time.Time) {
	if c.Status == status.Revoked {
		// In the past: renew at once (§4.2).
		return c.RevokedAt.Add(-time.Hour), c.RevokedAt
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	start, end = cert.NotBefore.Add(life*2/3), cert.NotBefore.Add(life*5/6)
	if plan == nil {
		return start, end
	}
	// Revocation is planned: the window opens when the plan was made (or
	// earlier, as it was) and closes halfway to the deadline, leaving the
	// other half for clients that renew late or fail once (§4.3.3).
	if plan.CreatedAt.Before(start) {
		start = plan.CreatedAt
	}
	if half := plan.CreatedAt.Add(plan.RevokeBy.Sub(plan.CreatedAt) / 2); half.Before(end) {
		end = half
	}
	if !end.After(start) {
		end = start.Add(time.Minute)
	}
	return start, end
}

// renewalInfo is RFC 9773 §4.2: GET, unauthenticated.
func (s *Server) renewalInfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, cert, err := s.certByID(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var plan *store.PlannedRevocation
	if c.Status != status.Revoked {
		p, err := s.d.Store.PlannedRevocation(ctx, c.Serial)
		switch {
		case err == nil:
			plan = &p
		case !errors.Is(err, store.ErrNotFound):
			s.fail(w, r, err)
			return
		}
	}
	start, end := renewalWindow(c, cert, plan)
	retry := ariRetryAfter
	body := map[string]any{"suggestedWindow": map[string]string{"start": rfc3339(start), "end": rfc3339(end)}}
	if plan != nil {
		retry = ariPlannedRetryAfter
		if plan.ExplanationURL != "" {
			body["explanationURL"] = plan.ExplanationURL
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
	s.json(w, http.StatusOK, body)
}

// checkReplaces is RFC 9773 §5: the certificate an order replaces must be
// one of the account's, not replaced by another order already.
func (s *Server) checkReplaces(ctx context.Context, acct *store.ACMEAccount, id string) error {
	c, _, err := s.certByID(ctx, id)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return Problemf(Malformed, "replaces: %s", p.Detail)
		}
		return err
	}
	if c.AccountID != acct.AccountID {
		return Problemf(Unauthorized, "replaces names a certificate of another account")
	}
	orders, err := s.d.Store.ACMEOrders(ctx, acct.ID, 0)
	if err != nil {
		return err
	}
	for _, o := range orders {
		if o.Replaces == id && o.Status != store.ACMEOrderInvalid {
			return &Problem{Type: AlreadyReplaced, Status: http.StatusConflict, Detail: "another order replaces this certificate already"}
		}
	}
	return nil
}
