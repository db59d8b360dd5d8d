package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/profile"
)

// Ordering is what finalization needs of the order service
// (*issuer.Orders): the same checks, CAA, Manual Review List, review
// queue and signing as an order through the API.
type Ordering interface {
	Create(ctx context.Context, acct store.Account, r issuer.OrderRequest) (store.Order, error)
	// NotifyRevoked mails the certificate's account of its revocation.
	NotifyRevoked(ctx context.Context, c store.Certificate, actor string)
}

// CertStore is the subset of the store finalization and certificate
// download read.
type CertStore interface {
	Order(ctx context.Context, id string) (store.Order, error)
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
}

// processingRetryAfter is the Retry-After of an order in processing: a
// review by people takes minutes at least.
const processingRetryAfter = 30

// finalize is §7.4: a ready order is given its CSR and becomes a
// Trustline order, signed at once (valid) or queued for the review
// (processing until reviewers decide).
func (s *Server) finalize(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	o, err := s.ownOrder(ctx, q, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if o, err = s.refreshOrder(ctx, o); err != nil {
		s.fail(w, r, err)
		return
	}
	if o.Status != store.ACMEOrderReady {
		s.fail(w, r, Problemf(OrderNotReady, "the order is %s, not ready: every authorization must be valid first", o.Status))
		return
	}
	var req struct {
		CSR string `json:"csr"`
	}
	if err := decodePayload(q.payload, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	der, err := base64.RawURLEncoding.Strict().DecodeString(req.CSR)
	if err != nil || len(der) == 0 {
		s.fail(w, r, Problemf(BadCSR, "csr must be a DER CSR in base64url without padding"))
		return
	}
	if err := csrNamesMatch(der, o.Names); err != nil {
		s.fail(w, r, err)
		return
	}
	owner, err := s.d.Store.Account(ctx, q.account.AccountID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req2 := issuer.OrderRequest{CSR: der, Profile: "dv", Validity: s.profileValidity(o.Profile), AccountURI: s.url(pathAccount + q.account.ID)}
	if err := s.boundProfile(ctx, q.account, &req2); err != nil {
		s.fail(w, r, err)
		return
	}
	// Claim the order and name the Trustline order it becomes: of two
	// finalizations at once, one goes on. From here the order follows
	// that Trustline order (followOrder), whatever becomes of this
	// request: settled by the order service, or found never made and
	// closed once finalizeGrace has passed.
	o.Status, o.OrderID, o.FinalizedAt = store.ACMEOrderProcessing, issuer.NewID("ord_"), s.d.Now()
	req2.ID = o.OrderID
	if o, err = s.d.Store.UpdateACMEOrder(ctx, o); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = Problemf(OrderNotReady, "the order is being finalized by another request")
		}
		s.fail(w, r, err)
		return
	}
	ctx = context.WithoutCancel(ctx)
	ord, err := s.d.Orders.Create(ctx, owner, req2)
	if err != nil {
		if o, ord, err = s.finalizeFailed(ctx, o, err); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		o.Status = orderStatusOf(ord)
		if ord.Status == store.OrderRejected {
			o.Error, _ = json.Marshal(Problemf(Unauthorized, "the order was rejected: %s", ord.RejectReason))
		}
		updated, err := s.d.Store.UpdateACMEOrder(ctx, o)
		if err != nil {
			// The order service settled the order, so the answer stands;
			// the stored ACME order catches up when next read.
			s.d.Log.Error("acme: recording a finalized order", "acme_order", o.ID, "order", ord.ID, "err", err)
		} else {
			o = updated
		}
	}
	s.d.Log.Info("acme order finalized", "acme_order", o.ID, "order", o.OrderID, "status", o.Status)
	s.writeOrder(w, o, ord)
}

// boundProfile makes the order OV or EV, for the organization, when the
// account was bound with a key that says so.
func (s *Server) boundProfile(ctx context.Context, acct *store.ACMEAccount, req *issuer.OrderRequest) error {
	if acct.EABKeyID == "" {
		return nil
	}
	k, err := s.d.Store.ACMEEABKey(ctx, acct.EABKeyID)
	if err != nil {
		return fmt.Errorf("acme: reading the binding key of %s: %w", acct.ID, err)
	}
	if k.CertProfile == "" || k.CertProfile == "dv" {
		return nil
	}
	var org profile.Organization
	if err := json.Unmarshal(k.Organization, &org); err != nil {
		return fmt.Errorf("acme: binding key %s: organization: %w", k.ID, err)
	}
	req.Profile, req.Organization = k.CertProfile, &org
	return nil
}

// finalizeFailed records why the order service refused a finalization.
// The client's faults (the CSR, a name CAA forbids, validation no longer
// covering a name) make the order invalid with that problem. The CA's own
// (store down, rate limit, perspectives unavailable) put it back to ready
// for a retry, and the error is answered, unless the Trustline order was
// made before the failure (signing failed): the order service retries
// that one, so the ACME order stays processing and follows it.
func (s *Server) finalizeFailed(ctx context.Context, o store.ACMEOrder, cause error) (store.ACMEOrder, store.Order, error) {
	var (
		in *fault.InputError
		fb *fault.ForbiddenError
	)
	var p *Problem
	switch {
	case errors.As(cause, &in):
		p = Problemf(BadCSR, "%s", in.Detail)
	case errors.As(cause, &fb) && (errors.Is(cause, caa.ErrForbidden) || errors.Is(cause, caa.ErrLookup)):
		p = Problemf(CAA, "%s", fb.Detail)
	case errors.As(cause, &fb) && errors.Is(cause, issuer.ErrKeyBlocked):
		p = Problemf(BadCSR, "%s", fb.Detail)
	case errors.As(cause, &fb):
		p = Problemf(Unauthorized, "%s", fb.Detail)
	case errors.Is(cause, issuer.ErrNoIssuer):
		p = Problemf(BadCSR, "no intermediate of this CA issues for this key type; use an ECDSA P-256 or RSA key")
	default:
		ord, err := s.d.Store.Order(ctx, o.OrderID)
		if err == nil {
			s.d.Log.Warn("acme: finalization failed after its order was made; the order service retries it",
				"acme_order", o.ID, "order", o.OrderID, "err", cause)
			return o, ord, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			// Unknown whether the order was made: leave the ACME order
			// processing; followOrder settles it.
			return o, store.Order{}, cause
		}
		o.Status, o.OrderID, o.FinalizedAt = store.ACMEOrderReady, "", time.Time{}
		if _, err := s.d.Store.UpdateACMEOrder(ctx, o); err != nil {
			s.d.Log.Error("acme: putting an order back to ready", "acme_order", o.ID, "err", err)
		}
		return o, store.Order{}, cause
	}
	o.Status = store.ACMEOrderInvalid
	o.Error, _ = json.Marshal(p)
	updated, err := s.d.Store.UpdateACMEOrder(ctx, o)
	if err != nil {
		return o, store.Order{}, err
	}
	return updated, store.Order{}, p
}

// orderStatusOf maps a Trustline order's status to its ACME order's.
func orderStatusOf(ord store.Order) store.ACMEOrderStatus {
	switch ord.Status {
	case store.OrderIssued:
		return store.ACMEOrderValid
	case store.OrderRejected:
		return store.ACMEOrderInvalid
	}
	return store.ACMEOrderProcessing
}

// writeOrder answers an order with its certificate URL once valid and a
// Retry-After while the review or the signing goes on.
func (s *Server) writeOrder(w http.ResponseWriter, o store.ACMEOrder, ord store.Order) {
	cert := ""
	if o.Status == store.ACMEOrderValid && ord.Serial != "" {
		cert = s.url(pathCert + ord.Serial.String())
	}
	if o.Status == store.ACMEOrderProcessing {
		w.Header().Set("Retry-After", strconv.Itoa(processingRetryAfter))
	}
	w.Header().Set("Location", s.url(pathOrder+o.ID))
	s.json(w, http.StatusOK, s.orderJSON(o, cert))
}

// finalizeGrace is how long after its claim a finalization may still be
// making its Trustline order. Past it, an ACME order whose Trustline order
// does not exist was cut short (its instance stopped) and is closed.
// Far longer than any request lives.
const finalizeGrace = 10 * time.Minute

// followOrder brings a processing order up to date with its Trustline
// order: issued, rejected by reviewers, still waiting, or never made.
func (s *Server) followOrder(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, store.Order, error) {
	if o.OrderID == "" {
		// Claimed before the claim named its Trustline order (an order
		// of an older version): closed once it has expired.
		if o.Status == store.ACMEOrderProcessing && !s.d.Now().Before(o.ExpiresAt) {
			return s.interrupted(ctx, o)
		}
		return o, store.Order{}, nil
	}
	ord, err := s.d.Store.Order(ctx, o.OrderID)
	if errors.Is(err, store.ErrNotFound) && o.Status == store.ACMEOrderProcessing {
		if s.d.Now().Sub(o.FinalizedAt) >= finalizeGrace {
			return s.interrupted(ctx, o)
		}
		return o, store.Order{}, nil
	}
	if err != nil {
		return o, ord, err
	}
	next := orderStatusOf(ord)
	if next == o.Status || o.Status != store.ACMEOrderProcessing {
		return o, ord, nil
	}
	o.Status = next
	if next == store.ACMEOrderInvalid {
		o.Error, _ = json.Marshal(Problemf(Unauthorized, "the order was rejected: %s", ord.RejectReason))
	}
	updated, err := s.d.Store.UpdateACMEOrder(ctx, o)
	if errors.Is(err, store.ErrConflict) {
		updated, err = s.d.Store.ACMEOrder(ctx, o.ID)
	}
	return updated, ord, err
}

// interrupted closes an order whose finalization was cut short before
// the order service made its Trustline order: nothing was signed.
func (s *Server) interrupted(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, store.Order, error) {
	o.Status = store.ACMEOrderInvalid
	o.Error, _ = json.Marshal(Problemf(ServerInternal, "the finalization of this order was interrupted; place a new order"))
	updated, err := s.d.Store.UpdateACMEOrder(ctx, o)
	if errors.Is(err, store.ErrConflict) {
		updated, err = s.d.Store.ACMEOrder(ctx, o.ID)
	}
	return updated, store.Order{}, err
}

// csrNamesMatch checks §7.4's rule that the CSR asks for exactly the
// order's identifiers (as a set: the subject common name, if any, counts
// as one of them).
func csrNamesMatch(der []byte, names []string) error {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return Problemf(BadCSR, "the CSR cannot be parsed: %v", err)
	}
	var got []string
	for _, n := range append(slices.Clone(csr.DNSNames), csr.Subject.CommonName) {
		n = asciiLower(n)
		if n != "" && !slices.Contains(got, n) {
			got = append(got, n)
		}
	}
	want := slices.Clone(names)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return Problemf(BadCSR, "the CSR names %s; the order is for %s", truncate(strings.Join(got, ", "), 500), truncate(strings.Join(want, ", "), 500))
	}
	if len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return Problemf(BadCSR, "the CSR asks for names other than DNS names")
	}
	return nil
}

// certificate is §7.4.2: the certificate with the chain to the root's
// child (default), or with the root too (the alternate, Link
// rel="alternate"), as application/pem-certificate-chain. Certificates
// are public, but only the account that ordered one downloads it here.
func (s *Server) certificate(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !q.postAsGet() {
		s.fail(w, r, Problemf(Malformed, "a certificate is downloaded with POST-as-GET (an empty payload)"))
		return
	}
	notFound := &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "no such certificate"}
	sn, err := serial.Parse(r.PathValue("serial"))
	if err != nil {
		s.fail(w, r, notFound)
		return
	}
	c, err := s.d.Store.Certificate(r.Context(), sn)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.AccountID != q.account.AccountID || c.Precertificate)) {
		s.fail(w, r, notFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	is, ok := s.d.PKI.Issuer(c.IssuerID)
	if !ok {
		s.fail(w, r, fmt.Errorf("acme: certificate %s names unknown issuer %s", c.Serial, c.IssuerID))
		return
	}
	withRoot := r.PathValue("alt") == "1"
	if alt := r.PathValue("alt"); alt != "" && !withRoot {
		s.fail(w, r, notFound)
		return
	}
	base := s.url(pathCert + c.Serial.String())
	if withRoot {
		w.Header().Add("Link", link(base, "alternate"))
	} else {
		w.Header().Add("Link", link(base+"/1", "alternate"))
	}
	s.setNonce(w)
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	chain := [][]byte{c.DER, is.Cert.Raw}
	if withRoot && s.d.PKI.Root != nil {
		chain = append(chain, s.d.PKI.Root.Cert.Raw)
	}
	for _, b := range chain {
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: b})
	}
}
