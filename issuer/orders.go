package issuer

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/reviewlist"
)

// OrderStore is the subset of the store orders use.
type OrderStore interface {
	CreateOrder(ctx context.Context, o store.Order) error
	Order(ctx context.Context, id string) (store.Order, error)
	UpdateOrder(ctx context.Context, o store.Order) (store.Order, error)
	ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error)
	ReviewPatterns(ctx context.Context) ([]store.ReviewPattern, error)
	Account(ctx context.Context, id string) (store.Account, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// Issuing is what orders need of the CA.
type Issuing interface {
	Issue(ctx context.Context, r IssueRequest) (store.Certificate, error)
	// CheckKeyNotBlocked refuses a key reported compromised before an
	// order is recorded (Issue checks again before signing).
	CheckKeyNotBlocked(ctx context.Context, pub crypto.PublicKey) error
}

// Coverage is what orders need of domain validation (*validation.Service):
// for each name of an order, the account's valid validation that covers
// it, or nil (its method goes to CAA's validationmethods).
type Coverage interface {
	Covering(ctx context.Context, accountID string, names []string) ([]*store.Validation, error)
}

// CAAChecker checks one name's CAA records (*caa.Checker).
type CAAChecker interface {
	Check(ctx context.Context, r caa.Request) (caa.Result, error)
}

// Orders takes certificate orders (seed steps 4–6 and 10): checks the CSR
// and the names' validations, sends DV orders straight to signing unless a
// name is on the Manual Review List, and queues OV, EV and listed orders
// for review.
type Orders struct {
	store   OrderStore
	ca      Issuing
	vals    Coverage
	mail    mail.Sender
	policy  csrcheck.Policy
	now     func() time.Time
	log     *slog.Logger
	baseURL string     // API base URL, for the "retrieve it here" mail
	caa     CAAChecker // nil: CAA is not checked (no resolver configured)
	limits  *ratelimit.Limiter

	metrics *Metrics // nil: not counted
}

// The review queue signs approved orders and mails rejections through
// Orders.
var _ review.Orders = (*Orders)(nil)

// OrdersDeps are the order service's collaborators.
type OrdersDeps struct {
	Store       OrderStore
	CA          Issuing
	Validations Coverage
	Mail        mail.Sender
	Log         *slog.Logger
	Now         func() time.Time
	Metrics     *Metrics // optional: counts orders by profile and outcome
	// CAA checks every name's CAA records when an order is placed and
	// again before signing one that waited longer than caa.MaxAge (BR
	// §3.2.2.8). nil turns CAA checking off: only for a CA with no
	// resolver (dev without DNS), never for public trust.
	CAA CAAChecker
	// Limits, if set, bound the orders an account places.
	Limits *ratelimit.Limiter
}

// NewOrders builds the order service; apiBaseURL is where subscribers
// retrieve certificates ("http://127.0.0.1:8080").
func NewOrders(apiBaseURL string, policy csrcheck.Policy, d OrdersDeps) (*Orders, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Orders{store: d.Store, ca: d.CA, vals: d.Validations, mail: d.Mail, policy: policy,
		now: d.Now, log: d.Log, baseURL: strings.TrimSuffix(apiBaseURL, "/"), metrics: d.Metrics, caa: d.CAA, limits: d.Limits}, nil
}

// OrderRequest is a new order as the API receives it.
type OrderRequest struct {
	CSR          []byte // PEM or DER
	Profile      string
	Organization *profile.Organization
	// Validity, if set, is the certificate's validity (an ACME profile's
	// lifetime), whole seconds, at least a day; 0 is the CA's default.
	// BR §6.3.2's maximum caps it when signing.
	Validity time.Duration
	// AccountURI, if set, names the account in CAA accounturi parameters
	// (RFC 8657) instead of its API URI: an ACME order's account URL.
	AccountURI string
	// ID, if set, is the new order's id, made by NewID("ord_"): a caller
	// that must know it before Create returns (the ACME server records it
	// when it claims its own order) chooses it. An id in use is
	// ErrDuplicate.
	ID string
}

// Create validates and records an order, issuing a DV certificate at once
// when no review is needed.
func (o *Orders) Create(ctx context.Context, acct store.Account, r OrderRequest) (store.Order, error) {
	if err := o.limits.Order(ctx, acct.ID); err != nil {
		return store.Order{}, err
	}
	prof, err := profile.Parse(r.Profile)
	if err != nil {
		return store.Order{}, &fault.InputError{Detail: err.Error()}
	}
	if r.ID != "" && !strings.HasPrefix(r.ID, "ord_") {
		return store.Order{}, fmt.Errorf("issuer: order id %q does not start with ord_", r.ID)
	}
	if r.Validity != 0 && (r.Validity < 24*time.Hour || r.Validity%time.Second != 0) {
		return store.Order{}, &fault.InputError{Detail: fmt.Sprintf("validity %v: at least a day, in whole seconds", r.Validity)}
	}
	der, err := csrcheck.Decode(r.CSR)
	if err != nil {
		return store.Order{}, &fault.InputError{Detail: err.Error()}
	}
	req, err := o.policy.Check(der)
	if err != nil {
		return store.Order{}, &fault.InputError{Detail: err.Error()}
	}
	var orgJSON []byte
	if prof.NeedsReview() {
		if r.Organization == nil {
			return store.Order{}, &fault.InputError{Detail: fmt.Sprintf("profile %s needs an organization", prof)}
		}
		if err := r.Organization.Validate(prof); err != nil {
			return store.Order{}, &fault.InputError{Detail: err.Error()}
		}
		orgJSON, _ = json.Marshal(r.Organization)
	} else if r.Organization != nil {
		return store.Order{}, &fault.InputError{Detail: "a dv order carries no organization"}
	}
	if err := o.ca.CheckKeyNotBlocked(ctx, req.CSR.PublicKey); err != nil {
		return store.Order{}, err
	}
	covering, err := o.vals.Covering(ctx, acct.ID, req.Names)
	if err != nil {
		return store.Order{}, err
	}
	var uncovered []string
	for i, v := range covering {
		if v == nil {
			uncovered = append(uncovered, req.Names[i])
		}
	}
	if len(uncovered) > 0 {
		return store.Order{}, &fault.ForbiddenError{Detail: "no valid domain validation covers: " + strings.Join(uncovered, ", ")}
	}
	listed, err := o.ReviewListPattern(ctx, req.Names)
	if err != nil {
		return store.Order{}, err
	}
	accountURI := cmp.Or(r.AccountURI, o.AccountURI(acct.ID))
	caaResults, err := o.checkCAA(ctx, accountURI, req.Names, covering)
	if err != nil {
		o.recordCAA(ctx, acct.ID, "caa.refused", caaResults)
		return store.Order{}, err
	}
	now := o.now()
	ord := store.Order{
		ID: cmp.Or(r.ID, NewID("ord_")), AccountID: acct.ID, Profile: string(prof), CSR: req.CSR.Raw, Names: req.Names,
		Organization: orgJSON, Status: store.OrderProcessing, Validity: r.Validity, AccountURI: r.AccountURI, CreatedAt: now, UpdatedAt: now,
	}
	if prof.NeedsReview() || listed != "" {
		ord.Status = store.OrderPendingReview
	}
	if err := o.store.CreateOrder(ctx, ord); err != nil {
		return store.Order{}, fmt.Errorf("issuer: recording order: %w", err)
	}
	o.recordCAA(ctx, ord.ID, "caa.checked", caaResults)
	if ord.Status == store.OrderPendingReview {
		o.log.Info("order queued for review", "order", ord.ID, "profile", prof, "listed_pattern", listed)
		o.metrics.orderOutcome(ord.Profile, outcomePendingReview)
		return ord, nil
	}
	return o.Process(ctx, ord, acct.ID)
}

// ReviewListPattern returns the first Manual Review List pattern one of
// names matches, or "". A name matches in its ASCII and Unicode forms and
// by its confusable skeleton (reviewlist), so look-alikes of a listed
// name match too.
func (o *Orders) ReviewListPattern(ctx context.Context, names []string) (string, error) {
	pats, err := o.store.ReviewPatterns(ctx)
	if err != nil {
		return "", fmt.Errorf("issuer: reading review list: %w", err)
	}
	ps := make([]string, len(pats))
	for i, p := range pats {
		ps[i] = p.Pattern
	}
	list, err := reviewlist.NewList(ps)
	if err != nil {
		// Patterns stored before the API validated them (a malformed
		// one never matched): screening goes on with the others, and
		// the warning repeats until an administrator replaces them.
		o.log.Warn("review list patterns ignored", "err", err)
	}
	return list.Match(names), nil
}

// Process signs an order in state processing and records the outcome. On
// an infrastructure failure the order stays processing, to be retried by
// ResumeProcessing; a certificate the linter refuses rejects the order.
func (o *Orders) Process(ctx context.Context, ord store.Order, actor string) (store.Order, error) {
	out, err := o.process(ctx, ord, actor)
	o.metrics.orderProcessed(ord.Profile, out, err)
	return out, err
}

func (o *Orders) process(ctx context.Context, ord store.Order, actor string) (store.Order, error) {
	req, err := o.policy.Check(ord.CSR)
	if err != nil {
		return o.reject(ctx, ord, "CSR no longer acceptable: "+err.Error())
	}
	if o.caa != nil && o.now().Sub(ord.CreatedAt) > caa.MaxAge {
		// The order waited (for review) longer than a CAA check stays
		// good: check again before signing.
		covering, err := o.vals.Covering(ctx, ord.AccountID, ord.Names)
		if err != nil {
			return store.Order{}, err
		}
		res, err := o.checkCAA(ctx, cmp.Or(ord.AccountURI, o.AccountURI(ord.AccountID)), ord.Names, covering)
		o.recordCAA(ctx, ord.ID, "caa.checked", res)
		var fb *fault.ForbiddenError
		if errors.As(err, &fb) {
			return o.reject(ctx, ord, fb.Detail)
		}
		if err != nil {
			return store.Order{}, err
		}
	}
	var org profile.Organization
	if len(ord.Organization) > 0 {
		if err := json.Unmarshal(ord.Organization, &org); err != nil {
			return store.Order{}, fmt.Errorf("issuer: order %s organization: %w", ord.ID, err)
		}
	}
	cert, err := o.ca.Issue(ctx, IssueRequest{
		AccountID: ord.AccountID, OrderID: ord.ID, Profile: profile.Name(ord.Profile), Names: ord.Names,
		PublicKey: req.CSR.PublicKey, Org: org, Actor: actor, Validity: ord.Validity,
	})
	if cert.Serial == "" && err != nil {
		var fb *fault.ForbiddenError
		switch {
		case lintFailure(err):
			return o.reject(ctx, ord, err.Error())
		case errors.As(err, &fb): // the key was blocked while the order waited
			return o.reject(ctx, ord, fb.Detail)
		}
		return store.Order{}, err
	}
	if err != nil {
		// Stored, but a later step (the OCSP response) failed: the
		// certificate exists, so the order is issued; log loudly.
		o.log.Error("post-issuance step failed", "order", ord.ID, "serial", cert.Serial, "err", err)
	}
	ord.Status, ord.Serial, ord.UpdatedAt = store.OrderIssued, cert.Serial, o.now()
	updated, err := o.store.UpdateOrder(ctx, ord)
	if err != nil {
		return store.Order{}, fmt.Errorf("issuer: order %s issued as %s, but recording it failed: %w", ord.ID, cert.Serial, err)
	}
	o.notifyIssued(ctx, updated)
	return updated, nil
}

// lintFailure: the linter refused the certificate; retrying cannot help.
func lintFailure(err error) bool {
	var f *linter.Failure
	return errors.As(err, &f)
}

func (o *Orders) reject(ctx context.Context, ord store.Order, why string) (store.Order, error) {
	ord.Status, ord.RejectReason, ord.UpdatedAt = store.OrderRejected, truncate(why, 1000), o.now()
	updated, err := o.store.UpdateOrder(ctx, ord)
	if err != nil {
		return store.Order{}, fmt.Errorf("issuer: rejecting order %s: %w", ord.ID, err)
	}
	o.NotifyRejected(ctx, updated)
	return updated, nil
}

// notifyIssued mails the account where to retrieve its certificate (seed
// step 10). A mail failure is logged, never fatal: the certificate exists.
// A client that hangs up does not cancel the mail.
func (o *Orders) notifyIssued(ctx context.Context, ord store.Order) {
	ctx = context.WithoutCancel(ctx)
	acct, err := o.store.Account(ctx, ord.AccountID)
	if err != nil {
		o.log.Error("cannot notify: account lookup failed", "order", ord.ID, "err", err)
		return
	}
	if acct.EmailVerifiedAt.IsZero() {
		o.log.Info("not mailed: the account's address is not confirmed", "order", ord.ID, "account", acct.ID)
		return
	}
	msg := mail.Message{
		To:      acct.Email,
		Subject: "Your certificate for " + ord.Names[0] + " is ready",
		Body: fmt.Sprintf("Your order %s has been issued.\n\nSerial: %s\nNames: %s\n\n"+
			"Retrieve the certificate and its chain on the website (sign in first):\n%s/certificates/%s\n\n"+
			"or through the API with your API key:\n%s/api/v1/certificates/%s\n",
			ord.ID, ord.Serial, strings.Join(ord.Names, ", "), o.baseURL, ord.Serial, o.baseURL, ord.Serial),
	}
	if err := o.mail.Send(ctx, msg); err != nil {
		o.log.Error("cannot notify", "order", ord.ID, "err", err)
	}
}

// NotifyRejected mails the account that its order ended without a
// certificate, and why (the review queue calls it after a reviewer's
// rejection). A mail failure is logged, never fatal.
func (o *Orders) NotifyRejected(ctx context.Context, ord store.Order) {
	subject := "Your certificate order was rejected"
	if len(ord.Names) > 0 {
		subject = "Your certificate order for " + ord.Names[0] + " was rejected"
	}
	o.notify(ctx, ord.AccountID, ord.ID, subject, fmt.Sprintf(
		"Your order %s (%s; %s) was rejected and no certificate was issued.\n\nReason: %s\n\n"+
			"You may place a new order once the reason is addressed:\n%s/api/v1/orders\n",
		ord.ID, strings.ToUpper(ord.Profile), strings.Join(ord.Names, ", "), oneLine(ord.RejectReason), o.baseURL))
}

// NotifyRevoked mails the certificate's account that it was revoked. The
// API calls it after a revocation succeeds; a mail failure is logged,
// never fatal.
func (o *Orders) NotifyRevoked(ctx context.Context, c store.Certificate, actor string) {
	by := "at your request"
	if actor != c.AccountID {
		by = "by the CA"
	}
	o.notify(ctx, c.AccountID, string(c.Serial), "Your certificate "+string(c.Serial)+" was revoked", fmt.Sprintf(
		"The certificate with serial %s was revoked %s.\n\nReason: %s\nRevoked at: %s\n\n"+
			"Relying parties see it as revoked from now on (OCSP at once, CRLs within minutes). Details:\n%s/api/v1/certificates/%s\n",
		c.Serial, by, c.Reason, c.RevokedAt.UTC().Format(time.RFC1123), o.baseURL, c.Serial))
}

// notify mails an account; about names what the mail is about in logs. A
// client that hangs up does not cancel the mail (the sender bounds it).
func (o *Orders) notify(ctx context.Context, accountID, about, subject, body string) {
	ctx = context.WithoutCancel(ctx)
	acct, err := o.store.Account(ctx, accountID)
	if err != nil {
		o.log.Error("cannot notify: account lookup failed", "about", about, "account", accountID, "err", err)
		return
	}
	if acct.EmailVerifiedAt.IsZero() {
		o.log.Info("not mailed: the account's address is not confirmed", "about", about, "account", accountID)
		return
	}
	if err := o.mail.Send(ctx, mail.Message{To: acct.Email, Subject: subject, Body: body}); err != nil {
		o.log.Error("cannot notify", "about", about, "err", err)
	}
}

// oneLine keeps untrusted text (a reviewer's reason, a lint message) on
// one line of a mail body.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Get returns an order the account may see: its own, or any for reviewers
// and admins.
func (o *Orders) Get(ctx context.Context, acct store.Account, id string) (store.Order, error) {
	ord, err := o.store.Order(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ord.AccountID != acct.ID && acct.Role == store.RoleSubscriber) {
		return store.Order{}, &fault.NotFoundError{Detail: "no such order"}
	}
	if err != nil {
		return store.Order{}, fmt.Errorf("issuer: reading order: %w", err)
	}
	return ord, nil
}

// ResumeProcessing retries orders a crash left in state processing.
func (o *Orders) ResumeProcessing(ctx context.Context) (int, error) {
	ords, err := o.store.ListOrders(ctx, store.OrderFilter{Status: store.OrderProcessing, Limit: 1000})
	if err != nil {
		return 0, fmt.Errorf("issuer: listing processing orders: %w", err)
	}
	n := 0
	for _, ord := range ords {
		if _, err := o.Process(ctx, ord, "system"); err != nil {
			o.log.Error("resuming order failed", "order", ord.ID, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// checkCAA checks every name's CAA records (when a checker is set), each
// with the method of the validation covering it (covering[i], from
// Coverage.Covering), and returns the evidence of each check made. Records that forbid issuance,
// or that cannot be read because of the domain's DNS (SERVFAIL, as for a
// broken DNSSEC chain), are a *fault.ForbiddenError naming the name and
// the record; a resolver of the CA's that does not answer is a
// *fault.UnavailableError.
func (o *Orders) checkCAA(ctx context.Context, accountURI string, names []string, covering []*store.Validation) ([]caa.Result, error) {
	if o.caa == nil {
		return nil, nil
	}
	var out []caa.Result
	for i, n := range names {
		method := ""
		if i < len(covering) && covering[i] != nil {
			method = caa.MethodLabel(covering[i].Method)
		}
		res, err := o.caa.Check(ctx, caa.Request{Name: n, AccountURI: accountURI, Method: method})
		out = append(out, res)
		switch {
		case errors.Is(err, caa.ErrNotCorroborated):
			return out, &fault.ForbiddenError{Detail: fmt.Sprintf("CAA permits issuance for %s as seen from the CA's primary network perspective, but this was not corroborated from enough remote ones (BR 3.2.2.9): %s", n, res.Reason), Cause: err}
		case errors.Is(err, caa.ErrForbidden):
			return out, &fault.ForbiddenError{Detail: fmt.Sprintf("CAA forbids issuance for %s (BR 3.2.2.8): %s", n, res.Reason), Cause: err}
		case errors.Is(err, caa.ErrLookup):
			return out, &fault.ForbiddenError{Detail: fmt.Sprintf("the CAA records for %s cannot be read, so this CA may not issue for it until they can (BR 3.2.2.8): %s", n, res.Reason), Cause: err}
		case err != nil:
			return out, &fault.UnavailableError{Detail: fmt.Sprintf("the CA could not check the CAA records for %s; try again later", n)}
		}
	}
	return out, nil
}

// AccountURI is the URI that names an account in CAA's accounturi
// parameter (RFC 8657): the account's URL under the API.
func (o *Orders) AccountURI(accountID string) string {
	return o.baseURL + "/api/v1/accounts/" + accountID
}

// recordCAA appends the CAA evidence to the audit log under subject (the
// order, or the account for an order refused before it was recorded). A
// failure is logged: the decision stands either way.
func (o *Orders) recordCAA(ctx context.Context, subject, kind string, results []caa.Result) {
	if len(results) == 0 {
		return
	}
	payload, err := json.Marshal(map[string]any{"checks": results})
	if err == nil {
		_, err = o.store.AppendAudit(ctx, store.AuditEntry{At: o.now(), Kind: kind, Actor: "system", Subject: subject, Payload: payload})
	}
	if err != nil {
		o.log.Error("CAA evidence not recorded", "subject", subject, "kind", kind, "err", err)
	}
}
