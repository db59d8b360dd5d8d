package issuer

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/ct"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
)

// issueLogged is Issue with Certificate Transparency (RFC 6962): the
// precertificate is signed and stored under the serial (so OCSP and CRLs
// cover the serial from then on: a logged precertificate counts as an
// issued certificate), logged until the CT policy is met, and the final
// certificate, with the SCTs embedded, replaces it. If the logs cannot
// meet the policy, nothing more is signed: the order is not issued, and
// the precertificate's serial stays in the store, good until it expires
// or someone revokes it.
func (ca *CA) issueLogged(ctx context.Context, r IssueRequest, is *pki.Issuer, sn serial.Serial, sh shard.Index,
	tmpl *x509.Certificate, spki []byte, now time.Time) (store.Certificate, error) {
	if err := ca.ct.CanMeet(tmpl.NotBefore, tmpl.NotAfter); err != nil {
		// Asked before signing: nothing is signed that cannot be completed.
		ca.log.Warn("certificate transparency logs unavailable; nothing signed", "serial", sn, "err", err)
		return store.Certificate{}, &fault.UnavailableError{Detail: "the Certificate Transparency logs this CA uses cannot give enough timestamps right now; nothing was signed"}
	}
	pre := withExtension(tmpl, ct.PoisonExtension())
	preDER, preCert, err := ca.sign(pre, is, r.PublicKey, sn)
	if err != nil {
		return store.Certificate{}, err
	}
	row := store.Certificate{
		Serial: sn, IssuerID: is.ID, Shard: sh, AccountID: r.AccountID, OrderID: r.OrderID,
		DER: preDER, Precertificate: true, NotBefore: preCert.NotBefore, NotAfter: preCert.NotAfter,
		Status: status.Good, KeyHash: KeyHash(spki),
	}
	audit := store.AuditEntry{At: now, Kind: "certificate.precertificate_signed", Actor: orSystem(r.Actor), Subject: string(sn),
		Payload: issuedPayload(r, is, sh, preCert, preDER, nil)}
	if err := ca.store.InsertCertificate(ctx, row, audit); err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: storing precertificate %s: %w", sn, err)
	}
	if ca.sink != nil {
		// OCSP answers for the serial before the precertificate is public.
		if err := ca.sink.CertificateChanged(ctx, row); err != nil {
			ca.log.Error("precertificate stored, but its OCSP response is not ready", "serial", sn, "err", err)
		}
	}
	res, err := ca.ct.SCTs(ctx, ca.chain(preDER, is), preCert.NotBefore, preCert.NotAfter)
	if err != nil {
		ca.auditCTFailure(ctx, sn, r.Actor, res, err)
		var pe *ct.PolicyError
		if errors.As(err, &pe) {
			ca.log.Warn("certificate transparency policy not met; the precertificate stays, nothing more is signed", "serial", sn, "err", err)
			return store.Certificate{}, &fault.UnavailableError{Detail: fmt.Sprintf(
				"the Certificate Transparency logs gave %d of the %d timestamps needed, so no certificate was issued; precertificate %s is covered by OCSP and CRLs",
				pe.Got, pe.Policy.MinSCTs, sn)}
		}
		return store.Certificate{}, fmt.Errorf("issuer: logging precertificate %s: %w", sn, err)
	}
	finalDER, final, err := ca.sign(withExtension(tmpl, res.Extension), is, r.PublicKey, sn)
	if err != nil {
		return store.Certificate{}, err
	}
	if err := ca.ct.VerifyEmbedded(finalDER, is.Cert.Raw); err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: %s: %w", sn, err)
	}
	audit = store.AuditEntry{At: ca.now(), Kind: "certificate.issued", Actor: orSystem(r.Actor), Subject: string(sn),
		Payload: issuedPayload(r, is, sh, final, finalDER, res.SCTs)}
	if err := ca.store.CompleteCertificate(ctx, sn, finalDER, res.List, audit.At, audit); err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: storing %s: %w", sn, err)
	}
	row.DER, row.Precertificate = finalDER, false
	ca.log.Info("certificate issued", "serial", sn, "issuer", is.ID, "profile", r.Profile, "order", r.OrderID, "scts", len(res.SCTs))
	ca.metrics.certificateIssued(is.ID, r.Profile)
	ca.ct.LogFinal(ca.chain(finalDER, is), final.NotAfter)
	return row, nil
}

// withExtension is tmpl with one more extension, placed last: the
// precertificate's poison and the final certificate's SCT list take the
// same place, so that either less its own is the same TBS (RFC 6962 §3.1).
func withExtension(tmpl *x509.Certificate, ext pkix.Extension) *x509.Certificate {
	c := *tmpl
	c.ExtraExtensions = append(append([]pkix.Extension(nil), tmpl.ExtraExtensions...), ext)
	return &c
}

// chain is what the logs are sent: the certificate, its intermediate and
// the root (logs trust roots, not this CA's intermediates).
func (ca *CA) chain(der []byte, is *pki.Issuer) [][]byte {
	c := [][]byte{der, is.Cert.Raw}
	if ca.pki.Root != nil && ca.pki.Root.Cert != nil {
		c = append(c, ca.pki.Root.Cert.Raw)
	}
	return c
}

// auditCTFailure records that the logs did not meet the policy for a
// precertificate, with what each said.
func (ca *CA) auditCTFailure(ctx context.Context, sn serial.Serial, actor string, res ct.Result, cause error) {
	payload, _ := json.Marshal(map[string]any{"error": cause.Error(), "scts": res.SCTs})
	if _, err := ca.store.AppendAudit(ctx, store.AuditEntry{At: ca.now(), Kind: "ct.policy_unmet", Actor: orSystem(actor), Subject: string(sn), Payload: payload}); err != nil {
		ca.log.Error("auditing a CT failure", "serial", sn, "err", err)
	}
}
