package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
)

// Revoker is what revocation needs of the CA (*issuer.CA).
type Revoker interface {
	Revoke(ctx context.Context, r issuer.RevokeRequest) (store.Certificate, error)
	// RevokeKey blocks a certificate's key and revokes every certificate
	// issued with it (keyCompromise proven by a signature with the key).
	RevokeKey(ctx context.Context, sn serial.Serial, actor string) ([]store.Certificate, []serial.Serial, error)
}

// revokeCert is §7.6: a certificate is revoked at the request of the
// account that ordered it, of an account whose Trustline account holds
// valid validations of every name in it, or of whoever holds its private
// key (a jwk request signed with it). Reasons are those BR §7.2.2 lets a
// subscriber give; keyCompromise proven with the key blocks the key and
// revokes every certificate that has it.
func (s *Server) revokeCert(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byEither)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err := decodePayload(q.payload, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	der, err := base64.RawURLEncoding.Strict().DecodeString(req.Certificate)
	if err != nil || len(der) == 0 {
		s.fail(w, r, Problemf(Malformed, "certificate must be a DER certificate in base64url without padding"))
		return
	}
	rs := reason.Unspecified
	if req.Reason != nil {
		if rs, err = reason.FromCode(*req.Reason); err != nil || !rs.AllowedForSubscriber() || rs == reason.PrivilegeWithdrawn {
			s.fail(w, r, Problemf(BadRevocationReason, "reason %d is not one a subscriber may give (BR 7.2.2): 0, 1, 3, 4 or 5", *req.Reason))
			return
		}
	}
	ctx := r.Context()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.fail(w, r, Problemf(Malformed, "the certificate cannot be parsed"))
		return
	}
	sn, err := serial.FromBigInt(cert.SerialNumber)
	if err != nil {
		s.fail(w, r, Problemf(Unauthorized, "this CA did not issue the certificate"))
		return
	}
	c, err := s.d.Store.Certificate(ctx, sn)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !bytes.Equal(c.DER, der)) {
		s.fail(w, r, Problemf(Unauthorized, "this CA did not issue the certificate"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	actor, err := s.mayRevoke(ctx, q, c, cert)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Status == status.Revoked {
		s.fail(w, r, Problemf(AlreadyRevoked, "the certificate was revoked already"))
		return
	}
	if q.account == nil && rs == reason.KeyCompromise {
		revoked, _, err := s.d.CA.RevokeKey(ctx, c.Serial, actor)
		for _, rc := range revoked {
			s.d.Orders.NotifyRevoked(ctx, rc, actor)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.d.Log.Info("acme revocation by key: key blocked", "serial", c.Serial, "revoked", len(revoked))
		s.ok(w)
		return
	}
	got, err := s.d.CA.Revoke(ctx, issuer.RevokeRequest{Serial: c.Serial, Reason: rs, Actor: actor})
	if errors.Is(err, store.ErrAlreadyRevoked) {
		s.fail(w, r, Problemf(AlreadyRevoked, "the certificate was revoked already"))
		return
	}
	if err != nil && got.Serial == "" {
		s.fail(w, r, err)
		return
	}
	s.d.Orders.NotifyRevoked(ctx, got, actor)
	s.d.Log.Info("acme revocation", "serial", c.Serial, "reason", rs, "by_key", q.account == nil)
	s.ok(w)
}

// ok answers 200 with an empty body and a fresh nonce.
func (s *Server) ok(w http.ResponseWriter) {
	s.setNonce(w)
	w.WriteHeader(http.StatusOK)
}

// mayRevoke applies §7.6's authorization and returns the actor the
// audit names: the Trustline account, or "acme-key:<thumbprint>" for a
// request signed with the certificate's key.
func (s *Server) mayRevoke(ctx context.Context, q *request, c store.Certificate, cert *x509.Certificate) (string, error) {
	if q.account == nil {
		certKey := jose.JSONWebKey{Key: cert.PublicKey}
		want, err1 := thumbprint(&certKey)
		got, err2 := thumbprint(q.key)
		if err1 != nil || err2 != nil || want != got {
			return "", Problemf(Unauthorized, "the request is signed neither by an account nor by the certificate's key")
		}
		return "acme-key:" + got, nil
	}
	if q.account.AccountID == c.AccountID {
		return q.account.AccountID, nil
	}
	covering, err := s.d.Validations.Covering(ctx, q.account.AccountID, cert.DNSNames)
	if err != nil {
		return "", err
	}
	var missing []string
	for i, v := range covering {
		if v == nil {
			missing = append(missing, cert.DNSNames[i])
		}
	}
	if len(cert.DNSNames) == 0 || len(missing) > 0 {
		return "", Problemf(Unauthorized, "the account neither ordered the certificate nor holds valid authorizations for %s", truncate(strings.Join(missing, ", "), 300))
	}
	return q.account.AccountID, nil
}
