package portal

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/validation"
)

// The subscriber's pages: dashboard, Validations Wizard (seed steps 2–3),
// Certificates Wizard (step 4), order status, certificate retrieval (step
// 10) and revocation.

// dashboardOrders bounds the orders the dashboard lists.
const dashboardOrders = 50

type orderRow struct {
	Order store.Order
	Cert  *store.Certificate // issued orders whose certificate could be read
}

// maxPending bounds the validations the dashboard looks through for
// pending ones.
const maxPending = 50

type dashboardData struct {
	Valid    []store.Validation
	Pending  []store.Validation // started, not yet valid, not expired; newest first
	Orders   []orderRow
	Reviewer bool
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	d := dashboardData{Reviewer: v.acct.Role == store.RoleReviewer}
	var err error
	if d.Valid, err = h.d.Store.ValidValidations(ctx, v.acct.ID, h.now()); err != nil {
		h.fail(w, r, v, fmt.Errorf("portal: reading validations: %w", err))
		return
	}
	sort.Slice(d.Valid, func(i, j int) bool { return d.Valid[i].Domain < d.Valid[j].Domain })
	all, err := h.d.Store.ListValidations(ctx, v.acct.ID, maxPending)
	if err != nil {
		h.fail(w, r, v, fmt.Errorf("portal: listing validations: %w", err))
		return
	}
	for _, val := range all {
		if val.Status == store.ValidationPending && h.now().Before(val.ExpiresAt) {
			d.Pending = append(d.Pending, val)
		}
	}
	ords, err := h.d.Store.ListOrders(ctx, store.OrderFilter{AccountID: v.acct.ID, Limit: dashboardOrders})
	if err != nil {
		h.fail(w, r, v, fmt.Errorf("portal: listing orders: %w", err))
		return
	}
	for _, o := range ords {
		row := orderRow{Order: o}
		if o.Serial != "" {
			if c, err := h.d.Store.Certificate(ctx, o.Serial); err == nil {
				row.Cert = &c
			} else {
				h.d.Log.Error("reading certificate for the dashboard", "serial", o.Serial, "err", err)
			}
		}
		d.Orders = append(d.Orders, row)
	}
	h.page(w, r, v, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "home", Data: d})
}

// Validations Wizard.

type methodChoice struct {
	Value, Label, Help string
}

// methodChoices describes the methods the validation service offers.
func (h *Handler) methodChoices() []methodChoice {
	var out []methodChoice
	for _, m := range h.d.Validations.Methods() {
		c := methodChoice{Value: m}
		switch m {
		case validation.MethodEmail:
			c.Label = "Email to an address at the domain"
			c.Help = "We mail a code to admin, administrator, webmaster, hostmaster or postmaster at the domain; you paste it here (BR 3.2.2.4.4). Covers the domain and every name under it."
		case validation.MethodDNSTXT:
			c.Label = "DNS TXT record"
			c.Help = "You publish a random value in a TXT record at " + validation.DNSRecordLabel + ".<domain>, then ask us to look (BR 3.2.2.4.7). Covers the domain, every name under it, and wildcards."
		case validation.MethodHTTPToken:
			c.Label = "File on the web site"
			c.Help = "You serve a random value at http://<domain>" + validation.WellKnownPath + "<token>, then ask us to fetch it (BR 3.2.2.4.18). Covers exactly that name."
		case validation.MethodWhoisEmail:
			c.Label = "Email to the WHOIS contact"
			c.Help = "We mail a code to the contact the domain's WHOIS record lists. The Baseline Requirements retired this method in 2025; it is offered only because this server enables it."
		default:
			c.Label = m
		}
		out = append(out, c)
	}
	return out
}

type validationNewData struct {
	Domain, Method, Local string
	Methods               []methodChoice
	Locals                []string
}

func (h *Handler) validationForm(w http.ResponseWriter, r *http.Request, v *visit, code int, d validationNewData, errs []string) {
	d.Methods, d.Locals = h.methodChoices(), validation.ConstructedLocalParts
	if d.Method == "" {
		d.Method = validation.MethodEmail
	}
	if d.Local == "" {
		d.Local = validation.ConstructedLocalParts[0]
	}
	h.page(w, r, v, code, "validation_new", view{Title: "Validations Wizard", Nav: "validate", Errors: errs, Data: d})
}

func (h *Handler) newValidation(w http.ResponseWriter, r *http.Request, v *visit) {
	domain, _ := fieldText("domain", r.URL.Query().Get("domain"), maxNameLen)
	h.validationForm(w, r, v, http.StatusOK, validationNewData{Domain: domain}, nil)
}

func (h *Handler) startValidation(w http.ResponseWriter, r *http.Request, v *visit) {
	d := validationNewData{Method: r.PostFormValue("method"), Local: r.PostFormValue("local")}
	var errs []string
	domain, err := fieldText("Domain", r.PostFormValue("domain"), maxNameLen)
	if err != nil {
		errs = append(errs, err.Error())
	}
	d.Domain = domain
	// One normalisation, the validation service's, so that the portal
	// refuses what the API refuses ("example.com.."); the email address
	// below is built from the normalised name.
	domain = strings.ToLower(domain)
	if n, nerr := validation.NormalizeDomain(domain); nerr == nil {
		domain = n
	}
	if domain == "" && err == nil {
		errs = append(errs, "Enter the domain to validate, such as example.com.")
	}
	if !slices.Contains(h.d.Validations.Methods(), d.Method) {
		errs = append(errs, "Choose one of the validation methods listed.")
		d.Method = ""
	}
	req := validation.StartRequest{Domain: domain, Method: d.Method}
	if d.Method == validation.MethodEmail {
		if !slices.Contains(validation.ConstructedLocalParts, d.Local) {
			errs = append(errs, "Choose the address to mail the code to.")
			d.Local = ""
		}
		req.Email = d.Local + "@" + domain
	}
	if len(errs) > 0 {
		h.validationForm(w, r, v, http.StatusBadRequest, d, errs)
		return
	}
	val, err := h.d.Validations.Start(r.Context(), v.acct, req)
	if err != nil {
		code, msg := h.formFailure(w, r, err)
		h.validationForm(w, r, v, code, d, []string{msg})
		return
	}
	notice := ""
	if val.Method == validation.MethodEmail || val.Method == validation.MethodWhoisEmail {
		notice = "We mailed a validation code to " + val.Contact + ". Paste it below."
	}
	h.redirectNotice(w, r, v, "/validations/"+val.ID, notice)
}

type validationData struct {
	V            store.Validation
	Pub          validation.Publication
	HasPub       bool
	AttemptsLeft int
}

func (h *Handler) validationPage(w http.ResponseWriter, r *http.Request, v *visit, code int, val store.Validation, errs []string) {
	d := validationData{V: val, AttemptsLeft: max(0, validation.MaxAttempts-val.Attempts)}
	d.Pub, d.HasPub = validation.PublicationOf(val)
	h.page(w, r, v, code, "validation", view{Title: "Validation of " + val.Domain, Nav: "validate", Errors: errs, Data: d})
}

func (h *Handler) showValidation(w http.ResponseWriter, r *http.Request, v *visit) {
	val, err := h.d.Validations.Get(r.Context(), v.acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	h.validationPage(w, r, v, http.StatusOK, val, nil)
}

func (h *Handler) confirmValidation(w http.ResponseWriter, r *http.Request, v *visit) {
	id := r.PathValue("id")
	code, err := fieldText("Code", r.PostFormValue("code"), 128)
	if err != nil {
		h.refreshValidation(w, r, v, id, http.StatusBadRequest, err.Error())
		return
	}
	val, err := h.d.Validations.Confirm(r.Context(), v.acct, id, code)
	if err != nil {
		code, msg := h.formFailure(w, r, err)
		h.refreshValidation(w, r, v, id, code, msg)
		return
	}
	h.redirectNotice(w, r, v, "/validations/"+val.ID,
		fmt.Sprintf("%s is validated. You may order certificates for it until %s.", val.Domain, val.ValidUntil.UTC().Format("2 January 2006")))
}

// refreshValidation shows the validation as it now stands with an error.
func (h *Handler) refreshValidation(w http.ResponseWriter, r *http.Request, v *visit, id string, code int, msg string) {
	val, err := h.d.Validations.Get(r.Context(), v.acct, id)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	h.validationPage(w, r, v, code, val, []string{msg})
}

// Certificates Wizard.

type domainChoice struct {
	Domain  string
	Methods []string
	Until   time.Time
}

type orderNewData struct {
	Domains    []domainChoice
	Chosen     []string
	Names      string
	Profile    string
	Org        map[string]string
	CSR        string
	Categories []string
}

// validatedDomains groups the account's valid validations by domain.
func (h *Handler) validatedDomains(r *http.Request, acct store.Account) ([]domainChoice, error) {
	vals, err := h.d.Store.ValidValidations(r.Context(), acct.ID, h.now())
	if err != nil {
		return nil, fmt.Errorf("portal: reading validations: %w", err)
	}
	by := map[string]*domainChoice{}
	now := h.now()
	for _, val := range vals {
		if !validation.Reusable(val, now) {
			continue // past the reuse period in force now (BR 4.2.1)
		}
		c, ok := by[val.Domain]
		if !ok {
			c = &domainChoice{Domain: val.Domain}
			by[val.Domain] = c
		}
		if !slices.Contains(c.Methods, val.Method) {
			c.Methods = append(c.Methods, val.Method)
		}
		if until := validation.ReusableUntil(val, now); until.After(c.Until) {
			c.Until = until
		}
	}
	res := make([]domainChoice, 0, len(by))
	for _, c := range by {
		res = append(res, *c)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Domain < res[j].Domain })
	return res, nil
}

func (h *Handler) orderForm(w http.ResponseWriter, r *http.Request, v *visit, code int, d orderNewData, errs []string) {
	if d.Domains == nil {
		doms, err := h.validatedDomains(r, v.acct)
		if err != nil {
			h.fail(w, r, v, err)
			return
		}
		d.Domains = doms
	}
	if d.Profile == "" {
		d.Profile = string(profile.DV)
	}
	if d.Org == nil {
		d.Org = map[string]string{}
	}
	d.Categories = businessCategories
	h.page(w, r, v, code, "order_new", view{Title: "Certificates Wizard", Nav: "order", Errors: errs, Data: d})
}

func (h *Handler) newOrder(w http.ResponseWriter, r *http.Request, v *visit) {
	d := orderNewData{}
	if dom := r.URL.Query().Get("domain"); dom != "" {
		d.Chosen = []string{dom}
	}
	h.orderForm(w, r, v, http.StatusOK, d, nil)
}

func (h *Handler) createOrder(w http.ResponseWriter, r *http.Request, v *visit) {
	doms, err := h.validatedDomains(r, v.acct)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	d := orderNewData{Domains: doms, Profile: r.PostFormValue("profile"), Names: r.PostFormValue("names"),
		CSR: r.PostFormValue("csr"), Org: map[string]string{}}
	for _, f := range orgFields {
		d.Org[f.form] = r.PostFormValue(f.form)
	}
	var errs []string
	for _, c := range r.PostForm["domain"] {
		if slices.ContainsFunc(doms, func(x domainChoice) bool { return x.Domain == c }) && !slices.Contains(d.Chosen, c) {
			d.Chosen = append(d.Chosen, c)
		}
	}
	if len(d.Chosen) == 0 {
		errs = append(errs, "Choose at least one of your validated domains.")
	}
	prof, err := profile.Parse(d.Profile)
	if err != nil {
		errs = append(errs, "Choose a certificate type: DV, OV or EV.")
		d.Profile = ""
	}
	names, err := parseNames(d.Names)
	if err != nil {
		errs = append(errs, sentence(err.Error()))
	}
	org, orgErrs := parseOrganization(func(k string) string { return d.Org[k] }, prof)
	errs = append(errs, orgErrs...)
	file, err := uploadedCSR(r)
	if errors.Is(err, errTooLarge) {
		h.errorPage(w, r, v, http.StatusRequestEntityTooLarge, "CSR file too large", fmt.Sprintf(
			"The CSR file you chose is larger than %d KiB; a certificate signing request is usually 1–4 KiB. Check that you chose the CSR and not another file. Nothing was ordered.",
			csrcheck.MaxInputSize>>10))
		return
	}
	if err != nil {
		errs = append(errs, "The uploaded CSR file could not be read; choose it again.")
	}
	csr, err := csrInput(d.CSR, file)
	if err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		if got, ok := csrNames(csr); ok {
			errs = append(errs, checkCSRNames(got, names, d.Chosen)...)
		}
	}
	if len(file) > 0 && len(errs) > 0 {
		errs = append(errs, "Browsers do not keep a chosen file when a form is shown again: choose the CSR file again.")
	}
	if len(errs) > 0 {
		h.orderForm(w, r, v, http.StatusBadRequest, d, errs)
		return
	}
	ord, err := h.d.Orders.Create(r.Context(), v.acct, issuer.OrderRequest{CSR: csr, Profile: string(prof), Organization: org})
	if err != nil {
		code, msg := h.formFailure(w, r, err)
		errs = []string{msg}
		if len(file) > 0 {
			errs = append(errs, "Browsers do not keep a chosen file when a form is shown again: choose the CSR file again.")
		}
		h.orderForm(w, r, v, code, d, errs)
		return
	}
	h.redirectNotice(w, r, v, "/orders/"+ord.ID, orderNotice(ord))
}

// uploadedCSR reads the optional CSR file, refusing one larger than any
// CSR csrcheck accepts.
func uploadedCSR(r *http.Request) ([]byte, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["csr_file"]) == 0 {
		return nil, nil
	}
	fh := r.MultipartForm.File["csr_file"][0]
	if fh.Size > csrcheck.MaxInputSize {
		return nil, errTooLarge
	}
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, csrcheck.MaxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > csrcheck.MaxInputSize {
		return nil, errTooLarge
	}
	return b, nil
}

func orderNotice(o store.Order) string {
	switch o.Status {
	case store.OrderIssued:
		return "Your certificate is issued. Download it below."
	case store.OrderPendingReview:
		return "Your order is waiting for review by CA staff. We will email you when it is decided."
	case store.OrderRejected:
		return "Your order was rejected; the reason is below."
	}
	return "Your order is being processed."
}

type orderData struct {
	Order    store.Order
	Org      *profile.Organization
	Cert     *store.Certificate
	Required int
}

func (h *Handler) showOrder(w http.ResponseWriter, r *http.Request, v *visit) {
	ord, err := h.d.Orders.Get(r.Context(), v.acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	d := orderData{Order: ord, Required: profile.Name(ord.Profile).Approvals()}
	if len(ord.Organization) > 0 {
		d.Org = new(profile.Organization)
		if err := json.Unmarshal(ord.Organization, d.Org); err != nil {
			h.fail(w, r, v, fmt.Errorf("portal: order %s organization: %w", ord.ID, err))
			return
		}
	}
	if ord.Serial != "" {
		c, err := h.d.Store.Certificate(r.Context(), ord.Serial)
		if err != nil {
			h.fail(w, r, v, fmt.Errorf("portal: reading certificate %s: %w", ord.Serial, err))
			return
		}
		d.Cert = &c
	}
	h.page(w, r, v, http.StatusOK, "order", view{Title: "Order " + ord.ID, Data: d})
}

// Certificates.

// visibleCertificate returns the certificate if acct may see it: its
// owner, reviewers and admins (as in the API). Others get 404, so the
// serials of other accounts are not confirmed.
func (h *Handler) visibleCertificate(r *http.Request, acct store.Account) (store.Certificate, error) {
	raw := r.PathValue("serial")
	s, err := serial.Parse(raw)
	if err != nil || string(s) != raw {
		return store.Certificate{}, &fault.NotFoundError{Detail: "no such certificate: serials are lowercase hex without separators"}
	}
	c, err := h.d.Store.Certificate(r.Context(), s)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.AccountID != acct.ID && acct.Role == store.RoleSubscriber) {
		return store.Certificate{}, &fault.NotFoundError{Detail: "no such certificate"}
	}
	if err != nil {
		return store.Certificate{}, fmt.Errorf("portal: reading certificate: %w", err)
	}
	return c, nil
}

type reasonChoice struct {
	Value, Label string
}

// revocationReasons are those BR §7.2.2 allows for subscriber
// certificates and acct may choose: privilegeWithdrawn is the CA's.
func revocationReasons(acct store.Account) []reasonChoice {
	labels := map[reason.Reason]string{
		reason.KeyCompromise:        "Key compromise: the private key was lost, stolen or exposed",
		reason.Superseded:           "Superseded: you are replacing it with a new certificate",
		reason.CessationOfOperation: "Cessation of operation: the names are no longer in use",
		reason.AffiliationChanged:   "Affiliation changed: the organization or other details changed",
		reason.Unspecified:          "Unspecified: none of the above (no reason appears on the CRL)",
		reason.PrivilegeWithdrawn:   "Privilege withdrawn: the CA withdraws it (admins only)",
	}
	var out []reasonChoice
	for _, rs := range reason.All {
		if !rs.AllowedForSubscriber() || (rs == reason.PrivilegeWithdrawn && acct.Role != store.RoleAdmin) {
			continue
		}
		out = append(out, reasonChoice{Value: rs.String(), Label: labels[rs]})
	}
	return out
}

type certificateData struct {
	Cert      store.Certificate
	Leaf      *x509.Certificate
	Reasons   []reasonChoice
	MayRevoke bool
	Revoked   bool
	Reason    string
}

// mayRevoke mirrors the API: owners and admins; reviewers only their own.
func mayRevoke(acct store.Account, c store.Certificate) bool {
	return c.AccountID == acct.ID || acct.Role == store.RoleAdmin
}

func (h *Handler) certificatePage(w http.ResponseWriter, r *http.Request, v *visit, code int, c store.Certificate, chosen string, errs []string) {
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		h.fail(w, r, v, fmt.Errorf("portal: stored certificate %s does not parse: %w", c.Serial, err))
		return
	}
	d := certificateData{Cert: c, Leaf: leaf, Reasons: revocationReasons(v.acct), MayRevoke: mayRevoke(v.acct, c),
		Revoked: c.Status == status.Revoked, Reason: chosen}
	h.page(w, r, v, code, "certificate", view{Title: "Certificate " + string(c.Serial), Errors: errs, Data: d})
}

func (h *Handler) showCertificate(w http.ResponseWriter, r *http.Request, v *visit) {
	c, err := h.visibleCertificate(r, v.acct)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	h.certificatePage(w, r, v, http.StatusOK, c, "", nil)
}

// downloadChain serves the PEM chain, leaf first (RFC 8555 §9.1's
// application/pem-certificate-chain), as a file to save.
func (h *Handler) downloadChain(w http.ResponseWriter, r *http.Request, v *visit) {
	c, err := h.visibleCertificate(r, v.acct)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	if c.Precertificate {
		h.errorPage(w, r, v, http.StatusConflict, "Never issued",
			"This serial number belongs to a precertificate whose certificate was never issued: the Certificate Transparency logs gave too few timestamps. It is covered by OCSP and CRLs, and you may revoke it. Order the certificate again.")
		return
	}
	is, ok := h.d.Issuers.Issuer(c.IssuerID)
	if !ok {
		h.fail(w, r, v, fmt.Errorf("portal: certificate %s names unknown issuer %s", c.Serial, c.IssuerID))
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Content-Disposition", `attachment; filename="`+string(c.Serial)+`.pem"`)
	pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, v *visit) {
	c, err := h.visibleCertificate(r, v.acct)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	if !mayRevoke(v.acct, c) {
		h.errorPage(w, r, v, http.StatusForbidden, "Not allowed", "Reviewers may not revoke other accounts' certificates.")
		return
	}
	chosen := r.PostFormValue("reason")
	again := func(code int, msg string) { h.certificatePage(w, r, v, code, c, chosen, []string{msg}) }
	if !slices.ContainsFunc(revocationReasons(v.acct), func(x reasonChoice) bool { return x.Value == chosen }) {
		again(http.StatusBadRequest, "Choose one of the reasons listed; the Baseline Requirements (7.2.2) allow only these.")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		again(http.StatusBadRequest, "Tick the box to confirm: a revocation cannot be undone.")
		return
	}
	rs, _ := reason.Parse(chosen)
	got, err := h.d.CA.Revoke(r.Context(), issuer.RevokeRequest{Serial: c.Serial, Reason: rs, Actor: v.acct.ID})
	if errors.Is(err, store.ErrAlreadyRevoked) {
		again(http.StatusConflict, "This certificate is already revoked.")
		return
	}
	if err != nil && got.Serial == "" {
		code, msg := h.formFailure(w, r, err)
		again(code, msg)
		return
	}
	if err != nil {
		// Revoked and stored; the OCSP refresh will catch up.
		h.d.Log.Error("post-revocation step failed", "serial", got.Serial, "err", err)
	}
	h.d.Orders.NotifyRevoked(r.Context(), got, v.acct.ID)
	h.redirectNotice(w, r, v, "/certificates/"+string(got.Serial),
		"The certificate is revoked ("+got.Reason.String()+"). OCSP answers revoked from now on; CRLs follow within minutes.")
}
